"""Eigenvalue-variance model selection and score-level fusion (docs/method.md, steps 9-10).

Selection is label-free: it looks only at each member's trained centre points ``Q`` and
reciprocal points ``P`` (the target + unknown rows). For each member the Gram matrix
``G = X X^T`` of those rows is formed and the variance of its eigenvalues taken; members with
the most spread-out spectra are dropped.
"""

from __future__ import annotations

import numpy as np

from speakerrpl.errors import InvalidInputError

SELECTIONS = ("low", "none", "high")
FUSIONS = ("logits", "zscore", "prob")


def eigenvalue_variance(points: np.ndarray) -> np.ndarray:
    """Variance of the eigenvalues of ``X X^T`` for each member's points ``X`` (M, R, d) -> (M,).

    Computed in float64 (centre points can be large).

    Example:
        >>> pts = np.stack([np.eye(2), 2 * np.eye(2)])
        >>> eigenvalue_variance(pts).tolist()
        [0.0, 0.0]
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 3:
        raise InvalidInputError(f"points must be (M, R, d), got shape {pts.shape}")
    gram = pts @ pts.transpose(0, 2, 1)
    return np.linalg.eigvalsh(gram).var(axis=1)


def select_members(v_q: np.ndarray, v_p: np.ndarray, r: int = 10, mode: str = "low") -> np.ndarray:
    """Indices of the kept members, ascending.

    Args:
        v_q: eigenvalue variance of each member's centre points (M,).
        v_p: the same for the reciprocal points (M,).
        r: how many members to drop per criterion.
        mode: ``"low"`` (default, published): drop the ``r`` highest ``v_Q`` and the ``r`` highest
            ``v_P``, keep the rest; ``"none"``: keep all; ``"high"`` (ablation): keep only the
            dropped ones (the union of both top-``r`` sets).

    Example:
        >>> select_members(np.array([0., 1, 2, 3]), np.array([3., 2, 1, 0]), r=1).tolist()
        [1, 2]
    """
    v_q, v_p = np.asarray(v_q, dtype=np.float64), np.asarray(v_p, dtype=np.float64)
    if v_q.shape != v_p.shape or v_q.ndim != 1:
        raise InvalidInputError(f"v_q and v_p must be (M,), got {v_q.shape} and {v_p.shape}")
    if mode not in SELECTIONS:
        raise InvalidInputError(f"selection mode must be one of {SELECTIONS}, got {mode!r}")
    if r < 0:
        raise InvalidInputError(f"r must be >= 0, got {r}")
    m = v_q.shape[0]
    if mode == "none" or r == 0:
        return np.arange(m)
    dropped = set(np.argsort(v_q, kind="stable")[m - r :].tolist())
    dropped |= set(np.argsort(v_p, kind="stable")[m - r :].tolist())
    keep = sorted(dropped) if mode == "high" else sorted(set(range(m)) - dropped)
    if not keep:
        raise InvalidInputError(f"selection with r={r} keeps none of {m} members; lower r")
    return np.asarray(keep, dtype=np.int64)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax.

    Example:
        >>> softmax(np.zeros(2)).tolist()
        [0.5, 0.5]
    """
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def fuse_scores(
    member_logits: np.ndarray,
    n_targets: int,
    rule: str = "logits",
    stats: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Fuse members' class scores into target scores (N, K) by averaging.

    Args:
        member_logits: (M, N, C) class scores of the kept members; the first ``n_targets``
            columns are the targets.
        n_targets: ``K``.
        rule: ``"logits"`` (raw scores, default), ``"zscore"`` (each member's target scores
            standardised with ``stats`` = (mean (M,), std (M,)) measured at fit), or ``"prob"``
            (softmax over all C classes, target columns).
        stats: required for ``"zscore"``.

    Example:
        >>> lg = np.array([[[1.0, 0.0, 0.0]], [[3.0, 0.0, 0.0]]])
        >>> fuse_scores(lg, 2).tolist()
        [[2.0, 0.0]]
    """
    lg = np.asarray(member_logits)
    if lg.ndim != 3 or not 1 <= n_targets <= lg.shape[2]:
        raise InvalidInputError(f"need (M, N, C) logits with C >= K={n_targets}, got {lg.shape}")
    if rule == "logits":
        return lg[..., :n_targets].mean(axis=0, dtype=np.float64)
    if rule == "prob":
        return softmax(lg.astype(np.float64), axis=-1)[..., :n_targets].mean(axis=0)
    if rule == "zscore":
        if stats is None:
            raise InvalidInputError("zscore fusion needs per-member (mean, std) stats")
        mu, sd = (np.asarray(s, dtype=np.float64).reshape(-1, 1, 1) for s in stats)
        return ((lg[..., :n_targets] - mu) / sd).mean(axis=0, dtype=np.float64)
    raise InvalidInputError(f"fusion rule must be one of {FUSIONS}, got {rule!r}")
