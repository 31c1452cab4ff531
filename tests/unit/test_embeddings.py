"""Embedding sets (.npz) and cached batch extraction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speakerrpl.data.audio_folders import discover_audio
from speakerrpl.data.kaldi import Utterance, write_data_dir
from speakerrpl.embeddings import EmbeddingSet, extract_embeddings
from speakerrpl.embeddings.cache import EmbeddingCache, file_sha256
from speakerrpl.errors import CorpusLayoutError, EmbeddingFileError
from speakerrpl.frontends.base import Frontend


class SpectrumFrontend(Frontend):
    """A weight-free frontend: the waveform's energy in 8 frequency bands (deterministic)."""

    name = "spectrum"

    @property
    def dim(self) -> int:
        return 8

    def config(self) -> dict[str, object]:
        return {"bands": 8}

    def _embed(self, waves: list[np.ndarray]) -> np.ndarray:
        power = [np.abs(np.fft.rfft(w)) ** 2 for w in waves]
        bands = [[b.sum() for b in np.array_split(p, 8)] for p in power]
        return np.log1p(np.asarray(bands, dtype=np.float64)).astype(np.float32)


@pytest.fixture()
def frontend() -> Frontend:
    return SpectrumFrontend("cpu")


class CountingFrontend(Frontend):
    """Delegates to another frontend and records how many waveforms it embedded."""

    def __init__(self, inner: Frontend, fail_after: int | None = None) -> None:
        super().__init__("cpu")
        self.inner, self.count, self.fail_after = inner, 0, fail_after
        self.name = inner.name  # type: ignore[misc]

    @property
    def dim(self) -> int:
        return self.inner.dim

    def config(self) -> dict[str, object]:
        return self.inner.config()

    def _embed(self, waves: list[np.ndarray]) -> np.ndarray:
        if self.fail_after is not None and self.count >= self.fail_after:
            raise KeyboardInterrupt  # a crash half-way through the run
        self.count += len(waves)
        return self.inner.embed(waves)


def write_corpus(root: Path, speakers: int = 2, per_speaker: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for s in range(speakers):
        (root / f"spk{s}").mkdir(parents=True)
        for u in range(per_speaker):
            rate = (16000, 8000, 22050)[u % 3]
            wave = rng.uniform(-0.3, 0.3, rate + 137 * u)  # ~1 s, distinct lengths
            sf.write(root / f"spk{s}" / f"u{u}{('.wav', '.flac', '.ogg')[u % 3]}", wave, rate)
    return root


def test_npz_roundtrip_and_validation(tmp_path: Path) -> None:
    emb = EmbeddingSet(np.arange(6.0).reshape(3, 2), ["a", "b", "c"], ["x", "x", "y"], "campplus")
    path = tmp_path / "e.npz"
    emb.save(path)
    back = EmbeddingSet.load(path)
    assert back.embeddings.dtype == np.float32 and back.frontend == "campplus"
    np.testing.assert_array_equal(back.embeddings, emb.embeddings)
    assert back.utt_ids.tolist() == ["a", "b", "c"] and len(back) == 3 and back.dim == 2
    np.savez(tmp_path / "bad.npz", embeddings=np.zeros((2, 3)), utt_ids=np.array(["a"]))
    with pytest.raises(EmbeddingFileError, match="missing key"):
        EmbeddingSet.load(tmp_path / "bad.npz")
    np.savez(
        tmp_path / "shape.npz",
        embeddings=np.zeros((2, 3)),
        utt_ids=np.array(["a"]),
        speakers=np.array(["s"]),
        frontend=np.array("campplus"),
    )
    with pytest.raises(EmbeddingFileError, match=r"shape \(1, D\)"):
        EmbeddingSet.load(tmp_path / "shape.npz")
    (tmp_path / "junk.npz").write_text("junk")
    with pytest.raises(EmbeddingFileError, match="not a readable"):
        EmbeddingSet.load(tmp_path / "junk.npz")
    with pytest.raises(EmbeddingFileError, match="does not exist"):
        EmbeddingSet.load(tmp_path / "missing.npz")


def test_discover_folder_and_kaldi_dir(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "corpus")
    utts = discover_audio(root)
    assert [u.utt_id for u in utts][:3] == ["spk0-u0", "spk0-u1", "spk0-u2"]
    assert {u.speaker for u in utts} == {"spk0", "spk1"}
    kaldi = tmp_path / "kaldi"
    write_data_dir(kaldi, [Utterance("k1", utts[0].path, "alice")])
    assert [(u.utt_id, u.speaker) for u in discover_audio(kaldi)] == [("k1", "alice")]
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusLayoutError, match="no audio found"):
        discover_audio(tmp_path / "empty")
    with pytest.raises(CorpusLayoutError, match="does not exist"):
        discover_audio(tmp_path / "nothing")


