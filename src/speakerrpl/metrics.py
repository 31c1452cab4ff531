"""Open-set identification metrics: pure functions, numpy in, float out.

Score direction everywhere: higher = more likely that enrolled speaker. Threshold decisions
accept a score ``s`` when ``s >= t``; samples with equal scores are always accepted or rejected
together, so ties between trials are handled exactly (a tie between a target and a non-target
counts half, as in the Mann-Whitney statistic). A known utterance counts as *correctly
classified* only when its true speaker's score is strictly higher than every other target's
score: a tie across classes is never a correct identification.

Definitions follow ``docs/method.md`` ("Metrics"): EER and minDCF over identification trials (every
(utterance, target) pair; unknown utterances give only non-target trials), OSCR (Dhamija et al.,
"Reducing Network Agnostophobia", NeurIPS 2018), AUROC of known vs unknown by the max target
score, and DIR@FAR (the watch-list detection-and-identification rate).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from speakerrpl.errors import InvalidInputError

__all__ = [
    "accuracy",
    "auroc",
    "correct_mask",
    "det_curve",
    "dir_at_far",
    "eer",
    "identification_trials",
    "min_dcf",
    "oscr",
    "oscr_curve",
]

FloatArray = NDArray[np.float64]


def _vector(x: ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise InvalidInputError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{name} holds NaN or infinite values")
    return arr


def _binary(scores: ArrayLike, labels: ArrayLike) -> tuple[FloatArray, NDArray[np.bool_]]:
    s = _vector(scores, "scores")
    lab = np.asarray(labels)
    if lab.shape != s.shape:
        raise InvalidInputError(f"labels shape {lab.shape} does not match scores {s.shape}")
    if not np.all((lab == 0) | (lab == 1)):
        raise InvalidInputError("labels must be 1 (target) or 0 (non-target)")
    is_target = lab.astype(bool)
    if is_target.all() or not is_target.any():
        raise InvalidInputError(
            "need both target (1) and non-target (0) trials, got "
            f"{int(is_target.sum())} target and {int((~is_target).sum())} non-target"
        )
    return s, is_target


def _matrix(scores: ArrayLike, name: str, n_classes: int | None = None) -> FloatArray:
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise InvalidInputError(f"{name} must be 2-D (N, K) with K >= 1, got shape {arr.shape}")
    if n_classes is not None and arr.shape[1] != n_classes:
        raise InvalidInputError(f"{name} has {arr.shape[1]} columns, expected {n_classes}")
    if arr.size and not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{name} holds NaN or infinite values")
    return arr


def _known_unknown(
    known_scores: ArrayLike, known_labels: ArrayLike, unknown_scores: ArrayLike
) -> tuple[FloatArray, NDArray[np.int64], FloatArray]:
    known = _matrix(known_scores, "known_scores")
    unknown = _matrix(unknown_scores, "unknown_scores", known.shape[1])
    labels = np.asarray(known_labels)
    if labels.shape != (known.shape[0],):
        raise InvalidInputError(
            f"known_labels must have shape ({known.shape[0]},), got {labels.shape}"
        )
    if labels.size and (
        not np.issubdtype(labels.dtype, np.integer)
        or labels.min() < 0
        or labels.max() >= known.shape[1]
    ):
        raise InvalidInputError(f"known_labels must be integers in 0..{known.shape[1] - 1}")
    if known.shape[0] == 0 or unknown.shape[0] == 0:
        raise InvalidInputError(
            f"need known and unknown utterances, got {known.shape[0]} and {unknown.shape[0]}"
        )
    return known, labels.astype(np.int64), unknown


def _roc_points(s: FloatArray, is_target: NDArray[np.bool_]) -> tuple[FloatArray, FloatArray]:
    """FPR and FNR after accepting all scores >= each distinct threshold, high to low.

    The first point (threshold +inf) rejects everything: FPR 0, FNR 1.
    """
    order = np.argsort(-s, kind="mergesort")
    s_sorted, tgt_sorted = s[order], is_target[order]
    last_of_group = np.r_[np.diff(s_sorted) != 0, True]
    tp = np.cumsum(tgt_sorted)[last_of_group]
    fp = np.cumsum(~tgt_sorted)[last_of_group]
    n_tgt, n_non = tgt_sorted.sum(), (~tgt_sorted).sum()
    fpr = np.r_[0.0, fp / n_non]
    fnr = np.r_[1.0, 1.0 - tp / n_tgt]
    return fpr, fnr


def det_curve(scores: ArrayLike, labels: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Return (FPR, FNR) at every distinct threshold, from reject-all to accept-all.

    Example:
        >>> fpr, fnr = det_curve([0.9, 0.2, 0.4], [1, 0, 0])
        >>> fpr.tolist(), fnr.tolist()
        ([0.0, 0.0, 0.5, 1.0], [1.0, 0.0, 0.0, 0.0])
    """
    return _roc_points(*_binary(scores, labels))


