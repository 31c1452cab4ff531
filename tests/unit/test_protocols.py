"""Few-shot open-set protocols: drawing, stratification, JSON round trip and validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speakerrpl.data.condition_ids import (
    CONDITIONS,
    available_conditions,
    clean_utterances,
    condition_utt_id,
    select_condition_tests,
)
from speakerrpl.data.protocols import (
    Fold,
    Protocol,
    draws_per_fold,
    load_protocol,
    make_corpus_protocol,
    make_protocol,
    save_protocol,
    validate_protocol,
)
from speakerrpl.errors import ProtocolError

ENGINES = ("mbrola", "festival", "flite", "pico")


def _corpus(
    n_speakers: int = 24, n_utts: int = 6
) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    utts = {f"spk{s:02d}-{i:02d}": f"spk{s:02d}" for s in range(n_speakers) for i in range(n_utts)}
    voices = {
        f"spk{s:02d}": {"engine": ENGINES[s % 4], "language": "en", "gender": "MF"[s % 2]}
        for s in range(n_speakers)
    }
    return utts, voices


def _with_conditions(utts: dict[str, str], names: list[str]) -> dict[str, str]:
    full = dict(utts)
    for utt, spk in utts.items():
        full.update({condition_utt_id(utt, c): spk for c in names})
    return full


def test_folds_are_disjoint_and_complete() -> None:
    utts, voices = _corpus()
    protocol = make_protocol(
        utts, n_targets=8, n_enroll=3, n_unknowns=10, n_folds=4, seed=5, voices=voices
    )
    assert len(protocol.folds) == 4
    for fold in protocol.folds:
        unknown_speakers = {utts[u] for u in fold.test_unknown}
        assert len(fold.targets) == 8 and len(unknown_speakers) == 10
        assert not unknown_speakers & set(fold.targets)
        for target in fold.targets:
            enrolled = set(fold.enroll[target])
            tests = {u for u in fold.test_known if utts[u] == target}
            assert len(enrolled) == 3 and len(tests) == 3 and not enrolled & tests
    assert len({tuple(f.targets) for f in protocol.folds}) > 1  # folds differ


def test_stratified_over_engine_and_gender() -> None:
    utts, voices = _corpus(n_speakers=40)
    protocol = make_protocol(utts, n_targets=8, n_enroll=2, n_unknowns=8, seed=0, voices=voices)
    for fold in protocol.folds:
        engines = [voices[t]["engine"] for t in fold.targets]
        assert all(engines.count(e) == 2 for e in ENGINES), engines


def test_same_seed_same_protocol_other_seed_differs() -> None:
    utts, voices = _corpus()
    kwargs = {"n_targets": 6, "n_enroll": 2, "n_unknowns": 6, "voices": voices}
    assert make_protocol(utts, seed=3, **kwargs) == make_protocol(utts, seed=3, **kwargs)
    assert make_protocol(utts, seed=3, **kwargs) != make_protocol(utts, seed=4, **kwargs)


def test_excluded_pool_speakers_never_appear() -> None:
    utts, _ = _corpus()
    pool = {f"spk{s:02d}" for s in range(12)}
    protocol = make_protocol(
        utts, n_targets=4, n_enroll=2, n_unknowns=8, seed=0, exclude_speakers=pool
    )
    for fold in protocol.folds:
        used = set(fold.targets) | {utts[u] for u in fold.test_unknown}
        assert not used & pool


def test_round_trip_and_validation(tmp_path: Path) -> None:
    utts, voices = _corpus()
    full = _with_conditions(utts, ["crop", "noise5"])
    protocol = make_protocol(
        utts,
        n_targets=5,
        n_enroll=3,
        n_unknowns=7,
        seed=2,
        voices=voices,
        conditions=["clean", "crop", "noise5"],
    )
    path = tmp_path / "p.json"
    digest = save_protocol(protocol, path)
    loaded = load_protocol(path, full)
    assert loaded == protocol
    assert json.loads(path.read_text())["hash"] == digest
    with pytest.raises(ProtocolError, match="not in the embeddings"):
        load_protocol(path, _with_conditions(utts, ["crop"]))  # noise5 copies missing


def test_edited_file_fails_hash(tmp_path: Path) -> None:
    utts, _ = _corpus()
    path = tmp_path / "p.json"
    save_protocol(make_protocol(utts, n_targets=3, n_enroll=2, n_unknowns=3, seed=0), path)
    data = json.loads(path.read_text())
    data["folds"][0]["targets"][0] = "spk99"
    path.write_text(json.dumps(data))
    with pytest.raises(ProtocolError, match="hash mismatch"):
        load_protocol(path)
    path.write_text("{not json")
    with pytest.raises(ProtocolError, match="cannot read"):
        load_protocol(path)
    path.write_text('{"folds": []}')
    with pytest.raises(ProtocolError, match="not a speakerrpl protocol"):
        load_protocol(path)


@pytest.mark.parametrize("draws", [0, -1, 1.5, "2", True, None, 3])
def test_a_bad_draws_per_fold_is_refused_naming_the_file(tmp_path: Path, draws: object) -> None:
    utts, _ = _corpus()
    four = make_protocol(utts, n_targets=3, n_enroll=2, n_unknowns=3, n_folds=4, seed=0)
    path = tmp_path / "p.json"
    save_protocol(Protocol(four.folds, four.conditions, {**four.params, "draws_per_fold": 2}), path)
    assert draws_per_fold(load_protocol(path, utts)) == 2
    bad = Protocol(four.folds, four.conditions, {**four.params, "draws_per_fold": draws})
    save_protocol(bad, path)
    with pytest.raises(ProtocolError, match=r"p\.json: params\.draws_per_fold"):
        load_protocol(path)
    with pytest.raises(ProtocolError, match="draws_per_fold"):
        validate_protocol(bad, utts)


def test_validation_catches_inconsistent_speakers() -> None:
    utts, _ = _corpus()
    protocol = make_protocol(utts, n_targets=3, n_enroll=2, n_unknowns=3, seed=0)
    relabelled = dict(utts)
    victim = protocol.folds[0].test_known[0]
    relabelled[victim] = "someone-else"
    with pytest.raises(ProtocolError, match="inconsistent speaker"):
        validate_protocol(protocol, relabelled)


def test_too_few_speakers_and_bad_condition() -> None:
    utts, _ = _corpus(n_speakers=5)
    with pytest.raises(ProtocolError, match="need 4 target speakers"):
        make_protocol(utts, n_targets=4, n_enroll=2, n_unknowns=3)
    with pytest.raises(ProtocolError, match="unknown conditions"):
        make_protocol(utts, n_targets=2, n_enroll=2, n_unknowns=2, conditions=["fog"])


def test_clean_and_available_conditions() -> None:
    utts, _ = _corpus(n_speakers=2, n_utts=2)
    full = _with_conditions(utts, ["reverb"])
    full["spk00-00__crop"] = "spk00"  # incomplete: not every utterance has a crop copy
    ids, speakers = list(full), list(full.values())
    assert clean_utterances(ids, speakers) == utts
    assert available_conditions(ids) == ["clean", "reverb"]


def _with_test_subset(utts: dict[str, str], n_tests: int) -> dict[str, str]:
    """The corpus builder's layout: condition copies of the last ``n_tests`` utterances only."""
    full = dict(utts)
    for utt in select_condition_tests(utts, n_tests):
        full.update({condition_utt_id(utt, c): utts[utt] for c in CONDITIONS})
    return full


