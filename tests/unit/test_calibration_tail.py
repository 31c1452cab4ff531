"""The stranger tail: K-aware thresholds accept the asked share of simulated strangers."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from speakerrpl.errors import InvalidInputError
from speakerrpl.identifier.calibration import StrangerTail, fit_normal_tail
from speakerrpl.identifier.decision import calibrate_decision
from speakerrpl.identifier.settings import IdentifierSettings


@pytest.mark.parametrize("k", [1, 4, 20])
def test_threshold_accepts_the_requested_share_of_simulated_strangers(k: int) -> None:
    tail = StrangerTail.from_table({1: (0.3, 0.1), 20: (0.5, 0.2)})
    m, s = tail.params(k)
    rng = np.random.default_rng(k)
    best = rng.normal(m, s, size=(400_000, k)).max(axis=1)  # a stranger's best target score
    for far in (0.05, 0.01, 0.001):
        thr = tail.score_threshold(far, k)
        assert np.mean(best >= thr) == pytest.approx(far, rel=0.1)
        assert float(tail.confidence(thr, k)) == pytest.approx(1 - far, abs=1e-9)
    # distinct requested rates give distinct thresholds (the old pool rule did not)
    assert (
        tail.score_threshold(0.05, k)
        < tail.score_threshold(0.01, k)
        < tail.score_threshold(0.001, k)
    )


def test_params_interpolate_in_log_k_and_hold_beyond_the_table() -> None:
    tail = StrangerTail.from_table({2: (0.0, 1.0), 8: (1.0, 2.0)})
    assert tail.params(4) == pytest.approx((0.5, 1.5))
    assert tail.params(1) == (0.0, 1.0) and tail.params(100) == (1.0, 2.0)
    assert tail.shifted(0.25).params(8) == (1.25, 2.0)


def test_fit_normal_tail_recovers_a_normal_and_refuses_too_little_data() -> None:
    m, s = fit_normal_tail(np.random.default_rng(0).normal(-1.0, 2.0, 300_000))
    assert m == pytest.approx(-1.0, abs=0.05) and s == pytest.approx(2.0, rel=0.03)
    with pytest.raises(InvalidInputError):
        fit_normal_tail(np.array([1.0]))
    with pytest.raises(InvalidInputError):
        StrangerTail.from_table({1: (0.0, 1.0)}).score_threshold(0.0, 1)


@pytest.mark.parametrize(
    ("method", "k", "warned"),
    [("softmax", 20, False), ("softmax", 21, True), ("softmax", 100, True), ("cosine", 100, False)],
)
def test_households_beyond_the_held_out_check_are_warned_about(
    method: str, k: int, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    settings = IdentifierSettings(method=method)
    n = 3 * k
    own = np.full(n, 5.0)
    cross = np.random.default_rng(0).normal(0.0, 1.0, (n, k))
    cross[np.arange(n), np.arange(n) // 3] = -np.inf
    with caplog.at_level(logging.WARNING, logger="speakerrpl.identifier.decision"):
        decision = calibrate_decision(settings, own, cross, None, "compensated")
    assert decision.source == "table"
    assert any("checked on held-out voices" in r.getMessage() for r in caplog.records) == warned
