"""One decision per utterance: who spoke (or ``<unknown>``), how confident, against what threshold.

Every consumer that reports a decision to a user (the Wyoming proxy, streaming identification,
batch identification, the REST additions) goes through :func:`decision_of`, so the confidence
scale is defined in one place:

- an identification that carries the identifier's calibrated ``confidence`` in [0, 1]
  (``OpenSetSpeakerIdentifier.confidence``: 1 - the estimated share of strangers scoring as high)
  reports it, with ``confidence_threshold`` (``1 - target_far`` unless pinned);
- otherwise (a model without calibration) the confidence is the raw best score and the threshold
  the raw threshold (higher = more likely that speaker; accepted when ``score >= threshold``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from speakerrpl.errors import InvalidInputError

__all__ = ["UNKNOWN", "Decision", "decision_of", "identify_embeddings"]

UNKNOWN = "<unknown>"


@dataclass(frozen=True)
class Decision:
    """A user-facing decision about one utterance.

    Attributes:
        speaker: the enrolled name, or ``<unknown>`` for a stranger.
        confidence: how strongly the model backs its best match (see the module docstring for
            the scale); comparable with ``threshold``.
        threshold: the acceptance threshold on the same scale as ``confidence``.
        best_match: the closest enrolled speaker, even when rejected (``None`` if unavailable).
    """

    speaker: str
    confidence: float
    threshold: float
    best_match: str | None = None

    @property
    def known(self) -> bool:
        """Whether the speaker was accepted as an enrolled person."""
        return self.speaker != UNKNOWN

    def to_dict(self) -> dict[str, object]:
        """JSON-ready ``speaker``, ``confidence`` and ``threshold``."""
        return {"speaker": self.speaker, "confidence": self.confidence, "threshold": self.threshold}


def decision_of(identification: Mapping[str, Any]) -> Decision:
    """Turn one identification result into a :class:`Decision`.

    Args:
        identification: a mapping with ``speaker`` and either a calibrated ``confidence`` plus
            ``confidence_threshold``, or today's ``score`` and ``threshold`` (the shape returned
            by ``SpeakerEngine.identify`` and :func:`identify_embeddings`).

    Example:
        >>> decision_of({"speaker": "alice", "score": 1.5, "threshold": 0.8}).confidence
        1.5
        >>> decision_of({"speaker": "<unknown>", "score": 0.2, "threshold": 0.8}).known
        False
        >>> decision_of({"speaker": "bob", "score": 3.1, "threshold": 1.2,
        ...              "confidence": 0.997, "confidence_threshold": 0.99}).confidence
        0.997
    """
    if "speaker" not in identification:
        raise InvalidInputError(f"identification without a speaker: {dict(identification)!r}")
    if "confidence" in identification and "confidence_threshold" in identification:
        confidence = float(identification["confidence"])
        threshold = float(identification["confidence_threshold"])
    elif "score" in identification and "threshold" in identification:
        confidence = float(identification["score"])
        threshold = float(identification["threshold"])
    else:
        raise InvalidInputError(
            f"identification needs a score and a threshold, got keys {sorted(identification)}"
        )
    best = identification.get("best_match")
    return Decision(str(identification["speaker"]), confidence, threshold, best)


def identify_embeddings(identifier: Any, embeddings: np.ndarray) -> list[dict[str, Any]]:
    """Identification results for ``(N, D)`` embeddings, from either kind of identifier.

    Args:
        identifier: a registry model (``speakerrpl.service.models.LoadedModel``, which has
            ``identify``) or a fitted estimator with ``decision_function``, ``classes_`` and
            ``threshold_`` (``OpenSetSpeakerIdentifier``).
        embeddings: one row per utterance.

    Returns:
        One mapping per row with ``speaker``, ``best_match``, ``score`` and ``threshold``, and
        ``confidence`` / ``confidence_threshold`` when the identifier is calibrated.
    """
    x = np.asarray(embeddings, dtype=np.float32)
    if hasattr(identifier, "identify"):
        return list(identifier.identify(x))
    scores = np.asarray(identifier.decision_function(x), dtype=np.float64)
    classes = [str(c) for c in identifier.classes_]
    threshold = float(identifier.threshold_)
    calibrated = hasattr(identifier, "confidence") and hasattr(identifier, "confidence_threshold_")
    decision = getattr(identifier, "decision_", None)
    if decision is not None:  # the estimator's predict rule, on the scores computed above
        posterior = identifier.condition_posterior(x)
        accepted_rows = decision.accepts(scores.max(axis=1), posterior)
        confidence = decision.confidence(scores.max(axis=1), posterior)
    else:
        accepted_rows = scores.max(axis=1) >= threshold
        if calibrated:
            confidence = np.asarray(identifier.confidence(x), dtype=np.float64)
    out = []
    for i, row in enumerate(scores):
        best = int(np.argmax(row))
        accepted = bool(accepted_rows[i])
        result: dict[str, Any] = {
            "speaker": classes[best] if accepted else UNKNOWN,
            "best_match": classes[best],
            "score": float(row[best]),
            "threshold": threshold,
        }
        if calibrated:
            result["confidence"] = float(confidence[i])
            result["confidence_threshold"] = float(identifier.confidence_threshold_)
        out.append(result)
    return out