def eer(scores: ArrayLike, labels: ArrayLike) -> float:
    """Equal error rate (fraction), interpolated linearly at the FNR = FPR crossing.

    Args:
        scores: (N,) trial scores, higher = more likely target.
        labels: (N,) 1 for target trials, 0 for non-target trials; both must occur.

    Example:
        >>> eer([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0])
        0.0
        >>> eer([0.1, 0.9], [1, 0])
        1.0
    """
    fpr, fnr = _roc_points(*_binary(scores, labels))
    diff = fnr - fpr  # starts at +1, ends at <= 0, non-increasing
    i = int(np.argmax(diff <= 0))
    if diff[i] == 0:
        return float(fpr[i])
    alpha = diff[i - 1] / (diff[i - 1] - diff[i])
    return float(fpr[i - 1] + alpha * (fpr[i] - fpr[i - 1]))


def min_dcf(
    scores: ArrayLike,
    labels: ArrayLike,
    p_target: float,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> float:
    """Normalised minimum detection cost over all thresholds (accept-all and reject-all too).

    ``DCF = c_miss * p_target * P_miss + c_fa * (1 - p_target) * P_fa``, divided by
    ``min(c_miss * p_target, c_fa * (1 - p_target))`` (the cost of the best trivial system).

    Example:
        >>> min_dcf([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0], p_target=0.01)
        0.0
        >>> min_dcf([0.1, 0.9], [1, 0], p_target=0.5)
        1.0
    """
    if not 0.0 < p_target < 1.0:
        raise InvalidInputError(f"p_target must be in (0, 1), got {p_target}")
    if c_miss <= 0 or c_fa <= 0:
        raise InvalidInputError(f"costs must be positive, got c_miss={c_miss}, c_fa={c_fa}")
    fpr, fnr = _roc_points(*_binary(scores, labels))
    cost = c_miss * p_target * fnr + c_fa * (1.0 - p_target) * fpr
    return float(cost.min() / min(c_miss * p_target, c_fa * (1.0 - p_target)))


def correct_mask(known_scores: ArrayLike, known_labels: ArrayLike) -> NDArray[np.bool_]:
    """True where the true class scores strictly above every other class (ties are wrong).

    Example:
        >>> correct_mask([[2.0, 1.0], [1.0, 1.0], [0.0, 3.0]], [0, 0, 0]).tolist()
        [True, False, False]
    """
    s = _matrix(known_scores, "known_scores")
    labels = np.asarray(known_labels, dtype=np.int64)
    if labels.shape != (s.shape[0],) or (
        labels.size and (labels.min() < 0 or labels.max() >= s.shape[1])
    ):
        raise InvalidInputError(f"known_labels must be (N,) integers in 0..{s.shape[1] - 1}")
    true = s[np.arange(s.shape[0]), labels]
    others = s.copy()
    others[np.arange(s.shape[0]), labels] = -np.inf
    return np.asarray(true > others.max(axis=1), dtype=bool)


def accuracy(known_scores: ArrayLike, known_labels: ArrayLike) -> float:
    """Closed-set accuracy: the fraction of known utterances whose argmax is the true target.

    Example:
        >>> accuracy([[2.0, 1.0], [0.0, 3.0]], [0, 0])
        0.5
    """
    mask = correct_mask(known_scores, known_labels)
    if mask.size == 0:
        raise InvalidInputError("need at least one known utterance")
    return float(mask.mean())


def oscr_curve(
    known_scores: ArrayLike, known_labels: ArrayLike, unknown_scores: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Return (FPR on unknowns, correct-classification rate on knowns) at every threshold.

    Points run from reject-all (0, 0) to accept-all (1, accuracy).

    Example:
        >>> fpr, ccr = oscr_curve([[0.9, 0.1], [0.2, 0.7]], [0, 1], [[0.5, 0.4]])
        >>> fpr.tolist(), ccr.tolist()
        ([0.0, 0.0, 0.0, 1.0], [0.0, 0.5, 1.0, 1.0])
    """
    known, labels, unknown = _known_unknown(known_scores, known_labels, unknown_scores)
    correct = correct_mask(known, labels)
    s = np.r_[known.max(axis=1), unknown.max(axis=1)]
    is_unknown = np.r_[np.zeros(known.shape[0], bool), np.ones(unknown.shape[0], bool)]
    hit = np.r_[correct, np.zeros(unknown.shape[0], bool)]
    order = np.argsort(-s, kind="mergesort")
    last_of_group = np.r_[np.diff(s[order]) != 0, True]
    fpr = np.cumsum(is_unknown[order])[last_of_group] / unknown.shape[0]
    ccr = np.cumsum(hit[order])[last_of_group] / known.shape[0]
    return np.r_[0.0, fpr], np.r_[0.0, ccr]


def oscr(known_scores: ArrayLike, known_labels: ArrayLike, unknown_scores: ArrayLike) -> float:
    """Area under the open-set classification rate curve (CCR vs FPR), in [0, 1].

    Args:
        known_scores: (N, K) scores of target-speaker test utterances.
        known_labels: (N,) index in 0..K-1 of each utterance's true target.
        unknown_scores: (M, K) scores of unknown-speaker test utterances.

    Example:
        >>> oscr([[0.9, 0.1], [0.2, 0.7]], [0, 1], [[0.5, 0.4]])
        1.0
    """
    fpr, ccr = oscr_curve(known_scores, known_labels, unknown_scores)
    return float(np.sum(np.diff(fpr) * (ccr[1:] + ccr[:-1]) / 2.0))


def auroc(known_max: ArrayLike, unknown_max: ArrayLike) -> float:
    """Area under the ROC of known (positive) vs unknown (negative) max target scores.

    Ties count half (the Mann-Whitney U statistic divided by N * M).

    Example:
        >>> auroc([0.9, 0.8], [0.1, 0.85])
        0.75
    """
    pos, neg = _vector(known_max, "known_max"), _vector(unknown_max, "unknown_max")
    if pos.size == 0 or neg.size == 0:
        raise InvalidInputError(f"need known and unknown scores, got {pos.size} and {neg.size}")
    s = np.r_[pos, neg]
    fpr, fnr = _roc_points(s, np.r_[np.ones(pos.size, bool), np.zeros(neg.size, bool)])
    tpr = 1.0 - fnr
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def dir_at_far(
    known_scores: ArrayLike,
    known_labels: ArrayLike,
    unknown_scores: ArrayLike,
    far: float = 0.01,
) -> float:
    """Detection-and-identification rate at a false-alarm rate on unknowns of at most ``far``.

    The threshold is the lowest one at which at most ``floor(far * M)`` of the M unknown
    utterances are accepted (all unknowns tied at a score are accepted or rejected together);
    DIR is the fraction of known utterances that are accepted and correctly identified.

    Example:
        >>> dir_at_far([[0.9, 0.1], [0.2, 0.4]], [0, 1], [[0.5, 0.3]], far=0.01)
        0.5
    """
    if not 0.0 <= far <= 1.0:
        raise InvalidInputError(f"far must be in [0, 1], got {far}")
    known, labels, unknown = _known_unknown(known_scores, known_labels, unknown_scores)
    correct = correct_mask(known, labels)
    u = np.sort(unknown.max(axis=1))[::-1]
    n_accept = math.floor(far * u.size + 1e-9)
    if n_accept >= u.size:
        return float(correct.mean())
    return float(np.mean(correct & (known.max(axis=1) > u[n_accept])))


def identification_trials(
    known_scores: ArrayLike, known_labels: ArrayLike, unknown_scores: ArrayLike
) -> tuple[FloatArray, NDArray[np.int64]]:
    """Flatten (utterance x target) scores into the trial list of ``docs/method.md``.

    Every (test utterance, enrolled target) pair is a trial; it is a target trial when the
    utterance's speaker is that target. Unknown utterances give only non-target trials.

    Returns:
        ``(scores, labels)``: (N*K + M*K,) float64 scores and int64 labels (1 target, 0 not).

    Example:
        >>> s, y = identification_trials([[0.9, 0.1]], [0], [[0.5, 0.3]])
        >>> s.tolist(), y.tolist()
        ([0.9, 0.1, 0.5, 0.3], [1, 0, 0, 0])
    """
    known, labels, unknown = _known_unknown(known_scores, known_labels, unknown_scores)
    onehot = np.zeros(known.shape, dtype=np.int64)
    onehot[np.arange(known.shape[0]), labels] = 1
    scores = np.r_[known.ravel(), unknown.ravel()]
    trial_labels = np.r_[onehot.ravel(), np.zeros(unknown.size, dtype=np.int64)]
    return scores, trial_labels
