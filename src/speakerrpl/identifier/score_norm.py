"""Cohort score normalisation: AS-norm for cosine, the extension-class cohort for rpl_v2.

For a target model ``k`` and a test embedding ``x`` with cosine score ``s``, AS-norm is
``0.5 * ((s - mu_k) / sd_k + (s - mu_x) / sd_x)`` where ``(mu_k, sd_k)`` are the mean and std of
the ``top`` highest scores of target ``k``'s centroid against the cohort and ``(mu_x, sd_x)``
those of ``x`` against the cohort (Matejka et al., "Analysis of score normalization in
multilingual speaker recognition", Interspeech 2017). The cohort is the centroids of the pool
voices that are not held out for calibration.

For a trained method with class extension, the synthetic unknown classes the ensemble was
trained with are a cohort that needs no extra model: ``extension`` normalisation standardises
each test's fused target scores by the mean and std of its ``top`` highest fused unknown-class
scores (test-side, as T-norm / adaptive top-n: :func:`extension_norm`).
"""

from __future__ import annotations

import numpy as np

SCORE_NORMS = ("none", "asnorm", "extension")
DEFAULT_TOP = 20
EXTENSION_TOP = 40
"""Unknown classes per test whose scores form its cohort statistics: all of them at the default
``n_unknown`` (on development folds of the demo corpus, EER fell monotonically from top 3 to 40:
``docs/method.md``, step 10)."""


def top_stats(scores: np.ndarray, top: int = DEFAULT_TOP) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (N,) of the ``top`` highest values of each row of ``scores`` (N, V).

    Example:
        >>> m, s = top_stats(np.array([[0.0, 1.0, 2.0, 3.0]]), top=2)
        >>> m.tolist(), s.tolist()
        ([2.5], [0.5])
    """
    n = min(int(top), scores.shape[1])
    part = -np.partition(-np.asarray(scores, dtype=np.float64), n - 1, axis=1)[:, :n]
    return part.mean(axis=1), np.maximum(part.std(axis=1), 1e-6)


def asnorm(
    raw: np.ndarray,
    test_cohort: np.ndarray,
    target_stats: tuple[np.ndarray, np.ndarray],
    top: int = DEFAULT_TOP,
) -> np.ndarray:
    """AS-norm scores (N, K) from raw scores (N, K) and the tests' cohort scores (N, V).

    Example:
        >>> raw = np.array([[0.9, 0.1]])
        >>> out = asnorm(raw, np.array([[0.1, 0.3]]), (np.zeros(2), np.ones(2)), top=2)
        >>> np.round(out, 2).tolist()
        [[3.95, -0.45]]
    """
    mu_x, sd_x = top_stats(test_cohort, top)
    mu_k, sd_k = target_stats
    s = np.asarray(raw, dtype=np.float64)
    return 0.5 * ((s - mu_k) / sd_k + (s - mu_x[:, None]) / sd_x[:, None])


def extension_norm(target: np.ndarray, unknown: np.ndarray, top: int = EXTENSION_TOP) -> np.ndarray:
    """Target scores (N, K) standardised by each row's top unknown-class scores (N, U).

    Example:
        >>> out = extension_norm(np.array([[3.0, 1.0]]), np.array([[0.0, 2.0, 1.0]]), top=2)
        >>> out.tolist()
        [[3.0, -1.0]]
    """
    mu, sd = top_stats(unknown, top)
    return (np.asarray(target, dtype=np.float64) - mu[:, None]) / sd[:, None]


__all__ = ["DEFAULT_TOP", "EXTENSION_TOP", "SCORE_NORMS", "asnorm", "extension_norm", "top_stats"]