KWARGS = {"n_targets": 5, "n_enroll": 3, "n_unknowns": 7, "n_folds": 3, "seed": 4}


def test_corpus_protocol_tests_on_the_conditioned_subset(tmp_path: Path) -> None:
    utts, voices = _corpus(n_utts=12)
    full = _with_test_subset(utts, 4)
    tests = set(select_condition_tests(utts, 4))
    ids, speakers = list(full), list(full.values())
    protocol = make_corpus_protocol(ids, speakers, voices=voices, conditions="all", **KWARGS)
    assert protocol.conditions == ["clean", *CONDITIONS]
    assert protocol.params["tests"] == "conditioned"
    for fold in protocol.folds:
        enrolled = {u for us in fold.enroll.values() for u in us}
        assert len(enrolled) == 5 * 3 and not enrolled & tests
        assert set(fold.test_known) | set(fold.test_unknown) <= tests
        assert len(fold.test_known) == 5 * 4 and len(fold.test_unknown) == 7 * 4
    auto = make_corpus_protocol(ids, speakers, voices=voices, **KWARGS)
    assert auto == protocol  # auto finds every condition complete over the subset
    path = tmp_path / "p.json"
    save_protocol(protocol, path)
    assert load_protocol(path, full) == protocol
    del full[condition_utt_id(protocol.folds[0].test_unknown[0], "babble")]
    with pytest.raises(ProtocolError, match="babble' is not in the embeddings"):
        load_protocol(path, full)


def test_a_missing_copy_drops_that_test_utterance_not_the_condition() -> None:
    # a copy can fail to embed (a command crop with under 0.5 s of speech): 1 of 96 here
    utts, voices = _corpus(n_utts=12)
    full = _with_test_subset(utts, 4)
    lost = select_condition_tests(utts, 4)[0]
    del full[condition_utt_id(lost, "short")]
    ids, speakers = list(full), list(full.values())
    assert available_conditions(ids) == ["clean", *CONDITIONS]
    protocol = make_corpus_protocol(ids, speakers, voices=voices, **KWARGS)
    assert protocol.conditions == ["clean", *CONDITIONS]
    tested = {u for f in protocol.folds for u in [*f.test_known, *f.test_unknown]}
    enrolled = {u for f in protocol.folds for us in f.enroll.values() for u in us}
    assert lost not in tested | enrolled
    assert utts[lost] in {utts[u] for u in tested}  # its speaker keeps the other tests
    validate_protocol(protocol, full)


