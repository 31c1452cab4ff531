"""Naming clusters with a fitted open-set identifier under a one-to-one assignment.

Each cluster is scored by the identifier against every enrolled speaker. Names are given by the
Hungarian algorithm (``scipy.optimize.linear_sum_assignment``) over the accepted pairs (score
``>=`` the identifier's threshold), so two clusters never share an enrolled name through the
assignment. A cluster left over may still get a taken name, but only when the identifier
accepts it for that name with ``duplicate_margin`` to spare (``inf``: never): then the
identifier itself says the two clusters are the same person. Every other cluster is a stranger:
``SPEAKER_01``, ``SPEAKER_02``, ... in order of first appearance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from speakerrpl._optional import require
from speakerrpl.errors import InvalidInputError

__all__ = [
    "Naming",
    "Scorer",
    "as_scorer",
    "centroid_scorer",
    "name_clusters",
    "stranger_label",
]


def stranger_label(index: int) -> str:
    """``SPEAKER_01`` for index 0, ``SPEAKER_02`` for 1, ...

    Example:
        >>> stranger_label(0), stranger_label(11)
        ('SPEAKER_01', 'SPEAKER_12')
    """
    return f"SPEAKER_{index + 1:02d}"


@dataclass(frozen=True)
class Scorer:
    """What naming needs from an identifier: enrolled names, a threshold and a scorer."""

    classes: tuple[str, ...]
    threshold: float
    scores: Callable[[np.ndarray], np.ndarray]


def as_scorer(identifier: Any) -> Scorer | None:
    """Wrap a fitted identifier for naming (``None`` passes through).

    Accepts a fitted :class:`~speakerrpl.identifier.OpenSetSpeakerIdentifier`
    (``classes_``, ``threshold_``, ``decision_function``), a registry model
    (:class:`~speakerrpl.service.models.LoadedModel`: ``classes``, ``threshold``, ``scores``)
    or a :class:`Scorer`. An identifier with no enrolled speakers gives ``None``.

    Raises:
        InvalidInputError: the object is none of these.
    """
    if identifier is None or isinstance(identifier, Scorer):
        return identifier
    if hasattr(identifier, "decision_function") and hasattr(identifier, "classes_"):
        classes = tuple(str(c) for c in identifier.classes_)
        return Scorer(classes, float(identifier.threshold_), identifier.decision_function)
    if all(hasattr(identifier, a) for a in ("classes", "threshold", "scores")):
        classes = tuple(str(c) for c in identifier.classes)
        return Scorer(classes, float(identifier.threshold), identifier.scores) if classes else None
    raise InvalidInputError(
        f"expected a fitted OpenSetSpeakerIdentifier or a registry model, "
        f"got {type(identifier).__name__}"
    )


def centroid_scorer(scorer: Scorer, factor: float) -> Scorer:
    """``scorer`` with the threshold for averaged embeddings: ``t - (1 - factor) * |t|``.

    The identifier's threshold ``t`` is calibrated on single utterances; a cluster's mean
    embedding is cleaner than one utterance in noise or reverberation, but a true speaker's
    centroid in a bad room can still fall short of ``t``. ``factor`` 1 keeps ``t``.

    Example:
        >>> s = Scorer(("ann",), 2.0, lambda x: x)
        >>> centroid_scorer(s, 0.75).threshold, centroid_scorer(s, 1.0) is s
        (1.5, True)
    """
    if factor == 1.0:
        return scorer
    bar = scorer.threshold - (1.0 - factor) * abs(scorer.threshold)
    return Scorer(scorer.classes, bar, scorer.scores)


@dataclass(frozen=True)
class Naming:
    """Per cluster: its ``labels`` and the ``scores`` of its best enrolled name (nan: none)."""

    labels: list[str]
    scores: np.ndarray
    enrolled: list[bool]


def name_clusters(
    scores: np.ndarray,
    classes: Sequence[str] = (),
    threshold: float = math.inf,
    duplicate_margin: float = math.inf,
) -> Naming:
    """Labels of ``C`` clusters from their identifier scores ``(C, K)`` (see module docstring).

    Args:
        scores: ``(C, K)`` identifier scores of each cluster (higher = that speaker); ``(C, 0)``
            for anonymous clustering (every cluster a ``SPEAKER_xx``).
        classes: the ``K`` enrolled names.
        threshold: the identifier's acceptance threshold.
        duplicate_margin: how far above ``threshold`` a second cluster must score to share a
            name that the assignment already gave away.

    Example:
        >>> s = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.3]])
        >>> name_clusters(s, ["ann", "bob"], threshold=0.5).labels
        ['ann', 'SPEAKER_01', 'SPEAKER_02']
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 2 and scores.shape[1] == 0:
        count = scores.shape[0]
        labels = [stranger_label(i) for i in range(count)]
        return Naming(labels, np.full(count, np.nan), [False] * count)
    if scores.ndim != 2 or scores.shape[1] != len(classes):
        raise InvalidInputError(f"expected scores (C, {len(classes)}), got {scores.shape}")
    accepted = scores >= threshold
    names: list[str | None] = [None] * len(scores)
    if accepted.any():
        optimize = require("scipy.optimize", extra="diarization", purpose="naming")
        cost = np.where(accepted, -scores, 1e6)
        for r, c in zip(*optimize.linear_sum_assignment(cost), strict=True):
            if accepted[r, c]:
                names[r] = classes[c]
    best = scores.argmax(axis=1)
    for r in range(len(scores)):
        if names[r] is None and scores[r, best[r]] >= threshold + duplicate_margin:
            names[r] = classes[best[r]]
    enrolled = [n is not None for n in names]
    strangers = iter(stranger_label(i) for i in range(len(scores)))
    labels = [n if n is not None else next(strangers) for n in names]
    return Naming(labels, scores.max(axis=1), enrolled)
