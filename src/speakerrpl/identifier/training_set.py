"""Input checks and assembly of an identifier's training data (targets + extended classes)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from speakerrpl.errors import InvalidInputError
from speakerrpl.identifier.class_extension import select_class_extension
from speakerrpl.identifier.settings import IdentifierSettings
from speakerrpl.vectors import centroids

logger = logging.getLogger(__name__)


def check_embeddings(x: object, dim: int | None = None, name: str = "X") -> np.ndarray:
    """``x`` as a finite float32 (N, D) array, checking ``D == dim`` when given.

    Example:
        >>> check_embeddings([[1.0, 2.0]]).shape
        (1, 2)
    """
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidInputError(f"{name} must be a non-empty (N, D) array, got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise InvalidInputError(f"{name} has dimension {arr.shape[1]}, expected {dim}")
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{name} contains NaN or infinite values")
    return arr


def check_labels(
    y: Sequence[object], n: int, settings: IdentifierSettings
) -> tuple[list[str], np.ndarray]:
    """Speaker names (first-seen order) and integer labels; enforces the enrollment rules."""
    names = [str(v) for v in y]
    if len(names) != n:
        raise InvalidInputError(f"y has {len(names)} labels for {n} embeddings")
    classes = list(dict.fromkeys(names))
    if not classes:
        raise InvalidInputError("need at least 1 enrolled speaker, got none")
    folded: dict[str, str] = {}
    for c in classes:
        key = c.strip().casefold()
        if not key or key in folded or c == settings.unknown_label:
            other = folded.get(key, settings.unknown_label if key else "an empty name")
            raise InvalidInputError(f"speaker name {c!r} is empty or duplicates {other!r}")
        folded[key] = c
    labels = np.asarray([classes.index(v) for v in names], dtype=np.int64)
    counts = np.bincount(labels, minlength=len(classes))
    need = settings.required_utterances
    if counts.min() < need:
        short = [c for c, k in zip(classes, counts, strict=True) if k < need]
        raise InvalidInputError(
            f"method {settings.method!r} needs >= {need} utterances per speaker; "
            f"too few for {short}"
        )
    return classes, labels


def check_pool(
    pool: object, pool_labels: Sequence[object] | None, dim: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Normalise the ``pool`` argument to ``(embeddings, voice labels)`` or ``None``."""
    if pool is None:
        return None
    if isinstance(pool, tuple) and len(pool) == 2:
        if pool_labels is not None:
            raise InvalidInputError("give pool labels either inside pool=(X, y) or as pool_labels")
        pool, pool_labels = pool
    arr = check_embeddings(pool, dim, name="pool")
    if pool_labels is None:
        raise InvalidInputError(
            "the pool needs voice labels (class extension picks voices, not utterances): "
            "pass pool=(X_pool, y_pool) or pool_labels="
        )
    return arr, _voice_labels(arr, pool_labels, "pool")


def _voice_labels(arr: np.ndarray, labels: Sequence[object], name: str) -> np.ndarray:
    """One voice label (str) per row of the checked embeddings ``arr`` of ``name``."""
    lab = np.asarray([str(v) for v in labels])
    if lab.shape[0] != arr.shape[0]:
        raise InvalidInputError(f"{name} has {arr.shape[0]} embeddings but {lab.shape[0]} labels")
    return lab


