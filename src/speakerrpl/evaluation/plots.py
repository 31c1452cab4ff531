"""Figures of an evaluation: DET curves, OSCR curves, score histograms, feature projections.

Each function takes plain arrays, writes one PNG and returns its path. matplotlib is an
optional dependency (``pip install 'speakerrpl[plots]'``), imported on first use with the
non-interactive Agg backend.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from speakerrpl import metrics
from speakerrpl._optional import require
from speakerrpl.vectors import l2_normalize

__all__ = ["pca_2d", "plot_det", "plot_oscr", "plot_projection", "plot_score_histograms"]

logger = logging.getLogger(__name__)

OpenSetScores = tuple[ArrayLike, ArrayLike, ArrayLike]
_DET_TICKS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.95)
_CLIP = 5e-4


def _pyplot() -> Any:
    matplotlib = require("matplotlib", extra="plots", purpose="evaluation figures")
    matplotlib.use("Agg", force=True)
    return require("matplotlib.pyplot", extra="plots")


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    logger.info("wrote %s", path)
    return path


def _probit(p: NDArray[np.float64]) -> NDArray[np.float64]:
    inv = NormalDist().inv_cdf
    return np.array([inv(float(x)) for x in np.clip(p, _CLIP, 1.0 - _CLIP)])


def plot_det(curves: Mapping[str, tuple[ArrayLike, ArrayLike]], path: str | Path) -> Path:
    """DET curves (miss vs false-alarm rate on normal-deviate axes), one per method.

    Args:
        curves: method name -> (trial scores, trial labels 1 target / 0 non-target).
        path: the PNG to write.

    Example:
        >>> import tempfile, os
        >>> p = plot_det({"a": ([0.9, 0.4, 0.5, 0.1], [1, 1, 0, 0])},
        ...              os.path.join(tempfile.mkdtemp(), "det.png"))
        >>> p.stat().st_size > 0
        True
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    for name, (scores, labels) in curves.items():
        fpr, fnr = metrics.det_curve(scores, labels)
        e = metrics.eer(scores, labels)
        ax.plot(_probit(fpr), _probit(fnr), label=f"{name} (EER {100 * e:.2f}%)")
    ticks = _probit(np.array(_DET_TICKS))
    labels_txt = [f"{100 * t:g}" for t in _DET_TICKS]
    ax.set_xticks(ticks, labels_txt)
    ax.set_yticks(ticks, labels_txt)
    lim = (float(_probit(np.array([_CLIP]))[0]), float(ticks[-1]))
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.plot(lim, lim, color="0.8", lw=0.8, ls="--")
    ax.set_xlabel("false-alarm rate (%)")
    ax.set_ylabel("miss rate (%)")
    ax.set_title("DET, identification trials")
    ax.grid(True, color="0.9")
    ax.legend(fontsize=7, loc="upper right")
    return _save(fig, path)


