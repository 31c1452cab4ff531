"""Which channel a test clip came through, estimated from its embedding alone.

The quality-aware decision (``calibration="quality"``, :mod:`speakerrpl.identifier.decision`)
weighs per-condition stranger tails by this posterior: a clip that sounds like a telephone
call is judged against how strangers score on telephone calls, not on the clean channel where
they score highest. The posterior is taken relative to the enrollment's
(:func:`mismatch_posterior`): the tails describe a test channel that differs from the
enrollment's, and a household heard through the channel it enrolled on is judged as clean.

The model shipped for CAM++ (``conditions-campplus.npz`` beside this module) is a multinomial
logistic regression on the L2-normalised raw embedding over the corpus's ten test conditions
(``clean`` and nine degraded ones, :data:`speakerrpl.data.condition_ids.CONDITIONS`), trained
by ``benchmarks/household/condition_tails.py`` on the development voices only (the demo
corpus's development half plus the voices only a ``--size full`` build has); cross-fitted
accuracy 0.67 (``docs/calibration.md``, "Quality-aware threshold").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from speakerrpl.errors import InvalidInputError, ModelLoadError
from speakerrpl.vectors import l2_normalize

SHIPPED = {"campplus": Path(__file__).with_name("conditions-campplus.npz")}
"""frontend name -> the fitted condition model shipped with the package"""


@dataclass(frozen=True)
class ConditionModel:
    """A softmax over test conditions of an L2-normalised embedding.

    Attributes:
        names: the conditions, one per row of ``weights``.
        weights: (C, D) class weights.
        bias: (C,) class offsets.

    Example:
        >>> m = ConditionModel(("clean", "phone"), np.array([[1.0, 0.0], [0.0, 1.0]]), np.zeros(2))
        >>> m.posterior(np.array([[3.0, 0.0]])).round(3).tolist()
        [[0.731, 0.269]]
    """

    names: tuple[str, ...]
    weights: np.ndarray
    bias: np.ndarray

    def posterior(self, x: np.ndarray) -> np.ndarray:
        """``(N, C)`` probabilities of each condition for raw embeddings ``(N, D)``."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.weights.shape[1]:
            raise InvalidInputError(
                f"the condition model takes (N, {self.weights.shape[1]}) embeddings, got {x.shape}"
            )
        logits = l2_normalize(x) @ self.weights.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    @classmethod
    def load(cls, path: str | Path) -> ConditionModel:
        """Read a model saved as ``names``, ``weights`` and ``bias`` arrays (``.npz``)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                names = tuple(str(n) for n in data["names"])
                weights = data["weights"].astype(np.float64)
                bias = data["bias"].astype(np.float64)
        except (OSError, KeyError, ValueError) as exc:
            raise ModelLoadError(f"cannot read the condition model {path}: {exc}") from exc
        if weights.shape != (len(names), weights.shape[1]) or bias.shape != (len(names),):
            raise ModelLoadError(f"condition model {path}: shapes do not match its names")
        return cls(names, weights, bias)


@lru_cache(maxsize=4)
def shipped_condition_model(frontend: str) -> ConditionModel:
    """The condition model shipped for ``frontend``.

    Raises:
        InvalidInputError: none ships for this frontend.
    """
    path = SHIPPED.get(frontend)
    if path is None:
        raise InvalidInputError(
            f"no condition model ships for frontend {frontend!r} (only {sorted(SHIPPED)})"
        )
    return ConditionModel.load(path)


def mismatch_posterior(
    test: np.ndarray, enrollment: np.ndarray, names: tuple[str, ...]
) -> np.ndarray:
    """The share of each degradation a test clip shows beyond what the enrollment showed.

    The per-condition stranger tails were measured for clean enrollment and a degraded test:
    a mismatch. A household that enrolled through the channel it is heard through (the same
    far-field microphone, the same phone line) has no such mismatch, and its strangers score
    as they do on a matched clean channel. So each degraded condition keeps only the
    posterior ``test_c`` in excess of ``enrollment_c``, the most any enrollment clip showed of
    it; the rest is read as ``clean`` (the strictest tail). With a clean enrollment the test
    posterior is nearly unchanged; a clip that sounds like the enrollment is judged as clean.

    Example:
        >>> names = ("clean", "far", "phone")
        >>> q = mismatch_posterior(np.array([[0.1, 0.8, 0.1]]), np.array([0.2, 0.7, 0.1]), names)
        >>> q.round(2).tolist()
        [[0.9, 0.1, 0.0]]
    """
    test = np.asarray(test, dtype=np.float64)
    enrollment = np.asarray(enrollment, dtype=np.float64)
    if test.ndim != 2 or enrollment.shape != (test.shape[1],) or len(names) != test.shape[1]:
        raise InvalidInputError(
            f"need an (N, {len(names)}) test posterior and a ({len(names)},) enrollment "
            f"posterior, got {test.shape} and {enrollment.shape}"
        )
    out = np.maximum(test - enrollment[None, :], 0.0)
    clean = names.index("clean")
    out[:, clean] = 0.0
    out[:, clean] = 1.0 - out.sum(axis=1)
    return out


__all__ = ["SHIPPED", "ConditionModel", "mismatch_posterior", "shipped_condition_model"]
