"""The accept / reject rule: a calibrated confidence in [0, 1] and the threshold on it.

Every model kind (cosine, any trained ensemble, any household size K) maps its best target
score ``s`` to the same scale::

    confidence(s) = 1 - (estimated share of strangers whose best score is >= s)

using a :class:`~speakerrpl.identifier.calibration.StrangerTail`: the stranger-score tail
measured on development folds for the method's default recipe (:mod:`.tails`), or, for any
other configuration, one fitted at enrollment on the held-out pool voices and the enrolled
speakers' cross scores. ``target_far = 0.01`` therefore always means ``confidence >= 0.99``,
and a threshold pinned on the confidence scale keeps its meaning when the model changes.

With ``calibration="quality"`` the tail follows the test clip's channel: the confidence of a
clip with condition posterior ``p`` (:mod:`speakerrpl.identifier.conditions`) is
``sum_c p_c * confidence_c(s)`` over per-condition tails measured the same way
(:data:`speakerrpl.identifier.tails.CONDITION_TAILS`), so a clip that sounds like a phone call
is compared with how strangers score on phone calls. Without a posterior (a bare score) the
single tail applies: the tail of the condition where strangers score highest, as with
``calibration="tail"``.
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
from speakerrpl.identifier.tails import (
    CHECKED_UP_TO_K,
    HELD_BEYOND_CHECKED_K,
    RAW,
    condition_tails,
    table_tail,
)

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
        condition_tails: ``(condition, tail)`` pairs of the quality-aware decision, in the
            order of the condition model's posterior columns; empty otherwise.
    """

    tail: StrangerTail
    n_targets: int
    score_threshold: float
    confidence_threshold: float
    source: str
    condition_tails: tuple[tuple[str, StrangerTail], ...] = ()

    @property
    def quality_aware(self) -> bool:
        """Whether the confidence depends on the clip's condition posterior."""
        return bool(self.condition_tails)

    def confidence(
        self, best_scores: np.ndarray, posterior: np.ndarray | None = None
    ) -> np.ndarray:
        """Confidence in [0, 1] of best target scores (N,); with a quality-aware decision and
        the clips' condition posterior (N, C), the posterior-weighted per-condition one."""
        best = np.asarray(best_scores, dtype=np.float64)
        if not self.condition_tails or posterior is None:
            return self.tail.confidence(best, self.n_targets)
        post = np.asarray(posterior, dtype=np.float64)
        if post.shape != (best.shape[0], len(self.condition_tails)):
            raise InvalidInputError(
                f"need a ({best.shape[0]}, {len(self.condition_tails)}) condition posterior, "
                f"got {post.shape}"
            )
        conf = np.zeros_like(best)
        for j, (_name, tail) in enumerate(self.condition_tails):
            conf += post[:, j] * tail.confidence(best, self.n_targets)
        return conf

    def accepts(self, best_scores: np.ndarray, posterior: np.ndarray | None = None) -> np.ndarray:
        """Whether each best score (N,) is accepted: its confidence reaches the threshold (for
        a single tail, equivalently the score reaches ``score_threshold``)."""
        best = np.asarray(best_scores, dtype=np.float64)
        if not self.condition_tails or posterior is None:
            return best >= self.score_threshold
        return self.confidence(best, posterior) >= self.confidence_threshold

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        out = {
            "tail": self.tail.to_dict(),
            "n_targets": self.n_targets,
            "score_threshold": self.score_threshold,
            "confidence_threshold": self.confidence_threshold,
            "source": self.source,
        }
        if self.condition_tails:
            out["condition_tails"] = [[c, t.to_dict()] for c, t in self.condition_tails]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        """Inverse of :meth:`to_dict`."""
        return cls(
            StrangerTail.from_dict(data["tail"]),
            int(data["n_targets"]),
            float(data["score_threshold"]),
            float(data["confidence_threshold"]),
            str(data["source"]),
            tuple((str(c), StrangerTail.from_dict(t)) for c, t in data.get("condition_tails", [])),
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
    by_condition = _condition_tails(settings, table_set, k)
    if pool is not None and far > 0:
        # guard: never accept more held-out pool voices than asked for
        gap = threshold_for_far(pool.max(axis=1), far) - tail.score_threshold(far, k)
        if gap > 0:
            tail = tail.shifted(gap)
            by_condition = tuple((c, t.shifted(gap)) for c, t in by_condition)
    if settings.confidence_threshold is not None:
        conf = float(settings.confidence_threshold)
        score = _score_for_confidence(tail, conf, k)
    elif settings.threshold is not None:
        score = float(settings.threshold)
        conf = float(tail.confidence(score, k))
    elif settings.calibration in ("tail", "quality"):
        conf = 1.0 - far
        score = _score_for_confidence(tail, conf, k)
    else:
        score = _legacy_threshold(settings, own, cross, pool)
        conf = float(tail.confidence(score, k))
    logger.info("decision: %s tail, score >= %.4g (confidence >= %.4g)", source, score, conf)
    return Decision(tail, k, float(score), conf, source, by_condition)


def _condition_tails(settings: Any, table_set: str, k: int) -> tuple[tuple[str, StrangerTail], ...]:
    """The per-condition tails of a quality-aware decision; empty for every other one."""
    if settings.calibration != "quality":
        return ()
    found = condition_tails(settings, table_set, k)
    if found is None:
        logger.info(
            "no per-condition stranger tails for this recipe, table set %s and K = %d: "
            "every clip is judged by the single tail",
            table_set,
            k,
        )
        return ()
    return found


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
