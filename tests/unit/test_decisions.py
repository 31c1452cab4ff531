"""The one decision function: calibrated confidence when the identifier has it, else raw scores."""

from __future__ import annotations

import numpy as np
import pytest

from speakerrpl.decisions import UNKNOWN, decision_of, identify_embeddings
from speakerrpl.errors import InvalidInputError
from speakerrpl.identifier import OpenSetSpeakerIdentifier


def test_estimator_identifications_carry_the_calibrated_confidence() -> None:
    rng = np.random.default_rng(0)
    means = rng.normal(size=(3, 16))
    x = np.repeat(means, 4, axis=0) + 0.1 * rng.normal(size=(12, 16))
    clf = OpenSetSpeakerIdentifier(method="cosine").fit(x, np.repeat(["ann", "bob", "cy"], 4))
    queries = np.vstack([x[:1], rng.normal(size=(1, 16))])
    results = identify_embeddings(clf, queries)
    assert [r["speaker"] for r in results] == list(clf.predict(queries))
    decisions = [decision_of(r) for r in results]
    np.testing.assert_allclose([d.confidence for d in decisions], clf.confidence(queries))
    assert all(d.threshold == clf.confidence_threshold_ for d in decisions)
    assert decisions[0].known and decisions[0].confidence >= decisions[0].threshold
    assert decisions[1].speaker == UNKNOWN and decisions[1].confidence < decisions[1].threshold


def test_raw_scores_without_calibration_and_bad_input() -> None:
    d = decision_of({"speaker": "ann", "score": 2.0, "threshold": 1.0, "best_match": "ann"})
    assert (d.confidence, d.threshold, d.best_match) == (2.0, 1.0, "ann")
    with pytest.raises(InvalidInputError, match="score and a threshold"):
        decision_of({"speaker": "ann"})
    with pytest.raises(InvalidInputError, match="without a speaker"):
        decision_of({"score": 1.0})
