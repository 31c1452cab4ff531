"""Identifier-guided splitting: strangers merged into an enrolled person's cluster come out.

Clustering followed by naming fails in the way that matters most: when agglomeration merges a
stranger into an enrolled person's cluster, the whole cluster, stranger included, gets the
enrolled name. After one-to-one naming, each named cluster is therefore over-clustered with a
tighter threshold (``fine``: purer, smaller parts) and every part is checked by the identifier
against the cluster's name; parts it rejects leave the cluster and are clustered with the
anonymous windows into ``SPEAKER_xx`` speakers. The one-to-one assignment still decides which
cluster carries each name, so a stranger the identifier would accept for a name that a truer
cluster took stays anonymous.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from speakerrpl.diarization.naming import Scorer

__all__ = ["cluster_means", "split_rejected"]

Clusterer = Callable[[np.ndarray, np.ndarray], np.ndarray]


def cluster_means(emb: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Duration-weighted means ``(C, D)`` of the raw embeddings of each label 0..C-1.

    Example:
        >>> cluster_means(np.array([[0.0], [2.0], [5.0]]), np.array([0, 0, 1]),
        ...               np.array([1.0, 3.0, 1.0])).tolist()
        [[1.5], [5.0]]
    """
    count = int(labels.max()) + 1 if len(labels) else 0
    sums = np.zeros((count, emb.shape[1]))
    np.add.at(sums, labels, emb * weights[:, None])
    mass = np.bincount(labels, weights=weights, minlength=count)
    return (sums / np.maximum(mass, 1e-12)[:, None]).astype(np.float32)


def split_rejected(
    emb: np.ndarray,
    durations: np.ndarray,
    labels: np.ndarray,
    names: list[str | None],
    scorer: Scorer,
    fine: Clusterer,
    coarse: Clusterer,
    margin: float = 0.0,
) -> tuple[np.ndarray, list[str | None]]:
    """Take the parts of named clusters that the identifier rejects out of them.

    Each cluster named ``X`` is over-clustered by ``fine``; a part whose mean embedding scores
    below ``t + margin * (s_best - t)`` for ``X`` leaves the cluster (``t`` the identifier's
    threshold, ``s_best`` the best part's score: with ``margin`` > 0 a part must also be
    nearly as sure as the cluster's core, since averaged embeddings of a stranger can pass the
    per-utterance threshold). Those windows and the windows of the anonymous clusters are
    clustered again by ``coarse`` into anonymous speakers.

    Args:
        emb: window embeddings ``(N, D)``.
        durations: seconds each window stands for ``(N,)``.
        labels: cluster of each window, 0..C-1.
        names: per cluster its enrolled name, or ``None`` for an anonymous one.
        scorer: the identifier (see :func:`~speakerrpl.diarization.naming.as_scorer`).
        fine: the over-clustering applied inside each named cluster.
        coarse: the clustering of the anonymous windows.
        margin: in [0, 1), see above.

    Returns:
        New window labels and, per label, its enrolled name or ``None``.
    """
    anonymous = np.array([names[int(c)] is None for c in labels], dtype=bool)
    for c, name in enumerate(names):
        rows = np.flatnonzero(labels == c)
        if name is None or len(rows) < 2:
            continue
        parts = np.asarray(fine(emb[rows], durations[rows]), dtype=np.int64)
        column = scorer.classes.index(name)
        part_scores = scorer.scores(cluster_means(emb[rows], parts, durations[rows]))
        own = np.asarray(part_scores, dtype=np.float64)[:, column]
        bar = scorer.threshold + margin * max(own.max() - scorer.threshold, 0.0)
        rejected = own < bar
        anonymous[rows[rejected[parts]]] = True
    kept = sorted({names[int(c)] for c in labels[~anonymous]} - {None})  # type: ignore[type-var]
    index = {name: i for i, name in enumerate(kept)}
    out = np.empty(len(emb), dtype=np.int64)
    for i in np.flatnonzero(~anonymous):
        out[i] = index[names[int(labels[i])]]
    new_names: list[str | None] = list(kept)
    if anonymous.any():
        anon = np.asarray(coarse(emb[anonymous], durations[anonymous]), dtype=np.int64)
        out[anonymous] = len(kept) + anon
        new_names += [None] * (int(anon.max()) + 1)
    return out, new_names
