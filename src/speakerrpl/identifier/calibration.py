"""Rejection-threshold calibration from enrollment-time data alone (docs/method.md, step 11)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

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


_NORMAL = NormalDist()


def interp_log_k(ks: Sequence[int], values: Sequence[float], k: int) -> float:
    """A value measured at household sizes ``ks`` (ascending), read at ``k``: linear in
    ``log K`` between the entries, held constant beyond them.

    Example:
        >>> interp_log_k([2, 8], [0.0, 1.0], 4), interp_log_k([2, 8], [0.0, 1.0], 100)
        (0.5, 1.0)
    """
    x = np.log(np.asarray(ks, dtype=np.float64))
    return float(np.interp(np.log(max(int(k), 1)), x, np.asarray(values, dtype=np.float64)))


def fit_normal_tail(trials: np.ndarray) -> tuple[float, float]:
    """``(mean, std)`` of the normal whose 90 % and 99 % quantiles match those of ``trials``.

    Matching two upper quantiles fits the part of the impostor distribution a threshold
    lives in, not its bulk.

    Example:
        >>> m, s = fit_normal_tail(np.random.default_rng(0).normal(2.0, 0.5, 200_000))
        >>> round(m, 1), round(s, 1)
        (2.0, 0.5)
    """
    t = np.asarray(trials, dtype=np.float64).ravel()
    t = t[np.isfinite(t)]
    if t.size < 2:
        raise InvalidInputError("a stranger tail needs at least 2 finite impostor scores")
    q90, q99 = np.quantile(t, [0.9, 0.99])
    z90, z99 = _NORMAL.inv_cdf(0.9), _NORMAL.inv_cdf(0.99)
    std = max(float(q99 - q90) / (z99 - z90), 1e-6)
    return float(q90 - z90 * std), std


@dataclass(frozen=True)
class StrangerTail:
    """How strangers score against one enrolled target, by household size ``K``.

    A stranger's score for each of the K targets is modelled as normal with a K-dependent
    ``(mean, std)`` (a table measured on development folds, linear in ``log K`` between its
    entries, held constant beyond them). A stranger is accepted when its *best* target score
    passes the threshold, so the share of strangers accepted at score ``s`` is
    ``1 - (1 - p(s))^K`` with ``p`` the one-target tail. The calibrated confidence of a score
    is one minus that share: the same scale for every method and household size.

    Example:
        >>> tail = StrangerTail.from_table({2: (0.0, 1.0), 8: (1.0, 1.0)})
        >>> tail.params(4)
        (0.5, 1.0)
        >>> t = tail.score_threshold(0.01, 4)
        >>> round(float(1 - tail.confidence(t, 4)), 6)
        0.01
    """

    ks: tuple[int, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]

    @classmethod
    def from_table(cls, table: Mapping[int, tuple[float, float]]) -> StrangerTail:
        """Build from ``{K: (mean, std)}``."""
        if not table:
            raise InvalidInputError("a stranger tail table needs at least one entry")
        ks = tuple(sorted(int(k) for k in table))
        return cls(ks, tuple(float(table[k][0]) for k in ks), tuple(float(table[k][1]) for k in ks))

    def params(self, k: int) -> tuple[float, float]:
        """``(mean, std)`` of one target's stranger scores in a K-target household."""
        return interp_log_k(self.ks, self.means, k), interp_log_k(self.ks, self.stds, k)

    def shifted(self, delta: float) -> StrangerTail:
        """The same tail with every mean raised by ``delta``."""
        return StrangerTail(self.ks, tuple(m + delta for m in self.means), self.stds)

    def confidence(self, scores: np.ndarray | float, k: int) -> np.ndarray:
        """``1 - share of strangers whose best score is >= scores`` (in [0, 1])."""
        m, s = self.params(k)
        z = (np.asarray(scores, dtype=np.float64) - m) / s
        log_keep = _log_ndtr(z)  # log P(one target's stranger score < s)
        return np.exp(k * log_keep)

    def score_threshold(self, far: float, k: int) -> float:
        """The score at which a share ``far`` of strangers is accepted (K targets)."""
        if not 0 < far < 1:
            raise InvalidInputError(f"target_far must be in (0, 1), got {far}")
        m, s = self.params(k)
        per_target = -np.expm1(np.log1p(-far) / k)
        return m + s * _NORMAL.inv_cdf(1.0 - float(per_target))

    def to_dict(self) -> dict[str, list[float] | list[int]]:
        """Plain-JSON form."""
        return {"ks": list(self.ks), "means": list(self.means), "stds": list(self.stds)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StrangerTail:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(data["ks"]), tuple(data["means"]), tuple(data["stds"]))


_ERFC = np.frompyfunc(math.erfc, 1, 1)


def _log_ndtr(z: np.ndarray) -> np.ndarray:
    """``log Phi(z)``, accurate in the upper tail (where thresholds live)."""
    z = np.clip(np.asarray(z, dtype=np.float64), -37.0, 37.0)
    upper = np.asarray(_ERFC(z / math.sqrt(2.0)), dtype=np.float64) * 0.5  # 1 - Phi(z)
    lower = np.asarray(_ERFC(-z / math.sqrt(2.0)), dtype=np.float64) * 0.5  # Phi(z)
    return np.where(z > 0, np.log1p(-upper), np.log(np.maximum(lower, 1e-300)))
