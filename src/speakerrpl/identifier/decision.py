"""The accept / reject rule: a calibrated confidence in [0, 1] and the threshold on it.

Every model kind (cosine, any trained ensemble, any household size K) maps its best target
score ``s`` to the same scale::

    confidence(s) = 1 - (estimated share of strangers whose best score is >= s)

using a :class:`~speakerrpl.identifier.calibration.StrangerTail`: the stranger-score tail
measured on development folds for the method's default recipe (:mod:`.tails`), or, for any
other configuration, one fitted at enrollment on the held-out pool voices and the enrolled
speakers' cross scores. ``target_far = 0.01`` therefore always means ``confidence >= 0.99``,
and a threshold pinned on the confidence scale keeps its meaning when the model changes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from speakerrpl.errors import InvalidInputError
from speakerrpl.identifier.calibration import (
    StrangerTail,
    fit_normal_tail,
    raise_by_margin,
    threshold_for_far,
)
from speakerrpl.identifier.tails import CHECKED_UP_TO_K, HELD_BEYOND_CHECKED_K, RAW, table_tail

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    """A fitted decision rule (see the module docstring).

    Attributes:
        tail: the stranger tail the confidence is computed from.
        n_targets: K.
        score_threshold: accept when the best raw score is ``>=`` this.
        confidence_threshold: the same threshold on the confidence scale.
        source: ``table`` (development-fold tail of this recipe), ``table-approx`` (the
            method's default-recipe tail used for another recipe) or ``fitted``
            (enrollment-time tail, for methods without a table).
    """

    tail: StrangerTail
    n_targets: int
    score_threshold: float
    confidence_threshold: float
    source: str

    def confidence(self, best_scores: np.ndarray) -> np.ndarray:
        """Confidence in [0, 1] of best target scores (N,)."""
        return self.tail.confidence(np.asarray(best_scores, dtype=np.float64), self.n_targets)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "tail": self.tail.to_dict(),
            "n_targets": self.n_targets,
            "score_threshold": self.score_threshold,
            "confidence_threshold": self.confidence_threshold,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        """Inverse of :meth:`to_dict`."""
        return cls(
            StrangerTail.from_dict(data["tail"]),
            int(data["n_targets"]),
            float(data["score_threshold"]),
            float(data["confidence_threshold"]),
            str(data["source"]),
        )


def _score_for_confidence(tail: StrangerTail, conf: float, k: int) -> float:
    if conf >= 1.0:
        return float("inf")
    if conf <= 0.0:
        return float("-inf")
    return tail.score_threshold(1.0 - conf, k)


def _impostor_tail(cross_trials: np.ndarray, pool: np.ndarray | None) -> StrangerTail:
    parts = [np.asarray(cross_trials, dtype=np.float64).ravel()]
    if pool is not None:
        parts.append(np.asarray(pool, dtype=np.float64).ravel())
    trials = np.concatenate(parts)
    trials = trials[np.isfinite(trials)]
    if trials.size < 2:
        raise InvalidInputError(
            "nothing to calibrate the confidence on: enroll two speakers or pass pool="
        )
    return StrangerTail.from_table({1: fit_normal_tail(trials)})


def calibrate_decision(
    settings: Any,
    own: np.ndarray,
    cross: np.ndarray,
    pool: np.ndarray | None,
    table_set: str = RAW,
) -> Decision:
    """Fit the decision rule of one enrollment.

    Args:
        settings: the identifier's :class:`~speakerrpl.identifier.settings.IdentifierSettings`.
        own: (N_e,) fused own-speaker scores of the enrollment utterances (in sample).
        cross: (N_e, K) fused enrollment scores with the own column set to ``-inf``.
        pool: (P, K) fused scores of the held-out calibration pool utterances, or ``None``.
        table_set: what the scores come from (:func:`speakerrpl.identifier.tails.tables`).
    """
    k = cross.shape[1]
    far = float(settings.target_far)
    tail, source = table_tail(settings, table_set)
    if tail is None:
        tail, source = _impostor_tail(cross, pool), "fitted"
    elif source != "table":
        logger.warning(
            "no stranger tail was measured for this %s recipe; using the default recipe's",
            settings.method,
        )
    beyond_check = k > CHECKED_UP_TO_K and settings.method not in HELD_BEYOND_CHECKED_K
    if source.startswith("table") and beyond_check:
        logger.warning(
            "%d enrolled speakers: the stranger tail was checked on held-out voices up to %d; "
            "with 50-100 the default let more strangers in than target_far asked "
            "(docs/calibration.md, 'Limits'); method='cosine' kept it",
            k,
            CHECKED_UP_TO_K,
        )
    if pool is not None and far > 0:
        # guard: never accept more held-out pool voices than asked for
        gap = threshold_for_far(pool.max(axis=1), far) - tail.score_threshold(far, k)
        if gap > 0:
            tail = tail.shifted(gap)
    if settings.confidence_threshold is not None:
        conf = float(settings.confidence_threshold)
        score = _score_for_confidence(tail, conf, k)
    elif settings.threshold is not None:
        score = float(settings.threshold)
        conf = float(tail.confidence(score, k))
    elif settings.calibration == "tail":
        conf = 1.0 - far
        score = _score_for_confidence(tail, conf, k)
    else:
        score = _legacy_threshold(settings, own, cross, pool)
        conf = float(tail.confidence(score, k))
    logger.info("decision: %s tail, score >= %.4g (confidence >= %.4g)", source, score, conf)
    return Decision(tail, k, float(score), conf, source)


def _legacy_threshold(
    settings: Any, own: np.ndarray, cross: np.ndarray, pool: np.ndarray | None
) -> float:
    """The former raw-score rules (``pool``, ``enrollment``, ``max``) plus the margin."""
    far, source = settings.target_far, settings.calibration
    cross_max = cross.max(axis=1)
    cross_max = cross_max[np.isfinite(cross_max)]
    thresholds = []
    if (source in ("enrollment", "max") or pool is None) and cross_max.size:
        thresholds.append(threshold_for_far(cross_max, far))
    if source in ("pool", "max") and pool is not None:
        thresholds.append(threshold_for_far(pool.max(axis=1), far))
    if not thresholds:
        raise InvalidInputError("nothing to calibrate the threshold on: pass pool= or threshold=")
    return raise_by_margin(max(thresholds), own, settings.calibration_margin)


__all__ = ["Decision", "calibrate_decision"]
