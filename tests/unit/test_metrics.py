"""Metrics against independent references (scikit-learn, direct threshold sweeps, pairwise
counts) and known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score, roc_curve

from speakerrpl import metrics
from speakerrpl.errors import InvalidInputError

# --- independent references ---------------------------------------------------------------


def ref_eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """scikit-learn ROC, then the FNR = FPR crossing by linear interpolation."""
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    fnr = 1.0 - tpr
    for i in range(1, len(fpr)):
        d0, d1 = fnr[i - 1] - fpr[i - 1], fnr[i] - fpr[i]
        if d0 > 0 >= d1:
            a = d0 / (d0 - d1)
            return float(fpr[i - 1] + a * (fpr[i] - fpr[i - 1]))
    raise AssertionError("no crossing")


def ref_min_dcf(scores, labels, p, c_miss=1.0, c_fa=1.0) -> float:
    """Direct sweep: every candidate threshold, count misses and false alarms."""
    scores, labels = np.asarray(scores, float), np.asarray(labels)
    best = np.inf
    for t in [*sorted(set(scores.tolist())), np.inf]:
        p_miss = np.mean(scores[labels == 1] < t)
        p_fa = np.mean(scores[labels == 0] >= t)
        best = min(best, c_miss * p * p_miss + c_fa * (1 - p) * p_fa)
    return best / min(c_miss * p, c_fa * (1 - p))


def ref_oscr_sweep(known, labels, unknown) -> float:
    """Direct sweep over thresholds with a trapezoid, argmax with strict-tie rule."""
    kmax, umax = known.max(1), unknown.max(1)
    correct = np.array(
        [
            known[i, labels[i]] > np.delete(known[i], labels[i]).max(initial=-np.inf)
            for i in range(len(labels))
        ]
    )
    pts = [(0.0, 0.0)]
    for t in sorted(set(kmax.tolist()) | set(umax.tolist()), reverse=True):
        pts.append((np.mean(umax >= t), np.mean(correct & (kmax >= t))))
    area = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        area += (x1 - x0) * (y0 + y1) / 2
    return area


def ref_oscr_pairs(known, labels, unknown) -> float:
    """Probabilistic form: P(correct known outranks unknown), ties half."""
    kmax, umax = known.max(1), unknown.max(1)
    correct = metrics.correct_mask(known, labels)
    total = 0.0
    for i in np.flatnonzero(correct):
        total += np.sum(kmax[i] > umax) + 0.5 * np.sum(kmax[i] == umax)
    return total / (len(kmax) * len(umax))


def random_open_set(seed: int, n=40, m=30, k=5, ties=False):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    known = rng.normal(size=(n, k))
    known[np.arange(n), labels] += 1.5
    unknown = rng.normal(size=(m, k))
    if ties:
        known, unknown = np.round(known), np.round(unknown)
    return known, labels, unknown


# --- EER -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("ties", [False, True])
def test_eer_matches_sklearn_roc(seed, ties):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 300)
    labels[:2] = [0, 1]
    scores = rng.normal(size=300) + labels
    if ties:
        scores = np.round(scores * 2) / 2
    assert metrics.eer(scores, labels) == pytest.approx(ref_eer(scores, labels), abs=1e-12)


def test_eer_known_answers():
    assert metrics.eer([3, 2, 1, 0], [1, 1, 0, 0]) == 0.0
    assert metrics.eer([0, 1, 2, 3], [1, 1, 0, 0]) == 1.0
    assert metrics.eer([1, 1, 1, 1], [1, 1, 0, 0]) == 0.5  # all tied: chance
    # one target among 4 non-targets ranked in the middle: FNR=FPR crossing at 0.5
    assert metrics.eer([5, 4, 3, 2, 1], [0, 0, 1, 0, 0]) == pytest.approx(0.5)


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0, 0]])
def test_single_class_is_a_clear_error(labels):
    with pytest.raises(InvalidInputError, match="both target"):
        metrics.eer([0.1, 0.2, 0.3], labels)
    with pytest.raises(InvalidInputError, match="both target"):
        metrics.min_dcf([0.1, 0.2, 0.3], labels, 0.01)


def test_bad_inputs_raise():
    with pytest.raises(InvalidInputError, match="NaN"):
        metrics.eer([np.nan, 1.0], [1, 0])
    with pytest.raises(InvalidInputError, match="does not match"):
        metrics.eer([0.1, 0.2], [1, 0, 0])
    with pytest.raises(InvalidInputError, match="1 \\(target\\)"):
        metrics.eer([0.1, 0.2], [2, 0])
    with pytest.raises(InvalidInputError, match="p_target"):
        metrics.min_dcf([0.1, 0.2], [1, 0], 1.5)
    with pytest.raises(InvalidInputError, match=r"0\.\.1"):
        metrics.oscr([[1.0, 0.0]], [2], [[0.0, 0.0]])
    with pytest.raises(InvalidInputError, match="columns"):
        metrics.oscr([[1.0, 0.0]], [0], [[0.0, 0.0, 1.0]])
    with pytest.raises(InvalidInputError, match="known and unknown"):
        metrics.auroc([], [0.3])


# --- minDCF --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("p", [0.01, 0.05, 0.1, 0.5])
@pytest.mark.parametrize("costs", [(1.0, 1.0), (10.0, 1.0)])
def test_min_dcf_matches_sweep(seed, p, costs):
    rng = np.random.default_rng(seed)
    labels = (rng.random(200) < 0.2).astype(int)
    labels[:2] = [0, 1]
    scores = np.round(rng.normal(size=200) + 2 * labels, 1)
    got = metrics.min_dcf(scores, labels, p, *costs)
    assert got == pytest.approx(ref_min_dcf(scores, labels, p, *costs), abs=1e-12)


def test_min_dcf_known_answers():
    assert metrics.min_dcf([3, 2, 1, 0], [1, 1, 0, 0], 0.01) == 0.0
    # reversed: the best is a trivial system, normalised cost 1
    assert metrics.min_dcf([0, 1, 2, 3], [1, 1, 0, 0], 0.01) == pytest.approx(1.0)
    assert metrics.min_dcf([0, 1, 2, 3], [1, 1, 0, 0], 0.5) == pytest.approx(1.0)


# --- AUROC ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("ties", [False, True])
def test_auroc_matches_sklearn(seed, ties):
    rng = np.random.default_rng(seed)
    pos, neg = rng.normal(1, 1, 50), rng.normal(0, 1, 70)
    if ties:
        pos, neg = np.round(pos), np.round(neg)
    want = roc_auc_score(np.r_[np.ones(50), np.zeros(70)], np.r_[pos, neg])
    assert metrics.auroc(pos, neg) == pytest.approx(want, abs=1e-12)


def test_auroc_known_answers():
    assert metrics.auroc([2, 3], [0, 1]) == 1.0
    assert metrics.auroc([0, 1], [2, 3]) == 0.0
    assert metrics.auroc([1, 1], [1, 1]) == 0.5


# --- OSCR, accuracy, DIR@FAR ---------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("ties", [False, True])
def test_oscr_matches_sweep_and_pairwise(seed, ties):
    known, labels, unknown = random_open_set(seed, ties=ties)
    got = metrics.oscr(known, labels, unknown)
    assert got == pytest.approx(ref_oscr_sweep(known, labels, unknown), abs=1e-12)
    assert got == pytest.approx(ref_oscr_pairs(known, labels, unknown), abs=1e-12)


def test_oscr_known_answers():
    known = np.array([[5.0, 0.0], [0.0, 5.0]])
    assert metrics.oscr(known, [0, 1], [[1.0, 1.0]]) == 1.0  # perfect
    assert metrics.oscr(known, [1, 0], [[1.0, 1.0]]) == 0.0  # every known misclassified
    assert metrics.oscr(known, [0, 1], [[9.0, 0.0]]) == 0.0  # unknown outranks all
    # a tie across classes is not a correct identification
    assert metrics.oscr([[1.0, 1.0]], [0], [[0.0, 0.0]]) == 0.0
    assert metrics.accuracy([[1.0, 1.0], [2.0, 1.0]], [0, 0]) == 0.5


def test_oscr_upper_bounded_by_accuracy_and_auroc():
    known, labels, unknown = random_open_set(7)
    o = metrics.oscr(known, labels, unknown)
    assert o <= metrics.accuracy(known, labels) + 1e-12
    assert o <= metrics.auroc(known.max(1), unknown.max(1)) + 1e-12


def ref_dir(known, labels, unknown, far):
    """Sweep every threshold, keep those with FAR <= far, take the best DIR."""
    kmax, umax = known.max(1), unknown.max(1)
    correct = metrics.correct_mask(known, labels)
    best = 0.0
    for t in [*sorted(set(kmax.tolist()) | set(umax.tolist())), np.inf]:
        if np.mean(umax >= t) <= far + 1e-12:
            best = max(best, float(np.mean(correct & (kmax >= t))))
    return best


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("far", [0.0, 0.01, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("ties", [False, True])
def test_dir_at_far_matches_sweep(seed, far, ties):
    known, labels, unknown = random_open_set(seed, m=120, ties=ties)
    got = metrics.dir_at_far(known, labels, unknown, far)
    assert got == pytest.approx(ref_dir(known, labels, unknown, far), abs=1e-12)


def test_dir_at_far_known_answers():
    known = np.array([[5.0, 0.0], [0.0, 5.0]])
    assert metrics.dir_at_far(known, [0, 1], [[1.0, 0.0]] * 100) == 1.0
    assert metrics.dir_at_far(known, [0, 1], [[9.0, 0.0]] * 100) == 0.0
    assert metrics.dir_at_far(known, [0, 1], [[9.0, 0.0]] * 100, far=1.0) == 1.0


# --- identification trials ----------------------------------------------------------------


def test_identification_trials_layout():
    known = np.array([[0.9, 0.1, 0.2], [0.3, 0.8, 0.0]])
    unknown = np.array([[0.5, 0.4, 0.6]])
    scores, labels = metrics.identification_trials(known, [0, 1], unknown)
    assert scores.tolist() == [0.9, 0.1, 0.2, 0.3, 0.8, 0.0, 0.5, 0.4, 0.6]
    assert labels.tolist() == [1, 0, 0, 0, 1, 0, 0, 0, 0]
    assert metrics.eer(scores, labels) == 0.0


# --- properties ----------------------------------------------------------------------------

score_lists = st.lists(
    st.floats(-5, 5, allow_nan=False).map(lambda x: round(x, 1)), min_size=2, max_size=40
)


@settings(max_examples=60, deadline=None)
@given(scores=score_lists, data=st.data())
def test_properties_eer_dcf(scores, data):
    n = len(scores)
    labels = data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    if len(set(labels)) < 2:
        labels[0], labels[1] = 0, 1
    s, y = np.array(scores), np.array(labels)
    e = metrics.eer(s, y)
    assert 0.0 <= e <= 1.0
    assert e == pytest.approx(ref_eer(s, y), abs=1e-9)
    # invariant under strictly increasing transforms
    assert metrics.eer(np.exp(s / 3), y) == pytest.approx(e, abs=1e-9)
    # reversing the scores mirrors the EER
    assert metrics.eer(-s, y) == pytest.approx(1.0 - e, abs=1e-9)
    d = metrics.min_dcf(s, y, 0.05)
    assert 0.0 <= d <= 1.0 + 1e-12
    assert d == pytest.approx(ref_min_dcf(s, y, 0.05), abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 4), ties=st.booleans())
def test_properties_open_set(seed, k, ties):
    known, labels, unknown = random_open_set(seed, n=12, m=9, k=k, ties=ties)
    o = metrics.oscr(known, labels, unknown)
    assert o == pytest.approx(ref_oscr_pairs(known, labels, unknown), abs=1e-12)
    a = metrics.auroc(known.max(1), unknown.max(1))
    assert o <= min(a, metrics.accuracy(known, labels)) + 1e-12
    d = metrics.dir_at_far(known, labels, unknown, 0.2)
    assert 0.0 <= d <= metrics.accuracy(known, labels)
    # shifting every score by a constant changes nothing
    assert metrics.oscr(known + 3, labels, unknown + 3) == pytest.approx(o, abs=1e-12)
