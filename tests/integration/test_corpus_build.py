"""The tiny synthetic corpus end to end: build, layout, determinism, protocol CLI, pool cache."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speakerrpl.cli import main
from speakerrpl.data.condition_ids import CONDITIONS, conditioned_utterances
from speakerrpl.data.corpus_files import read_utt2cond, read_voices
from speakerrpl.data.kaldi import read_data_dir
from speakerrpl.data.protocols import load_protocol
from speakerrpl.synth.corpus import build_corpus
from speakerrpl.synth.engines import VoiceSpec, synthesize_many
from speakerrpl.synth.pool import default_pool, pool_cache_path

needs_tts = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("flite") is None,
    reason="espeak-ng and flite are installed by scripts/install_system_deps.sh",
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    build_corpus(out, size="tiny", seed=7, jobs=2)
    return out


@needs_tts
def test_tiny_layout(tiny: Path) -> None:
    evals, pool = read_data_dir(tiny / "eval"), read_data_dir(tiny / "pool")
    eval_voices, pool_voices = read_voices(tiny / "eval"), read_voices(tiny / "pool")
    assert len(eval_voices) >= 4 and len(pool_voices) == 4
    # eval and pool share no engine voice (espeak-ng: no variant)
    pool_variants = {v["voice"].split("+")[-1] for v in pool_voices.values()}
    assert not any(
        v["voice"].split("+")[-1] in pool_variants
        for v in eval_voices.values()
        if v["engine"] == "espeak"
    )
    assert {v["voice"] for v in eval_voices.values()}.isdisjoint(
        v["voice"] for v in pool_voices.values()
    )
    assert len({v["engine"] for v in eval_voices.values()}) >= 3  # several families
    assert {v["pool"] for v in eval_voices.values()} == {"eval"}
    utt2cond = read_utt2cond(tiny / "eval")
    assert set(utt2cond) == {u.utt_id for u in evals}
    clean = [u for u in evals if utt2cond[u.utt_id] == "clean"]
    assert len(clean) == 4 * len(eval_voices)
    # tiny: condition copies of the last of each voice's 4 clean utterances only
    assert len(evals) == len(clean) + len(eval_voices) * len(CONDITIONS)
    tests = conditioned_utterances(utt2cond)
    assert tests == {f"{spk}-03" for spk in eval_voices}
    assert {u.utt_id for u in evals} >= {f"{t}__{c}" for t in tests for c in CONDITIONS}
    for u in clean[:3] + pool[:3]:
        info = sf.info(str(u.path))
        assert (info.samplerate, info.channels) == (16000, 1) and info.duration > 0.5
    short = [u for u in evals if utt2cond[u.utt_id].startswith("short")]
    assert short and all(0.8 - 1e-3 <= sf.info(str(u.path)).duration <= 1.5 + 1e-3 for u in short)
    assert (tiny / "eval" / "spk2utt").is_file()
    with open(tiny / "eval" / "utterances.tsv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert [r["utt"] for r in rows] == sorted(utt2cond)
    assert all(r["condition"] == utt2cond[r["utt"]] for r in rows)
    for r in rows:  # enrollment: clean close-talk; tests: the conditioned subset
        assert r["role"] == ("test" if r["utt"].split("__")[0] in tests else "enroll")
        assert r["condition"] != "clean" or r["channel"] == "close-talk"
    rates = {float(r["rate"]) for r in rows if r["condition"] == "clean"}
    assert len(rates) > 0.8 * len(clean) and min(rates) >= 0.8 and max(rates) <= 1.25


@needs_tts
@pytest.mark.parametrize("engine", ["flite", "pico", "mbrola"])
def test_tiny_is_deterministic(tiny: Path, engine: str) -> None:
    from speakerrpl.synth.corpus import _texts_for

    rows = [v for v in read_voices(tiny / "eval").values() if v["engine"] == engine]
    if not rows:
        pytest.skip(f"{engine} is not installed")
    row = rows[0]
    spec = VoiceSpec(row["speaker"], engine, row["voice"], row["language"], row["gender"], "eval")
    utts = [u for u in read_data_dir(tiny / "eval") if u.speaker == spec.speaker]
    clean = [u for u in utts if "__" not in u.utt_id]
    from speakerrpl.synth.corpus import _prosody

    texts = _texts_for(spec, 4, seed=7)
    ordered = sorted(clean, key=lambda u: u.utt_id)
    again = synthesize_many(spec, texts, [_prosody(spec, u.utt_id, 7) for u in ordered])
    for utt, wave in zip(sorted(clean, key=lambda u: u.utt_id), again, strict=True):
        stored, _ = sf.read(str(utt.path), dtype="float32")
        assert np.abs(stored - wave).max() < 1e-3  # 16-bit quantisation only


@needs_tts
def test_protocol_cli_on_tiny(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p.json"
    args = ["protocol", "make", "--data", str(tiny / "eval"), "--targets", "3", "--enroll", "2"]
    assert main([*args, "--unknowns", "4", "--folds", "2", "--seed", "1", "--out", str(out)]) == 0
    assert "conditions clean,device,codec" in capsys.readouterr().out
    protocol = load_protocol(out)
    assert len(protocol.folds) == 2 and len(protocol.conditions) == 1 + len(CONDITIONS)
    for fold in protocol.folds:  # tests: the conditioned utterances; enrollment: the others
        assert all(u.endswith("-03") for u in fold.test_known + fold.test_unknown)
        assert len(fold.test_known) == 3 and len(fold.test_unknown) == 4
        assert not any(u.endswith("-03") for us in fold.enroll.values() for u in us)
    assert main(["protocol", "check", str(out), "--data", str(tiny / "eval")]) == 0
    assert main(["protocol", "check", str(out), "--data", str(tiny / "pool")]) == 2
    assert "not in the embeddings" in capsys.readouterr().err
    clean = tmp_path / "clean.json"
    assert main([*args, "--unknowns", "4", "--conditions", "clean", "--out", str(clean)]) == 0
    fold = load_protocol(clean).folds[0]  # clean only: every clean utterance may be a test
    assert len(fold.test_known) == 3 * 2 and len(fold.test_unknown) == 4 * 4


@needs_tts
def test_build_cli_condition_tests_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["corpus", "build", "--out", str(tmp_path), "--size", "tiny", "--no-baseline"]
    assert main([*args, "--condition-tests", "4"]) == 2  # would leave nothing to enroll
    assert "n_condition_tests must be in [0, 3]" in capsys.readouterr().err
    assert main([*args, "--seed", "7", "--condition-tests", "2"]) == 0
    utt2cond = read_utt2cond(tmp_path / "eval")
    n_voices = len(read_voices(tmp_path / "eval"))
    assert conditioned_utterances(utt2cond) == {
        f"{spk}-{i:02d}" for spk in read_voices(tmp_path / "eval") for i in (2, 3)
    }
    assert len(utt2cond) == n_voices * (4 + 2 * len(CONDITIONS))
    assert f"+ {n_voices * 2 * len(CONDITIONS)} test-condition copies" in capsys.readouterr().out


class _CountingFrontend:
    """A stand-in frontend: band energies as a 'speaker embedding'; counts its calls."""

    name = "toy"
    calls = 0

    def embed(self, waves: list[np.ndarray]) -> np.ndarray:
        self.calls += 1
        return np.stack([[np.sum(b**2) for b in np.array_split(w, 8)] for w in waves])


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_default_pool_is_cached(tmp_path: Path) -> None:
    frontend = _CountingFrontend()
    emb, labels = default_pool(frontend, n_voices=3, n_utts=2, cache_dir=tmp_path)
    kept = sorted(set(labels.tolist()))  # near-duplicate voices are dropped (toy embeddings)
    assert "espeak-000" in kept and emb.shape == (2 * len(kept), 8)
    assert all(labels.tolist().count(v) == 2 for v in kept)
    assert pool_cache_path("toy", 3, 2, 0, tmp_path).is_file()
    emb2, labels2 = default_pool(frontend, n_voices=3, n_utts=2, cache_dir=tmp_path)
    assert frontend.calls == 1
    np.testing.assert_array_equal(emb, emb2)
    np.testing.assert_array_equal(labels, labels2)


def test_voices_csv_columns(tmp_path: Path) -> None:
    (tmp_path / "voices.csv").write_text("speaker,engine\na,flite\n")
    from speakerrpl.errors import CorpusLayoutError

    with pytest.raises(CorpusLayoutError, match="columns"):
        read_voices(tmp_path)
    with open(tmp_path / "voices.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(
            [
                ["speaker", "engine", "voice", "language", "gender", "pool"],
                ["a", "x", "v", "en", "F", "eval"],
            ]
        )
    assert read_voices(tmp_path)["a"]["gender"] == "F"


@needs_tts
def test_baseline_on_tiny_scores_every_condition(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from speakerrpl.audio import load_audio
    from speakerrpl.embeddings import EmbeddingSet
    from speakerrpl.evaluation.baseline import corpus_baseline

    utts = read_data_dir(tiny / "eval")
    features = _CountingFrontend().embed([load_audio(u.path) for u in utts])
    emb = EmbeddingSet(features, [u.utt_id for u in utts], [u.speaker for u in utts], "toy")
    results = corpus_baseline(emb, read_voices(tiny / "eval"), n_enroll=2, n_folds=2)
    assert list(results) == ["clean", *CONDITIONS]
    assert all(0.0 <= r["eer"] <= 1.0 and 0.0 <= r["accuracy"] <= 1.0 for r in results.values())
    emb.save(tmp_path / "e.npz")
    args = ["corpus", "baseline", "--embeddings", str(tmp_path / "e.npz")]
    assert main([*args, "--data", str(tiny / "eval")]) == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in ["clean", *CONDITIONS])


@needs_tts
def test_condition_copies_do_not_depend_on_the_output_dir(tiny: Path, tmp_path: Path) -> None:
    from speakerrpl.synth import corpus

    clean = [u for u in read_data_dir(tiny / "eval") if "__" not in u.utt_id][:3]
    from speakerrpl.synth.channels import Room

    rir = np.r_[1.0, np.zeros(50), 0.5].astype(np.float32)
    corpus._init_worker([Room(rir, "small", (3.0, 3.0, 2.5), 1.5, 0.3)])
    outputs = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        paths = [str(shutil.copy(u.path, folder / u.path.name)) for u in clean]
        written = corpus._condition_task((paths[0], paths[1:], 7))
        outputs.append([sf.read(p)[0] for p, _ in written])
    assert len(outputs[0]) == len(CONDITIONS)
    for first, second in zip(*outputs, strict=True):
        np.testing.assert_array_equal(first, second)


def _digests(root: Path) -> dict[str, str]:
    import hashlib

    return {
        str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@needs_tts
def test_two_builds_are_byte_identical(tiny: Path, tmp_path: Path) -> None:
    """Same seed, another directory and another worker count: the same bytes."""
    build_corpus(tmp_path, size="tiny", seed=7, jobs=1)
    first, second = _digests(tiny), _digests(tmp_path)
    assert len(first) > 100 and first == second


@needs_tts
def test_protocol_suite_cli_on_tiny(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["protocol", "suite", "--data", str(tiny / "eval"), "--out", str(tmp_path)]
    assert main([*args, "--only", "household-k2-e3,household-k4-e1"]) == 0
    names = sorted(p.name for p in tmp_path.glob("*.json"))
    assert names == [
        "household-k2-e3-dev.json", "household-k2-e3-report.json", "household-k4-e1-dev.json",
        "household-k4-e1-report.json",
    ]  # fmt: skip
    report = load_protocol(tmp_path / "household-k4-e1-report.json")
    assert report.params["role"] == "report" and report.params["draws_per_fold"] == 10
    assert len(report.folds) == 10 * 10  # 10 report folds of 10 households
    assert main([*args, "--only", "household-k2-e3", "--draws-per-fold", "1"]) == 0
    assert len(load_protocol(tmp_path / "household-k2-e3-report.json").folds) == 10
    assert main([*args, "--only", "household-k2-e3", "--draws-per-fold", "0"]) == 2
    assert main(["protocol", "check", str(tmp_path / names[0]), "--data", str(tiny / "eval")]) == 0
    assert main([*args, "--only", "office-k50-e3"]) == 2  # 8 voices are too few
    assert main([*args, "--only", "household-k3-e3"]) == 2
    assert "unknown deployments" in capsys.readouterr().err
