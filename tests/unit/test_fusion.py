"""Eigenvalue-variance selection, score fusion, threshold calibration."""

from __future__ import annotations

import numpy as np
import pytest

from speakerrpl.errors import InvalidInputError
from speakerrpl.identifier.calibration import threshold_for_far
from speakerrpl.identifier.fusion import eigenvalue_variance, fuse_scores, select_members


def test_eigenvalue_variance_matches_direct_computation() -> None:
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(4, 6, 3))
    for m in range(4):
        eig = np.linalg.eigvals(pts[m] @ pts[m].T).real
        assert eigenvalue_variance(pts)[m] == pytest.approx(np.var(eig), rel=1e-9)


def test_selection_drops_highest_of_both_and_modes() -> None:
    v_q = np.array([5.0, 1, 2, 3, 4, 0])
    v_p = np.array([0.0, 9, 1, 2, 3, 4])
    assert select_members(v_q, v_p, r=1).tolist() == [2, 3, 4, 5]
    assert select_members(v_q, v_p, r=2).tolist() == [2, 3]
    assert select_members(v_q, v_p, r=2, mode="high").tolist() == [0, 1, 4, 5]
    assert select_members(v_q, v_p, r=2, mode="none").tolist() == list(range(6))
    with pytest.raises(InvalidInputError):
        select_members(v_q, v_p, r=6)
    with pytest.raises(InvalidInputError):
        select_members(v_q, v_p, mode="median")


def test_fusion_rules() -> None:
    rng = np.random.default_rng(1)
    lg = rng.normal(size=(3, 5, 4))
    np.testing.assert_allclose(fuse_scores(lg, 2), lg[:, :, :2].mean(axis=0))
    prob = fuse_scores(lg, 2, "prob")
    direct = np.exp(lg) / np.exp(lg).sum(axis=2, keepdims=True)
    np.testing.assert_allclose(prob, direct[:, :, :2].mean(axis=0))
    mu, sd = np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 4.0])
    z = fuse_scores(lg, 2, "zscore", (mu, sd))
    np.testing.assert_allclose(z, ((lg[:, :, :2] - mu[:, None, None]) / sd[:, None, None]).mean(0))
    with pytest.raises(InvalidInputError):
        fuse_scores(lg, 2, "zscore")
    with pytest.raises(InvalidInputError):
        fuse_scores(lg, 5)


@pytest.mark.parametrize("far", [0.0, 0.01, 0.1, 0.5])
def test_threshold_reaches_requested_far(far: float) -> None:
    s = np.random.default_rng(2).normal(size=1000)
    theta = threshold_for_far(s, far)
    assert np.mean(s >= theta) <= far
    assert np.mean(s >= np.nextafter(np.sort(s)[::-1][int(far * 1000)], -np.inf)) > far


def test_threshold_rejects_bad_input() -> None:
    with pytest.raises(InvalidInputError):
        threshold_for_far(np.array([]), 0.01)
    with pytest.raises(InvalidInputError):
        threshold_for_far(np.array([1.0]), 1.5)
