"""From labelled windows to speaker turns: centroid re-assignment, smoothing, boundaries.

1. :func:`reassign`: each window moves to the cluster whose centroid it is closest to (a few
   k-means steps from the clustering's partition; fixes chaining errors of agglomeration).
2. :func:`smooth`: inside a speech region, a run of windows shorter than ``min_run`` windows
   between two runs of one same label takes that label (isolated flips are mostly overlap or
   transitions).
3. :func:`turns`: every instant of a speech region takes the label of the window whose centre
   is nearest, so a change of speaker falls midway between the centres of the two windows;
   touching pieces with the same label are merged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from speakerrpl.diarization.clustering import centroids, l2_normalise

__all__ = ["reassign", "smooth", "turns"]


def reassign(x: np.ndarray, labels: np.ndarray, iterations: int = 2) -> np.ndarray:
    """Labels after ``iterations`` nearest-centroid steps (emptied clusters disappear).

    Example:
        >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.2, 0.9]])
        >>> reassign(x, np.array([0, 0, 0, 1])).tolist()
        [0, 0, 1, 1]
    """
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return labels
    xn = l2_normalise(x)
    for _ in range(iterations):
        new = np.argmax(xn @ centroids(xn, labels).T, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
    _, labels = np.unique(labels, return_inverse=True)
    return labels.astype(np.int64)


def _region_ids(windows: np.ndarray, regions: Sequence[tuple[float, float]]) -> np.ndarray:
    starts = np.asarray([a for a, _ in regions], dtype=np.float64)
    return np.searchsorted(starts, windows[:, 0] + 1e-6, side="right") - 1


def smooth(
    windows: np.ndarray,
    labels: np.ndarray,
    regions: Sequence[tuple[float, float]],
    min_run: int = 2,
) -> np.ndarray:
    """Labels with runs shorter than ``min_run`` windows flanked by one label relabelled."""
    labels = np.asarray(labels, dtype=np.int64).copy()
    if min_run <= 1 or len(labels) < 3:
        return labels
    region = _region_ids(windows, regions)
    for r in np.unique(region):
        idx = np.flatnonzero(region == r)
        run_starts = [0, *(np.flatnonzero(np.diff(labels[idx]) != 0) + 1).tolist(), len(idx)]
        for k in range(1, len(run_starts) - 2):
            a, b = run_starts[k], run_starts[k + 1]
            left, right = labels[idx[a - 1]], labels[idx[b]]
            if b - a < min_run and left == right:
                labels[idx[a:b]] = left
    return labels


def turns(
    windows: np.ndarray,
    labels: np.ndarray,
    regions: Sequence[tuple[float, float]],
) -> list[tuple[float, float, int]]:
    """Speaker turns ``(start, end, cluster)`` covering each speech region that has windows."""
    out: list[tuple[float, float, int]] = []
    if len(windows) == 0:
        return out
    region = _region_ids(windows, regions)
    centres = windows.mean(axis=1)
    for r in np.unique(region):
        a, b = regions[int(r)]
        idx = np.flatnonzero(region == r)
        cuts = [a, *((centres[idx[:-1]] + centres[idx[1:]]) / 2).tolist(), b]
        for k, i in enumerate(idx):
            start, end, label = cuts[k], cuts[k + 1], int(labels[i])
            if end <= start:
                continue
            if out and out[-1][2] == label and abs(out[-1][1] - start) < 1e-6:
                out[-1] = (out[-1][0], end, label)
            else:
                out.append((start, end, label))
    return out