def check_cohort(cohort: object, dim: int, score_norm: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Normalise ``cohort=(X_cohort, y_cohort)`` (``score_norm="asnorm"`` only) or ``None``."""
    if cohort is None:
        return None
    if score_norm != "asnorm":
        raise InvalidInputError(
            f"cohort= is used by score_norm='asnorm' only, not score_norm={score_norm!r}"
        )
    if not (isinstance(cohort, tuple) and len(cohort) == 2):
        raise InvalidInputError("cohort must be a pair (X_cohort, y_cohort)")
    arr = check_embeddings(cohort[0], dim, name="cohort")
    lab = _voice_labels(arr, cohort[1], "cohort")
    if len(set(lab.tolist())) < 2:
        raise InvalidInputError("the cohort needs at least 2 voices (labels)")
    return arr, lab


def check_copies(copies: object, dim: int, classes: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Normalise ``copies=(X_copies, y_copies)``: every enrolled speaker needs copies, and
    every copy must belong to an enrolled speaker (the tables assume the whole household was
    enrolled the same way)."""
    if not (isinstance(copies, tuple) and len(copies) == 2):
        raise InvalidInputError("copies must be a pair (X_copies, y_copies)")
    arr = check_embeddings(copies[0], dim, name="copies")
    names = [str(v) for v in copies[1]]
    if len(names) != arr.shape[0]:
        raise InvalidInputError(f"copies has {arr.shape[0]} embeddings but {len(names)} labels")
    stray = sorted(set(names) - set(classes))
    missing = [c for c in classes if c not in set(names)]
    if stray or missing:
        raise InvalidInputError(
            f"copies must cover exactly the enrolled speakers: copies of unknown speakers "
            f"{stray[:5]}, no copies for {missing[:5]}"
        )
    return arr, names


@dataclass
class TrainingSet:
    """Inputs and labels the adapters train on, plus held-out data."""

    x: np.ndarray
    y: np.ndarray
    class_names: list[str]
    x_unknown: np.ndarray | None
    x_calibration: np.ndarray | None
    cohort: np.ndarray | None = None


def reserve_calibration(
    voices: Sequence[str], n_calibration: int, random_state: int
) -> tuple[list[str], list[str]]:
    """Split pool voices into (calibration voices, voices class extension may use).

    The calibration voices are drawn first, at random, and are never classes, so the score
    statistics measured on them are out of sample for every household size. At most a third of
    the pool is held out, so small pools keep most voices for the extension.

    Example:
        >>> cal, rest = reserve_calibration([f"v{i}" for i in range(9)], 20, 0)
        >>> len(cal), len(rest), set(cal) & set(rest)
        (3, 6, set())
    """
    names = sorted(set(voices))
    n = min(n_calibration, len(names) // 3)
    picked = set(np.random.default_rng(random_state).permutation(len(names))[:n].tolist())
    return [v for i, v in enumerate(names) if i in picked], [
        v for i, v in enumerate(names) if i not in picked
    ]


def _take(
    pool: tuple[np.ndarray, np.ndarray], voices: Sequence[str], per: int, rng: np.random.Generator
) -> list[np.ndarray]:
    out = []
    for v in voices:
        idx = np.flatnonzero(pool[1] == v)
        out.append(pool[0][rng.permutation(idx)[:per]])
    return out


def assemble(
    x: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    pool: tuple[np.ndarray, np.ndarray] | None,
    settings: IdentifierSettings,
) -> TrainingSet:
    """Targets first (labels 0..K-1), then unknown classes, then anchors (docs/method.md, 4).

    With one enrolled speaker (K = 1) every trained method gets the class extension: the pool
    voices become extra classes, so a loss has >= 2 classes to separate (the pool is then
    required).
    """
    method = settings.method_spec
    rng = np.random.default_rng(settings.random_state)
    extend = method.class_extension or (len(classes) == 1 and method.trains)
    if pool is None:
        if len(classes) == 1 and method.trains:
            raise InvalidInputError(
                f"{method.name} with one enrolled speaker needs a synthetic pool (pool=) for "
                "its extra classes; pass one, or use method='cosine'"
            )
        if method.class_extension or method.unknown_samples:
            warnings.warn(
                f"{method.name} fitted with pool=None: training without synthetic extra classes or "
                "unknowns, and calibrating the threshold on enrollment data only",
                UserWarning,
                stacklevel=3,
            )
        return TrainingSet(x, labels, list(classes), None, None)
    per = settings.pool_utts_per_class or int(np.bincount(labels).max())
    calib_voices, ext_voices = reserve_calibration(
        pool[1].tolist(), settings.n_calibration, settings.random_state
    )
    usable = np.isin(pool[1], ext_voices)
    ext = select_class_extension(
        x, [classes[i] for i in labels], pool[0][usable], pool[1][usable].tolist(),
        settings.n_unknown, settings.n_anchors if extend else 0,
        settings.unknown_bound, settings.random_state, settings.unknown_rule,
    )  # fmt: skip
    calib = np.concatenate(_take(pool, calib_voices, 10, rng)) if calib_voices else None
    cohort = centroids(pool[0][usable], pool[1][usable].tolist())[1].astype(np.float32)
    if method.unknown_samples and not extend:
        unknown = np.concatenate(_take(pool, ext.unknown, per, rng)) if ext.unknown else None
        return TrainingSet(x, labels, list(classes), unknown, calib, cohort)
    if not extend:
        return TrainingSet(x, labels, list(classes), None, calib, cohort)
    extra = [*ext.unknown, *ext.anchors]
    parts = _take(pool, extra, per, rng)
    xs = [x, *parts]
    ys = [labels] + [np.full(len(p), len(classes) + i, dtype=np.int64) for i, p in enumerate(parts)]
    names = (
        list(classes) + [f"unknown:{v}" for v in ext.unknown] + [f"anchor:{v}" for v in ext.anchors]
    )
    logger.info(
        "class extension: %d unknown, %d anchor classes", len(ext.unknown), len(ext.anchors)
    )
    return TrainingSet(np.concatenate(xs), np.concatenate(ys), names, None, calib, cohort)


def augment_embeddings(
    x: np.ndarray, y: np.ndarray, copies: int, noise: float, random_state: int, unit: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Embedding-level enrollment augmentation: ``copies`` perturbed copies of every row.

    Each copy adds isotropic Gaussian noise of total norm about ``noise`` (per dimension
    ``noise / sqrt(D)``) and is put back on the unit sphere when ``unit``; on unit inputs a copy
    then has cosine about ``1 / sqrt(1 + noise^2)`` to its original (0.86 at 0.6), the spread a
    degraded recording adds. The generator is seeded from ``random_state`` only, independent
    of any test condition.

    Example:
        >>> x = np.eye(3, dtype=np.float32)
        >>> xa, ya = augment_embeddings(x, np.arange(3), 2, 0.5, 0, unit=True)
        >>> xa.shape, ya.tolist()
        ((9, 3), [0, 1, 2, 0, 1, 2, 0, 1, 2])
    """
    if copies <= 0 or noise <= 0:
        return x, y
    rng = np.random.default_rng([random_state, 7919])
    parts, labels = [x], [y]
    for _ in range(copies):
        noisy = x + rng.normal(scale=noise / np.sqrt(x.shape[1]), size=x.shape).astype(x.dtype)
        if unit:
            noisy /= np.maximum(np.linalg.norm(noisy, axis=1, keepdims=True), 1e-12)
        parts.append(noisy)
        labels.append(y)
    return np.concatenate(parts), np.concatenate(labels)
