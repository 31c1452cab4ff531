"""Clustering window embeddings into speakers when the number of speakers is unknown.

:class:`AgglomerativeClustering` is average-linkage agglomerative clustering on cosine
distance that stops merging at a distance ``threshold`` (calibrated on development
conversations, see ``docs/diarization.md``). Clusters that cover too little speech are folded
into the nearest large one. Long recordings are clustered on an even subsample of at most
``max_points`` windows; the other windows join the nearest centroid, so memory stays bounded.
"""

from __future__ import annotations

import logging

import numpy as np

from speakerrpl._optional import require
from speakerrpl.errors import InvalidInputError

__all__ = ["AgglomerativeClustering", "centroids", "l2_normalise"]

logger = logging.getLogger(__name__)


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def centroids(x: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Unit-length weighted means ``(C, D)`` of the unit-length rows of each label 0..C-1.

    Example:
        >>> centroids(np.array([[1.0, 0], [0, 2], [0, 3]]), np.array([0, 1, 1])).tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """
    xn = l2_normalise(x)
    w = np.ones(len(xn)) if weights is None else np.asarray(weights, dtype=np.float64)
    count = int(labels.max()) + 1 if len(labels) else 0
    sums = np.zeros((count, xn.shape[1]))
    np.add.at(sums, labels, xn * w[:, None])
    return l2_normalise(sums)


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0..C-1 in order of first appearance."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse].astype(np.int64)


class AgglomerativeClustering:
    """Average-linkage cosine AHC with a stopping threshold.

    Args:
        threshold: merging stops when the closest clusters are further apart than this cosine
            distance (``1 - cosine similarity``).
        min_cluster_seconds: clusters whose windows cover less speech than this are merged
            into the nearest remaining cluster (0 keeps them all).
        max_points: most windows clustered directly (see the module docstring).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = np.repeat(np.eye(3, 8), 5, axis=0) + 0.05 * rng.normal(size=(15, 8))
        >>> AgglomerativeClustering(threshold=0.5)(x).tolist()
        [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2]
    """

    def __init__(
        self, threshold: float = 0.6, min_cluster_seconds: float = 0.0, max_points: int = 4000
    ) -> None:
        if not 0.0 < threshold < 2.0:
            raise InvalidInputError(
                f"threshold must be a cosine distance in (0, 2), got {threshold}"
            )
        if max_points < 2:
            raise InvalidInputError(f"max_points must be >= 2, got {max_points}")
        self.threshold = float(threshold)
        self.min_cluster_seconds = float(min_cluster_seconds)
        self.max_points = int(max_points)

    def __call__(self, x: np.ndarray, durations: np.ndarray | None = None) -> np.ndarray:
        """Cluster labels ``(N,)`` (0..C-1, in order of first appearance) of embeddings ``x``.

        Args:
            x: window embeddings ``(N, D)``.
            durations: seconds of speech each window stands for (default 1 each), used by
                ``min_cluster_seconds``.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise InvalidInputError(f"expected embeddings (N, D), got shape {x.shape}")
        if len(x) < 2:
            return np.zeros(len(x), dtype=np.int64)
        xn = l2_normalise(x)
        w = np.ones(len(x)) if durations is None else np.asarray(durations, dtype=np.float64)
        if len(x) > self.max_points:
            pick = np.linspace(0, len(x) - 1, self.max_points).round().astype(np.int64)
            sub = self._ahc(xn[pick])
            labels = np.argmax(xn @ centroids(xn[pick], sub).T, axis=1)
        else:
            labels = self._ahc(xn)
        return _relabel(self._fold_small(xn, _relabel(labels), w))

    def _ahc(self, xn: np.ndarray) -> np.ndarray:
        hierarchy = require("scipy.cluster.hierarchy", extra="diarization", purpose="clustering")
        tree = hierarchy.linkage(xn, method="average", metric="cosine")
        labels = hierarchy.fcluster(tree, t=self.threshold, criterion="distance")
        return np.asarray(labels, dtype=np.int64) - 1

    def _fold_small(self, xn: np.ndarray, labels: np.ndarray, w: np.ndarray) -> np.ndarray:
        if self.min_cluster_seconds <= 0:
            return labels
        while True:
            mass = np.bincount(labels, weights=w)
            small = np.flatnonzero((mass > 0) & (mass < self.min_cluster_seconds))
            big = np.flatnonzero(mass >= self.min_cluster_seconds)
            if len(small) == 0 or len(big) == 0:
                return labels
            cents = centroids(xn, labels)
            worst = small[np.argmin(mass[small])]
            target = big[np.argmax(cents[big] @ cents[worst])]
            labels = np.where(labels == worst, target, labels)
