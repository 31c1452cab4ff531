"""Unit-length embeddings and centroid-cosine scoring, shared by every stage.

The identifier's cosine method and its class extension, the corpus baseline, the projection
plot and the GE2E frontend all normalise and score with these functions, so "cosine to an
enrolled speaker" means one computation everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["centroids", "cosine_scores", "l2_normalize"]

_EPS = 1e-12  # a zero row stays zero instead of becoming NaN


def l2_normalize(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """``x`` divided by its L2 norm along ``axis`` (floating dtype kept, integers -> float64).

    Example:
        >>> l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
        [[0.6, 0.8], [0.0, 0.0]]
    """
    arr = np.asarray(x)
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    return arr / np.maximum(np.linalg.norm(arr, axis=axis, keepdims=True), _EPS).astype(arr.dtype)


def centroids(embeddings: ArrayLike, labels: Sequence[object]) -> tuple[list[str], np.ndarray]:
    """Unit-length mean of the unit-length embeddings of each label, in first-seen order.

    Computed in float64; labels are compared as strings.

    Example:
        >>> names, c = centroids(np.array([[1.0, 0], [3, 0], [0, 2]]), ["a", "a", "b"])
        >>> names, c.tolist()
        (['a', 'b'], [[1.0, 0.0], [0.0, 1.0]])
    """
    lab = np.asarray([str(v) for v in labels])
    names = list(dict.fromkeys(lab.tolist()))
    unit = l2_normalize(np.asarray(embeddings, dtype=np.float64))
    return names, l2_normalize(np.stack([unit[lab == n].mean(axis=0) for n in names]))


def cosine_scores(x: ArrayLike, unit_centroids: np.ndarray) -> np.ndarray:
    """Cosine of each row of ``x`` (N, D) to each unit-length centroid (K, D): (N, K).

    Example:
        >>> cosine_scores(np.array([[2.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 1.0]])).tolist()
        [[1.0, 0.0]]
    """
    return l2_normalize(x) @ np.asarray(unit_centroids).T
