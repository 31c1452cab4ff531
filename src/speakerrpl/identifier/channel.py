"""Channel compensation: whiten embeddings against within-speaker (channel) variability.

CAM++ embeddings of one voice move when the channel changes (far-field rooms, telephone band,
codecs, noise); a household enrolls on a close-talk microphone and is then heard through
whatever the assistant hears. Within-class covariance normalisation (WCCN) learns that
movement from synthetic utterances that were also passed through degraded channels, and
whitens it away: ``z = (x / |x| - mean) @ transform`` with ``transform transform^T = S_w^-1``,
where ``S_w`` is the within-group covariance shrunk towards its mean eigenvalue. A group is
one clean utterance with its channel copies, so ``S_w`` holds channel variability only, not
the voice's own pitch or rate changes (grouping by voice instead whitens those away too; it
was no better on the development folds). Cosine and the adapters then score the whitened
embeddings.

The model shipped for CAM++ (``channel-campplus.npz`` beside this module) was fitted by
``benchmarks/household/channel_model.py`` on the demo corpus's 64 espeak-ng pool voices (none
of them an evaluation voice): 384 clean utterances, each grouped with seven channel copies
(device EQ, codec, telephone, far-field room, babble of other pool voices, stationary noise,
music), with room and noise seeds disjoint from the corpus test conditions.
``docs/results.md`` gives its effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from speakerrpl.errors import InvalidInputError, ModelLoadError
from speakerrpl.vectors import l2_normalize

SHRINKAGE = 0.3
"""Share of ``S_w`` replaced by its mean eigenvalue (chosen on development folds: cosine's
summed mean EER over K = 1-20 was 9.07 / 8.84 / 9.01 % at 0.1 / 0.3 / 0.5)."""

SHIPPED = {"campplus": Path(__file__).with_name("channel-campplus.npz")}
"""frontend name -> the fitted model shipped with the package"""


@dataclass(frozen=True)
class ChannelCompensation:
    """An affine whitening of L2-normalised embeddings.

    Attributes:
        mean: (D,) mean of the normalised training embeddings.
        transform: (D, D) with ``transform @ transform.T`` the inverse shrunk within-voice
            covariance.

    Example:
        >>> c = ChannelCompensation(np.zeros(2), 2.0 * np.eye(2))
        >>> c.apply(np.array([[3.0, 4.0]])).astype(float).round(4).tolist()
        [[1.2, 1.6]]
    """

    mean: np.ndarray
    transform: np.ndarray

    @property
    def dim(self) -> int:
        """Embedding size the model applies to."""
        return int(self.mean.shape[0])

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Compensated embeddings (N, D), float32 (not re-normalised)."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise InvalidInputError(
                f"channel compensation expects (N, {self.dim}) embeddings, got {x.shape}"
            )
        mean = self.mean.astype(np.float32, copy=False)  # the shipped model: no copy per call
        transform = self.transform.astype(np.float32, copy=False)
        return np.asarray((l2_normalize(x) - mean) @ transform, dtype=np.float32)

    def save(self, path: Path) -> None:
        """Write ``mean`` and ``transform`` to an ``.npz`` file."""
        np.savez(
            path, mean=self.mean.astype(np.float32), transform=self.transform.astype(np.float32)
        )

    @classmethod
    def load(cls, path: Path) -> ChannelCompensation:
        """Read a model written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as data:
                mean, transform = data["mean"], data["transform"]
        except (OSError, KeyError, ValueError) as exc:
            raise ModelLoadError(f"cannot read the channel model {path}: {exc}") from exc
        if mean.ndim != 1 or transform.shape != (mean.size, mean.size):
            raise ModelLoadError(
                f"channel model {path}: mean {mean.shape} and transform {transform.shape} differ"
            )
        return cls(mean, transform)


def fit_wccn(
    embeddings: np.ndarray, groups: np.ndarray, shrinkage: float = SHRINKAGE
) -> ChannelCompensation:
    """Fit WCCN on grouped embeddings: rows of one group should score alike (one utterance
    and its channel copies, or every utterance of one speaker).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> voices = np.repeat(rng.normal(size=(20, 4)), 10, axis=0)
        >>> nuisance = np.outer(rng.normal(size=200), [0.0, 0.0, 0.0, 1.0])
        >>> c = fit_wccn(voices + nuisance, np.repeat(np.arange(20), 10), shrinkage=0.01)
        >>> bool(np.abs(c.transform[3]).max() < np.abs(c.transform[:3]).max())
        True
    """
    if not 0.0 <= shrinkage <= 1.0:
        raise InvalidInputError(f"shrinkage must be in [0, 1], got {shrinkage}")
    x = l2_normalize(np.asarray(embeddings, dtype=np.float64))
    labels = np.asarray(groups)
    if labels.shape != (x.shape[0],):
        raise InvalidInputError(f"need one group per embedding, got {labels.shape} for {x.shape}")
    names, index = np.unique(labels, return_inverse=True)
    if names.size < 2 or names.size == x.shape[0]:
        raise InvalidInputError("WCCN needs >= 2 groups, some with >= 2 embeddings")
    means = np.zeros((names.size, x.shape[1]))
    np.add.at(means, index, x)
    means /= np.bincount(index)[:, None]
    within = x - means[index]
    scatter = within.T @ within / x.shape[0]
    scatter = (1.0 - shrinkage) * scatter + shrinkage * np.trace(scatter) / x.shape[1] * np.eye(
        x.shape[1]
    )
    values, vectors = np.linalg.eigh(scatter)
    if values.min() <= 0:
        raise InvalidInputError("within-speaker scatter is singular: raise shrinkage above 0")
    return ChannelCompensation(x.mean(axis=0), vectors / np.sqrt(values))


@lru_cache(maxsize=4)
def shipped_compensation(frontend: str) -> ChannelCompensation:
    """The model shipped for ``frontend`` (see :data:`SHIPPED`)."""
    if frontend not in SHIPPED:
        raise InvalidInputError(
            f"no channel model is shipped for frontend {frontend!r} (have: {sorted(SHIPPED)})"
        )
    return ChannelCompensation.load(SHIPPED[frontend])


__all__ = ["SHIPPED", "SHRINKAGE", "ChannelCompensation", "fit_wccn", "shipped_compensation"]
