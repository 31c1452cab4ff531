"""Which channel a test clip came through, estimated from its embedding alone.

The quality-aware decision (``calibration="quality"``, :mod:`speakerrpl.identifier.decision`)
weighs per-condition stranger tails by this posterior: a clip that sounds like a telephone
call is judged against how strangers score on telephone calls, not on the clean channel where
they score highest. The posterior is taken relative to the enrollment's
(:func:`mismatch_posterior`): the tails describe a clean enrollment and a test channel that
differs from it, so a household heard through the channel it enrolled on, or one whose
enrollment does not sound clean, is judged by the clean tail.

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
    """What a test clip shows of each degradation beyond its enrollment, as tail weights.

    The per-condition stranger tails were measured for a clean enrollment and a degraded
    test. Two things break that assumption, and each takes weight off the degraded tails
    (onto ``clean``, the strictest):

    - the enrollment sounding like the test (the same far-field microphone, the same phone
      line): each degraded condition keeps only the posterior ``test_c`` beyond the most any
      enrollment clip showed of it;
    - the enrollment not sounding clean at all (a degraded or an unfamiliar microphone:
      strangers on another degraded channel then score higher against it than against a
      clean one): what is left is scaled by the enrollment clips' mean clean posterior.

    Args:
        test: (N, C) condition posteriors of the test clips.
        enrollment: (E, C) condition posteriors of the enrollment clips.
        names: the C condition names (one is ``"clean"``).

    Example:
        >>> names = ("clean", "far", "phone")
        >>> enrolled = np.array([[0.8, 0.2, 0.0], [0.6, 0.1, 0.3]])  # max: 0.2 far, 0.3 phone
        >>> q = mismatch_posterior(np.array([[0.1, 0.8, 0.1]]), enrolled, names)
        >>> q.round(2).tolist()  # far: (0.8 - 0.2) x 0.7 mean clean
        [[0.58, 0.42, 0.0]]
    """
    test = np.asarray(test, dtype=np.float64)
    enrollment = np.asarray(enrollment, dtype=np.float64)
    c = len(names)
    if test.ndim != 2 or test.shape[1] != c or enrollment.ndim != 2 or enrollment.shape[1] != c:
        raise InvalidInputError(
            f"need (N, {c}) test and (E, {c}) enrollment condition posteriors, got "
            f"{test.shape} and {enrollment.shape}"
        )
    clean = names.index("clean")
    out = np.maximum(test - enrollment.max(axis=0)[None, :], 0.0)
    out *= enrollment[:, clean].mean()
    out[:, clean] = 0.0
    out[:, clean] = 1.0 - out.sum(axis=1)
    return out


__all__ = ["SHIPPED", "ConditionModel", "mismatch_posterior", "shipped_condition_model"]
