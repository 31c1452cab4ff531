"""Deployment protocols: household / office shapes, dev and report folds."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from speakerrpl.data import deployments as dep
from speakerrpl.data.protocols import draws_per_fold, load_protocol
from speakerrpl.errors import ProtocolError


def _corpus(n_speakers: int = 70, n_clean: int = 8, n_tests: int = 3) -> tuple[list, list]:
    ids, speakers = [], []
    for s in range(n_speakers):
        for i in range(n_clean):
            ids.append(f"s{s:02d}-{i:02d}")
            if i >= n_clean - n_tests:
                ids += [f"s{s:02d}-{i:02d}__far", f"s{s:02d}-{i:02d}__short"]
    speakers = [u.split("-")[0] for u in ids]
    return ids, speakers


def test_grid_has_the_issue_shapes() -> None:
    shapes = {(d.name, d.n_targets, d.n_enroll) for d in dep.DEPLOYMENTS}
    assert {("household", k, e) for k in (2, 4, 8) for e in range(1, 6)} <= shapes
    assert {("office", 20, 3), ("office", 50, 3)} <= shapes


def test_dev_and_report_folds_are_independent_and_seeded() -> None:
    ids, speakers = _corpus()
    household = dep.Deployment("household", 4, 3)
    dev = dep.deployment_protocol(ids, speakers, household, "dev")
    report = dep.deployment_protocol(ids, speakers, household, "report")
    assert len(dev.folds) == household.dev_folds and len(report.folds) == household.report_folds
    assert (dev.params["role"], report.params["role"]) == ("dev", "report")
    dev_sets = {tuple(f.targets) for f in dev.folds}
    assert not dev_sets & {tuple(f.targets) for f in report.folds}
    again = dep.deployment_protocol(ids, speakers, household, "report")
    assert again.to_dict() == report.to_dict()
    other = dep.deployment_protocol(ids, speakers, household, "report", seed=1)
    assert other.to_dict()["hash"] != report.to_dict()["hash"]
    for fold in report.folds:
        assert len(fold.targets) == 4 and all(len(v) == 3 for v in fold.enroll.values())
        assert len({u.split("-")[0] for u in fold.test_unknown}) == 20
        # tests are the conditioned utterances, enrollment the clean-only ones
        assert all(int(u.split("-")[1]) >= 5 for u in fold.test_known + fold.test_unknown)
        assert all(int(u.split("-")[1]) < 5 for us in fold.enroll.values() for u in us)
    assert report.conditions == ["clean", "far", "short"]


def test_a_household_fold_is_several_households_drawn_from_the_same_stream() -> None:
    ids, speakers = _corpus()
    one = dep.Deployment("household", 4, 3, report_folds=2)
    grouped = replace(one, draws_per_fold=3)
    single = dep.deployment_protocol(ids, speakers, one, "report")
    several = dep.deployment_protocol(ids, speakers, grouped, "report")
    assert (draws_per_fold(single), draws_per_fold(several)) == (1, 3)
    assert len(several.folds) == 6 and several.folds[:2] == single.folds
    assert len({tuple(f.targets) for f in several.folds}) == 6
    households = [d for d in dep.DEPLOYMENTS if d.name == "household"]
    assert {d.draws_per_fold for d in households} == {dep.HOUSEHOLDS_PER_FOLD}
    assert {d.draws_per_fold for d in dep.DEPLOYMENTS if d.name == "office"} == {1}
    with pytest.raises(ProtocolError, match="draws_per_fold"):
        dep.deployment_protocol(ids, speakers, replace(one, draws_per_fold=0), "report")


def test_office_caps_unknowns_and_too_small_corpus_fails() -> None:
    ids, speakers = _corpus(n_speakers=60)
    office = dep.Deployment("office", 50, 3, 50, dev_folds=2, report_folds=2)
    protocol = dep.deployment_protocol(ids, speakers, office, "dev")
    assert len({u.split("-")[0] for u in protocol.folds[0].test_unknown}) == 10
    small_ids, small_speakers = _corpus(n_speakers=40)
    with pytest.raises(ProtocolError, match="office-k50-e3"):
        dep.deployment_protocol(small_ids, small_speakers, office, "dev")
    with pytest.raises(ProtocolError, match="role"):
        dep.deployment_protocol(ids, speakers, office, "test")


def test_suite_round_trips_through_json(tmp_path: Path) -> None:
    ids, speakers = _corpus()
    wanted = [d for d in dep.DEPLOYMENTS if d.stem in ("household-k2-e1", "office-k20-e3")]
    suite = dep.make_suite(ids, speakers, deployments=wanted)
    assert sorted(suite) == [
        "household-k2-e1-dev", "household-k2-e1-report", "office-k20-e3-dev",
        "office-k20-e3-report",
    ]  # fmt: skip
    hashes = dep.save_suite(suite, tmp_path)
    utterances = dict(zip(ids, speakers, strict=True))
    for key, protocol in suite.items():
        loaded = load_protocol(tmp_path / f"{key}.json", utterances)
        assert loaded.to_dict()["hash"] == hashes[key] == protocol.to_dict()["hash"]