def test_corpus_protocol_without_copies_or_clean_only_is_unchanged() -> None:
    utts, voices = _corpus(n_utts=12)
    plain = make_protocol(utts, voices=voices, **KWARGS)
    for ids in (list(utts), list(_with_test_subset(utts, 4))):
        speakers = [utts[u.split("__")[0]] for u in ids]
        clean = make_corpus_protocol(ids, speakers, voices=voices, conditions="clean", **KWARGS)
        assert clean == plain
    auto = make_corpus_protocol(list(utts), list(utts.values()), voices=voices, **KWARGS)
    assert auto == plain and auto.conditions == ["clean"]
    with pytest.raises(ProtocolError, match="not in the embeddings"):  # no copies to test on
        make_corpus_protocol(list(utts), list(utts.values()), conditions="crop", **KWARGS)


def test_corpus_protocol_leaves_out_speakers_without_tests() -> None:
    utts, _ = _corpus(n_speakers=14, n_utts=6)
    full = _with_test_subset({u: s for u, s in utts.items() if s != "spk13"}, 2)
    full.update({u: s for u, s in utts.items() if s == "spk13"})
    protocol = make_corpus_protocol(list(full), list(full.values()), **KWARGS, conditions="all")
    for fold in protocol.folds:
        assert "spk13" not in fold.targets
        assert all(full[u] != "spk13" for u in fold.test_unknown)


def test_corpus_protocol_with_copies_of_every_utterance_is_unrestricted() -> None:
    utts, voices = _corpus(n_utts=6)
    everything = _with_conditions(utts, list(CONDITIONS))  # a corpus without a test subset
    protocol = make_corpus_protocol(
        list(everything), list(everything.values()), voices=voices, **KWARGS
    )
    plain = make_protocol(utts, voices=voices, conditions=["clean", *CONDITIONS], **KWARGS)
    assert protocol == plain and "tests" not in protocol.params
    with pytest.raises(ProtocolError, match="unknown conditions"):
        make_corpus_protocol(list(utts), list(utts.values()), conditions="fog", **KWARGS)


def test_validation_rejects_condition_copies_in_folds() -> None:
    utts = {"a1": "a", "a2": "a", "b1": "b", "a2__crop": "a"}
    protocol = Protocol([Fold(["a"], {"a": ["a1"]}, ["a2__crop"], ["b1"])])
    with pytest.raises(ProtocolError, match="not a clean id"):
        validate_protocol(protocol, utts)


def _write_voices(path: Path, voices: dict[str, dict[str, str]]) -> None:
    rows = ["speaker,engine,voice,language,gender,pool"]
    rows += [f"{s},{v['engine']},v,{v['language']},{v['gender']},eval" for s, v in voices.items()]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_cli_protocol_make_reads_the_voices_file_it_is_given(tmp_path: Path) -> None:
    """``--voices FILE`` reads FILE, not a voices.csv beside it (defect 6)."""
    import numpy as np

    from speakerrpl.cli import main
    from speakerrpl.embeddings import EmbeddingSet

    utts, voices = _corpus()
    EmbeddingSet(np.ones((len(utts), 4)), list(utts), list(utts.values()), "toy").save(
        tmp_path / "e.npz"
    )
    _write_voices(tmp_path / "strata.csv", voices)
    (tmp_path / "voices.csv").write_text("not,a,voices,table\n", encoding="utf-8")
    args = ["--targets", "5", "--enroll", "3", "--unknowns", "7", "--folds", "2", "--seed", "2"]
    out = tmp_path / "p.json"
    code = main(["protocol", "make", "--embeddings", str(tmp_path / "e.npz"), *args,
                 "--voices", str(tmp_path / "strata.csv"), "--out", str(out)])  # fmt: skip
    assert code == 0
    want = make_protocol(utts, n_targets=5, n_enroll=3, n_unknowns=7, n_folds=2, seed=2,
                         voices=voices)  # fmt: skip
    assert load_protocol(out, utts).folds == want.folds
    plain = make_protocol(utts, n_targets=5, n_enroll=3, n_unknowns=7, n_folds=2, seed=2)
    assert plain.folds != want.folds  # the voices file changes the folds
    missing = ["--voices", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "q.json")]
    assert main(["protocol", "make", "--embeddings", str(tmp_path / "e.npz"), *args, *missing]) == 2
