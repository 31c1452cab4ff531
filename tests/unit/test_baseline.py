"""Cosine baseline per deployment and the near-duplicate finder, on synthetic embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from speakerrpl.data.deployments import Deployment
from speakerrpl.data.protocols import Protocol, make_corpus_protocol
from speakerrpl.embeddings import EmbeddingSet
from speakerrpl.evaluation.baseline import cosine_baseline, deployment_baseline, near_duplicates


def _set(n_speakers: int = 30, spread: float = 0.35, seed: int = 0) -> EmbeddingSet:
    """Speakers with 8 clean clips, the last 3 with a ``far`` copy (noisier)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_speakers, 16))
    rows, ids, spk = [], [], []
    for s in range(n_speakers):
        for i in range(8):
            rows.append(centres[s] + spread * rng.standard_normal(16))
            ids.append(f"s{s:02d}-{i:02d}")
            if i >= 5:
                rows.append(centres[s] + 3 * spread * rng.standard_normal(16))
                ids.append(f"s{s:02d}-{i:02d}__far")
            spk += [f"s{s:02d}"] * (2 if i >= 5 else 1)
    return EmbeddingSet(np.asarray(rows, dtype=np.float32), ids, spk, "toy")


def test_deployment_baseline_reports_mean_and_std_per_condition() -> None:
    es = _set()
    shapes = [Deployment("household", 4, 3), Deployment("household", 8, 1), Deployment("x", 40, 1)]
    out = deployment_baseline(es, deployments=shapes)
    assert list(out) == ["household-k4-e3", "household-k8-e1"]  # 40 targets do not fit
    for figures in out.values():
        assert list(figures) == ["clean", "far"]
        assert figures["far"]["eer"] > figures["clean"]["eer"]  # the noisier copies are harder
        assert all(f["eer_std"] >= 0.0 for f in figures.values())
    assert out["household-k8-e1"]["far"]["eer"] > out["household-k4-e3"]["far"]["eer"]


def test_a_fold_of_several_draws_counts_as_their_mean() -> None:
    es = _set()
    args = (es.embeddings, es.utt_ids, es.speakers)
    four = make_corpus_protocol(
        es.utt_ids.tolist(), es.speakers.tolist(), n_targets=4, n_enroll=3, n_unknowns=8,
        n_folds=4, seed=1,
    )  # fmt: skip
    draws = [cosine_baseline(*args, Protocol([f], four.conditions))["far"] for f in four.folds]
    grouped = Protocol(four.folds, four.conditions, {"draws_per_fold": 2})
    far = cosine_baseline(*args, grouped)["far"]
    pairs = [np.mean([draws[i]["eer"], draws[i + 1]["eer"]]) for i in (0, 2)]
    assert far["eer"] == pytest.approx(np.mean([d["eer"] for d in draws]))
    assert far["eer_std"] == pytest.approx(np.std(pairs))
    assert far["eer_std"] != pytest.approx(np.std([d["eer"] for d in draws]))


def test_near_duplicates_finds_the_copied_voice_and_nothing_else() -> None:
    es = _set(n_speakers=6, spread=0.1)
    twin = es.speakers == "s01"
    copy = EmbeddingSet(
        np.r_[es.embeddings, es.embeddings[twin] + 0.01],
        np.r_[es.utt_ids, [f"twin-{u}" for u in es.utt_ids[twin]]],
        np.r_[es.speakers, ["twin"] * int(twin.sum())],
        "toy",
    )
    pairs = near_duplicates(copy, threshold=0.9)
    assert [(a, b) for a, b, _ in pairs] == [("s01", "twin")] and pairs[0][2] > 0.99
    across = near_duplicates(es, copy, threshold=0.9)
    assert {(a, b) for a, b, _ in across} == {(f"s{i:02d}", f"s{i:02d}") for i in range(6)} | {
        ("s01", "twin")
    }