def plot_oscr(
    curves: Mapping[str, OpenSetScores],
    path: str | Path,
    points: Mapping[str, tuple[float, float]] | None = None,
    title: str = "Open-set classification rate",
) -> Path:
    """OSCR curves: correct-classification rate on targets vs false-positive rate on unknowns.

    Args:
        curves: method name -> (known_scores (N, K), known_labels (N,), unknown_scores (M, K)).
        path: the PNG to write.
        points: method name -> deployed operating point ``(FA, FR)`` at the calibrated
            threshold, drawn as a marker at ``(FA, 1 - FR)`` on that method's curve.
        title: the figure title.

    Example:
        >>> import tempfile, os
        >>> p = plot_oscr({"a": ([[0.9, 0.1], [0.2, 0.7]], [0, 1], [[0.5, 0.6]])},
        ...               os.path.join(tempfile.mkdtemp(), "oscr.png"))
        >>> p.stat().st_size > 0
        True
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, (known, labels, unknown) in curves.items():
        fpr, ccr = metrics.oscr_curve(known, labels, unknown)
        area = metrics.oscr(known, labels, unknown)
        (line,) = ax.step(fpr, ccr, where="post", label=f"{name} (OSCR {100 * area:.1f}%)")
        if points and name in points:
            fa, fr = points[name]
            ax.plot([fa], [1 - fr], marker="o", color=line.get_color(), ms=6, mec="k")
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false-positive rate on unknown speakers")
    ax.set_ylabel("correct-classification rate on targets")
    ax.set_title(title if not points else f"{title}; dots: deployed threshold", fontsize=9)
    ax.grid(True, color="0.9")
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def plot_score_histograms(
    known_scores: ArrayLike,
    known_labels: ArrayLike,
    unknown_scores: ArrayLike,
    path: str | Path,
    title: str = "",
) -> Path:
    """Histograms of target, non-target (other enrolled speaker) and unknown-speaker scores.

    Example:
        >>> import tempfile, os
        >>> rng = np.random.default_rng(0)
        >>> p = plot_score_histograms(rng.normal(size=(20, 3)), rng.integers(0, 3, 20),
        ...                           rng.normal(size=(10, 3)),
        ...                           os.path.join(tempfile.mkdtemp(), "h.png"))
        >>> p.stat().st_size > 0
        True
    """
    known = np.asarray(known_scores, dtype=np.float64)
    labels = np.asarray(known_labels, dtype=np.int64)
    unknown = np.asarray(unknown_scores, dtype=np.float64)
    is_target = np.zeros(known.shape, dtype=bool)
    is_target[np.arange(known.shape[0]), labels] = True
    groups = {
        "target": known[is_target],
        "non-target (other enrolled)": known[~is_target],
        "unknown speaker": unknown.ravel(),
    }
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    values = np.concatenate([g for g in groups.values() if g.size])
    bins = np.linspace(values.min(), values.max() + 1e-9, 50)
    for (name, g), color in zip(groups.items(), ("C2", "C0", "C3"), strict=True):
        if g.size:
            density, _ = np.histogram(g, bins=bins, density=True)
            ax.stairs(density, bins, fill=True, alpha=0.45, color=color, label=name)
    ax.set_xlabel("score")
    ax.set_ylabel("density")
    ax.set_title(title or "score distributions")
    ax.legend(fontsize=8)
    return _save(fig, path)


def pca_2d(*arrays: ArrayLike) -> list[NDArray[np.float64]]:
    """Project several (n_i, d) arrays onto the top-2 principal axes of all of them together.

    Example:
        >>> a, b = pca_2d(np.eye(3), np.ones((2, 3)))
        >>> a.shape, b.shape
        ((3, 2), (2, 2))
    """
    mats = [np.asarray(a, dtype=np.float64).reshape(-1, np.shape(arrays[0])[-1]) for a in arrays]
    stacked = np.concatenate(mats)
    mean = stacked.mean(axis=0)
    _, _, vt = np.linalg.svd(stacked - mean, full_matrices=False)
    axes = vt[:2].T
    if axes.shape[1] < 2:
        axes = np.pad(axes, ((0, 0), (0, 2 - axes.shape[1])))
    return [(m - mean) @ axes for m in mats]


def plot_projection(
    known_features: ArrayLike,
    known_labels: ArrayLike,
    unknown_features: ArrayLike,
    path: str | Path,
    centres: ArrayLike | None = None,
    reciprocal: ArrayLike | None = None,
    title: str = "",
) -> Path:
    """2-D PCA of adapter features: targets by colour, unknowns grey, centre/reciprocal points.

    Every vector is scaled to unit length first (scores are inner products, and learnt points
    can be orders of magnitude longer than features), so the plot shows directions.

    Args:
        known_features: (N, d) features of target-speaker utterances.
        known_labels: (N,) target index of each.
        unknown_features: (M, d) features of unknown-speaker utterances.
        path: the PNG to write.
        centres: optional (K, d) centre points of the target classes.
        reciprocal: optional (K, d) reciprocal points of the target classes.
        title: figure title.

    Example:
        >>> import tempfile, os
        >>> rng = np.random.default_rng(0)
        >>> p = plot_projection(rng.normal(size=(9, 4)), [0, 1, 2] * 3, rng.normal(size=(5, 4)),
        ...                     os.path.join(tempfile.mkdtemp(), "p.png"),
        ...                     centres=rng.normal(size=(3, 4)), reciprocal=rng.normal(size=(3, 4)))
        >>> p.stat().st_size > 0
        True
    """
    parts = [known_features, unknown_features, *(x for x in (centres, reciprocal) if x is not None)]
    proj = pca_2d(*(l2_normalize(np.asarray(x, dtype=np.float64)) for x in parts))
    labels = np.asarray(known_labels)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5.5))
    ax.scatter(*proj[1].T, s=10, c="0.6", marker="x", label="unknown speakers")
    ax.scatter(*proj[0].T, s=12, c=labels, cmap="tab20", label="target utterances")
    points = ((centres, 80, "*", "centre points"), (reciprocal, 50, "D", "reciprocal points"))
    k = 2
    for given, size, marker, label in points:
        if given is None:
            continue
        ax.scatter(
            *proj[k].T,
            s=size,
            c=np.arange(len(proj[k])),
            cmap="tab20",
            marker=marker,
            edgecolors="k",
            label=label,
        )
        k += 1
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title or "adapter features, unit-normalised (PCA)", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)
