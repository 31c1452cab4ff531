"""Class extension (docs/method.md, step 4): synthetic unknown classes and adaptive anchors.

From the target enrollment embeddings and a synthetic-voice pool this picks

- ``U`` *unknown* voices whose mean cosine to the target centroids is below a bound, taken
  alternately from the most- and the least-similar end so both hard and easy negatives exist
  (the published rule, ``rule="mean"``); or, with ``rule="per_target"``, the bound applies
  per target: the targets in turn each take their own hardest allowed negative (the most
  similar free voice below the bound *for that target*), alternating with the voice farthest
  from every target;
- ``A`` *anchor* voices per target: the pool voices nearest that target's centroid (hard
  negatives right beside it, chosen from this enrollment's data: hence "adaptive");
- the remaining voices, from which a few are held out for threshold calibration.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from speakerrpl.errors import InvalidInputError
from speakerrpl.vectors import centroids

logger = logging.getLogger(__name__)

UNKNOWN_RULES = ("mean", "per_target")
"""How unknown voices are chosen: the published mean-cosine rule or the per-target one."""


@dataclass(frozen=True)
class ClassExtension:
    """The chosen pool voices: ``unknown`` and ``anchors`` become classes, ``rest`` is unused."""

    unknown: tuple[str, ...]
    anchors: tuple[str, ...]
    rest: tuple[str, ...]


def _alternate(candidates: np.ndarray, order_key: np.ndarray, count: int) -> list[int]:
    """Take ``count`` items alternately from the high and the low end of ``order_key``."""
    ranked = candidates[np.argsort(-order_key, kind="stable")].tolist()
    picked: list[int] = []
    lo, hi = 0, len(ranked) - 1
    while len(picked) < count and lo <= hi:
        if len(picked) % 2 == 0:
            picked.append(ranked[lo])
            lo += 1
        else:
            picked.append(ranked[hi])
            hi -= 1
    return picked


def _per_target(sim: np.ndarray, candidates: np.ndarray, bound: float, count: int) -> list[int]:
    """Alternately the next target's hardest allowed free voice and the easiest free voice.

    ``sim`` (V, K) holds the cosine of every voice to every target centroid. A voice is an
    allowed hard negative of target ``k`` when its cosine to ``k`` is below ``bound``; hardness
    is that cosine. Easiness is the lowest maximum cosine to any target. A target with no
    allowed voice left gives its turn to the next one.
    """
    by_target = [
        [v for v in candidates[np.argsort(-sim[candidates, k], kind="stable")] if sim[v, k] < bound]
        for k in range(sim.shape[1])
    ]
    easy = candidates[np.argsort(sim[candidates].max(axis=1), kind="stable")].tolist()
    picked: list[int] = []
    taken: set[int] = set()
    turn = 0
    while len(picked) < min(count, len(candidates)):
        if len(picked) % 2 == 0:
            for _ in range(len(by_target)):
                hard = [v for v in by_target[turn % len(by_target)] if v not in taken]
                turn += 1
                if hard:
                    break
            ranked = hard or easy
        else:
            ranked = easy
        voice = next(int(v) for v in ranked if v not in taken)
        picked.append(voice)
        taken.add(voice)
    return picked


def select_class_extension(
    target_embeddings: np.ndarray,
    target_labels: Sequence[str],
    pool_embeddings: np.ndarray,
    pool_labels: Sequence[str],
    n_unknown: int = 40,
    n_anchors: int = 1,
    bound: float = 0.3,
    random_state: int = 0,
    rule: str = "mean",
) -> ClassExtension:
    """Pick unknown and anchor voices from the pool for one enrollment.

    Args:
        target_embeddings: (N, D) enrollment embeddings; target_labels: (N,) speaker names.
        pool_embeddings: (P, D) synthetic-voice embeddings; pool_labels: (P,) voice names.
        n_unknown: ``U``, number of unknown classes (fewer if too few voices pass the bound).
        n_anchors: ``A`` per target; each anchor voice is used once.
        bound: unknown voices must have mean cosine to the target centroids below this.
        random_state: seed that breaks ties between equally similar voices.
        rule: ``mean`` (published): unknown voices have mean cosine to the target centroids
            below ``bound`` and alternate between the highest and the lowest mean;
            ``per_target``: the bound applies per target (a voice is an allowed negative of
            each target it is below ``bound`` for, and unknown only if allowed for one) and the
            picks alternate between the next target's hardest allowed free voice (targets in
            turn) and the voice farthest from every target.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> pool, names = rng.normal(size=(40, 8)), [f"v{i // 2}" for i in range(40)]
        >>> tgt, tl = rng.normal(size=(6, 8)), ["a", "a", "a", "b", "b", "b"]
        >>> ext = select_class_extension(tgt, tl, pool, names, n_unknown=4, bound=1.0)
        >>> len(ext.unknown), len(ext.anchors), len(ext.rest)
        (4, 2, 14)
        >>> ext = select_class_extension(tgt, tl, pool, names, 4, bound=1.0, rule="per_target")
        >>> len(ext.unknown), len(ext.anchors), len(ext.rest)
        (4, 2, 14)
    """
    if rule not in UNKNOWN_RULES:
        raise InvalidInputError(f"rule must be one of {UNKNOWN_RULES}, got {rule!r}")
    if n_unknown < 0 or n_anchors < 0:
        raise InvalidInputError(f"need n_unknown, n_anchors >= 0, got {n_unknown}, {n_anchors}")
    names, tc = centroids(target_embeddings, target_labels)
    voices, vc = centroids(pool_embeddings, pool_labels)
    if len(voices) < n_unknown + n_anchors * len(names):
        logger.warning(
            "pool has %d voices, fewer than the %d requested classes",
            len(voices),
            n_unknown + n_anchors * len(names),
        )
    tie = np.random.default_rng(random_state).permutation(len(voices))
    perm_voices = vc[tie]
    sim = perm_voices @ tc.T  # (V, K), voices in the tie-broken order
    taken: set[int] = set()
    anchors: list[int] = []
    for k in range(len(names)):
        nearest = [v for v in np.argsort(-sim[:, k], kind="stable").tolist() if v not in taken]
        anchors += nearest[:n_anchors]
        taken.update(nearest[:n_anchors])
    key = sim.mean(axis=1) if rule == "mean" else sim.min(axis=1)
    free = np.asarray(
        [v for v in range(len(voices)) if v not in taken and key[v] < bound], dtype=np.int64
    )
    if free.size < n_unknown:
        logger.warning(
            "only %d pool voices have %s < %.2f; using all of them",
            free.size,
            "mean cosine to the targets" if rule == "mean" else "a cosine to some target",
            bound,
        )
    if not free.size:
        unknown: list[int] = []
    elif rule == "mean":
        unknown = _alternate(free, key[free], n_unknown)
    else:
        unknown = _per_target(sim, free, bound, n_unknown)
    used = taken | set(unknown)
    name = [voices[i] for i in tie.tolist()]
    return ClassExtension(
        unknown=tuple(name[v] for v in unknown),
        anchors=tuple(name[v] for v in anchors),
        rest=tuple(name[v] for v in range(len(voices)) if v not in used),
    )