def test_cache_second_run_and_deleted_entry(tmp_path: Path, frontend: Frontend) -> None:
    root = write_corpus(tmp_path / "corpus")
    counter = CountingFrontend(frontend)
    first, failures = extract_embeddings(root, counter, cache_dir=tmp_path / "cache", batch_size=4)
    assert failures == [] and len(first) == 6 and counter.count == 6
    counter.count = 0
    second, _ = extract_embeddings(root, counter, cache_dir=tmp_path / "cache")
    assert counter.count == 0
    np.testing.assert_array_equal(first.embeddings, second.embeddings)
    victim = discover_audio(root)[4]
    cache = EmbeddingCache(tmp_path / "cache", frontend)
    cache.path(file_sha256(victim.path)).unlink()
    third, _ = extract_embeddings(root, counter, cache_dir=tmp_path / "cache")
    assert counter.count == 1
    np.testing.assert_allclose(third.embeddings, first.embeddings, atol=1e-5)


def test_crash_half_way_keeps_finished_batches(tmp_path: Path, frontend: Frontend) -> None:
    root = write_corpus(tmp_path / "corpus")
    crashing = CountingFrontend(frontend, fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        extract_embeddings(root, crashing, cache_dir=tmp_path / "cache", batch_size=2)
    resumed = CountingFrontend(frontend)
    emb, _ = extract_embeddings(root, resumed, cache_dir=tmp_path / "cache", batch_size=2)
    assert len(emb) == 6 and resumed.count == 4  # the first batch of 2 was kept


def test_failures_are_reported_not_fatal(tmp_path: Path, frontend: Frontend) -> None:
    root = write_corpus(tmp_path / "corpus")
    (root / "spk1" / "broken.wav").write_text("not audio")
    sf.write(root / "spk1" / "silent.flac", np.zeros(32000), 16000)
    sf.write(root / "spk0" / "tiny.wav", np.full(4000, 0.3), 16000)
    emb, failures = extract_embeddings(root, frontend, cache_dir=tmp_path / "cache")
    assert len(emb) == 6
    reasons = {f.utt_id: f.reason for f in failures}
    assert set(reasons) == {"spk1-broken", "spk1-silent", "spk0-tiny"}
    assert reasons["spk1-broken"].startswith("AudioReadError")
    assert reasons["spk1-silent"].startswith("AudioTooShortError")
    assert reasons["spk0-tiny"].startswith("AudioTooShortError")
    assert "spk1-broken" not in emb.utt_ids.tolist()


def test_duplicate_content_is_embedded_once(tmp_path: Path, frontend: Frontend) -> None:
    root = write_corpus(tmp_path / "corpus", speakers=1, per_speaker=1)
    (root / "copy").mkdir()
    (root / "copy" / "same.wav").write_bytes((root / "spk0" / "u0.wav").read_bytes())
    counter = CountingFrontend(frontend)
    emb, _ = extract_embeddings(root, counter, cache_dir=tmp_path / "cache")
    assert counter.count == 1 and len(emb) == 2
    np.testing.assert_array_equal(emb.embeddings[0], emb.embeddings[1])
