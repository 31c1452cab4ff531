"""Blend the enrollment-centroid cosine score into a trained method's fused score.

On the corpus with channel mismatch (``docs/results.md``), plain cosine against the enrollment
centroids beats the fused adapters on codec, telephone and far-field tests for small
households, and the adapters beat cosine for large ones; a weighted sum of both, each first
standardised by its own stranger-score tail at the household size K (so neither scale
dominates), beat either alone on the development folds. The weight falls with K (the adapters
learn more from more people) and is read from :data:`speakerrpl.identifier.tails.BLEND_WEIGHTS`,
linear in ``log K`` between its measured entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from speakerrpl.identifier.calibration import StrangerTail, interp_log_k
from speakerrpl.identifier.tails import RAW, tables


@dataclass(frozen=True)
class CosineBlend:
    """``weight * z(cosine) + (1 - weight) * z(fused)``, each ``z`` a stranger-tail standardisation.

    Attributes:
        weight: share of the cosine score, in [0, 1].
        cosine: ``(mean, std)`` of one target's stranger cosine scores at this K.
        adapters: ``(mean, std)`` of one target's stranger fused scores at this K.

    Example:
        >>> b = CosineBlend(0.5, (0.2, 0.1), (0.0, 2.0))
        >>> b.combine(np.array([[0.4]]), np.array([[4.0]])).tolist()
        [[2.0]]
    """

    weight: float
    cosine: tuple[float, float]
    adapters: tuple[float, float]

    def combine(self, cosine_scores: np.ndarray, fused: np.ndarray) -> np.ndarray:
        """Blended (N, K) scores from cosine (N, K) and fused adapter (N, K) scores."""
        (mc, sc), (ma, sa) = self.cosine, self.adapters
        zc = (np.asarray(cosine_scores, dtype=np.float64) - mc) / sc
        za = (np.asarray(fused, dtype=np.float64) - ma) / sa
        return self.weight * zc + (1.0 - self.weight) * za

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"weight": self.weight, "cosine": list(self.cosine), "adapters": list(self.adapters)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CosineBlend:
        """Inverse of :meth:`to_dict`."""
        mc, sc = data["cosine"]
        ma, sa = data["adapters"]
        return cls(float(data["weight"]), (float(mc), float(sc)), (float(ma), float(sa)))


def blend_weight(method: str, k: int, table_set: str = RAW) -> float:
    """The measured cosine weight of ``method`` at household size ``k`` (log-K interpolation)
    in one table set (:func:`speakerrpl.identifier.tails.tables`).

    Example:
        >>> 0.0 <= blend_weight("softmax", 3) <= 1.0
        True
    """
    table = tables(table_set)[1][method]
    ks = sorted(table)
    return interp_log_k(ks, [table[q] for q in ks], k)


def cosine_blend_for(method: str, k: int, table_set: str = RAW) -> CosineBlend:
    """The blend of ``method`` for a K-target enrollment, from the measured tables."""
    tails = tables(table_set)[0]
    cosine = StrangerTail.from_table(tails["cosine"]).params(k)
    adapters = StrangerTail.from_table(tails[method]).params(k)
    return CosineBlend(blend_weight(method, k, table_set), cosine, adapters)


__all__ = ["CosineBlend", "blend_weight", "cosine_blend_for"]
