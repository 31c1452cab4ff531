"""Rejection-threshold calibration from enrollment-time data alone (docs/method.md, step 11)."""

from __future__ import annotations

import numpy as np

from speakerrpl.errors import InvalidInputError


def threshold_for_far(impostor_scores: np.ndarray, target_far: float) -> float:
    """The smallest threshold whose false-acceptance rate on ``impostor_scores`` is <= target.

    A sample is accepted when its score is ``>= threshold``. ``impostor_scores`` are the
    highest target scores of utterances that must be rejected (held-out synthetic voices).

    Args:
        impostor_scores: (N,) max target score of each impostor utterance.
        target_far: wanted false-acceptance rate in [0, 1).

    Example:
        >>> threshold_for_far(np.arange(100.0), 0.05) > 94.0
        True
        >>> float(np.mean(np.arange(100.0) >= threshold_for_far(np.arange(100.0), 0.05)))
        0.05
    """
    s = np.sort(np.asarray(impostor_scores, dtype=np.float64).ravel())[::-1]
    if s.size == 0 or not np.all(np.isfinite(s)):
        raise InvalidInputError("calibration needs at least one finite impostor score")
    if not 0 <= target_far < 1:
        raise InvalidInputError(f"target_far must be in [0, 1), got {target_far}")
    k = int(np.floor(target_far * s.size + 1e-9))  # impostors we may accept
    if k >= s.size:
        return float(s[-1])
    return float(np.nextafter(s[k], np.inf))


def raise_by_margin(threshold: float, own_scores: np.ndarray, alpha: float) -> float:
    """Move ``threshold`` a fraction ``alpha`` of the way up to the lowest own-speaker score.

    Impostor-based thresholds come from impostors the model separates too easily (enrollment
    utterances it was trained on, synthetic pool voices), so they accept many real strangers.
    ``own_scores`` are the enrollment utterances' scores for their own speaker; the threshold
    never passes their minimum when it is above ``threshold`` (``alpha < 1``).

    Args:
        threshold: the impostor-calibrated threshold.
        own_scores: (N,) own-speaker scores of the enrollment utterances.
        alpha: fraction in [0, 1); 0 returns ``threshold`` unchanged.

    Example:
        >>> raise_by_margin(1.0, np.array([3.0, 5.0]), 0.5)
        2.0
        >>> raise_by_margin(1.0, np.array([0.5]), 0.5)  # own scores below: unchanged
        1.0
    """
    if not 0 <= alpha < 1:
        raise InvalidInputError(f"alpha must be in [0, 1), got {alpha}")
    own = np.asarray(own_scores, dtype=np.float64).ravel()
    if alpha == 0 or own.size == 0:
        return float(threshold)
    return float(threshold + alpha * max(float(own.min()) - threshold, 0.0))
