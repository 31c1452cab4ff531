"""Turning enrollment data into a storable model and a stored model back into scores.

Kinds of model:

- ``"identifier"`` (K >= 1): an ``OpenSetSpeakerIdentifier``, stored as its saved files
  (``config.json`` + ``weights.safetensors``): the configured method (SpeakerRPL v2 by default)
  for K >= 2, and ``method="cosine"`` (the centroid) for K = 1, both calibrated by the
  estimator on the negative pool. Fitting, storing, loading, scoring, the threshold, the accept
  rule and the unknown label are the estimator's, for every K;
- ``"empty"`` (K == 0): nothing can be identified (:class:`~speakerrpl.errors.RegistryError`);
- ``"paused"``: a removal committed while no usable model could be restricted to the remaining
  speakers; identification answers 503 until a refit succeeds.

Models go from the identifier to registry rows and back in memory
(:func:`speakerrpl.identifier.persistence.identifier_files`): no model data is ever written to a
temporary file. After a removal, the previous identifier may serve *restricted* to the remaining
speakers (:func:`restrict`) until its refit is committed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from speakerrpl.errors import IdentificationPausedError, RegistryError
from speakerrpl.service.registry import ModelRecord, Snapshot

__all__ = [
    "FittedModel",
    "LoadedModel",
    "fit_model",
    "load_model",
    "make_identifier",
    "restrict",
    "takes_copies",
]

CONFIG_FILE = "config.json"  # speakerrpl.identifier.persistence.CONFIG_FILE

IdentifierFactory = Callable[..., Any]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FittedModel:
    """What :meth:`SpeakerRegistry.commit` stores: kind, classes, files and info."""

    kind: str
    classes: tuple[str, ...]
    files: Mapping[str, bytes]
    info: Mapping[str, object]


def identifier_files(ident: Any) -> dict[str, bytes]:
    """The saved files of an identifier, in memory (see ``identifier.persistence``)."""
    from speakerrpl.identifier.persistence import identifier_files as files_of

    return files_of(ident)


def identifier_from_files(cls: Any, files: Mapping[str, bytes]) -> Any:
    """Rebuild an identifier from its saved files held in memory."""
    from speakerrpl.identifier.persistence import identifier_from_files as rebuild

    return rebuild(cls, files)


def make_identifier(params: Mapping[str, Any], factory: IdentifierFactory | None = None) -> Any:
    """An unfitted identifier: ``factory(**params)``, by default ``OpenSetSpeakerIdentifier``."""
    if factory is not None:
        return factory(**params)
    from speakerrpl.identifier import OpenSetSpeakerIdentifier

    return OpenSetSpeakerIdentifier(**params)


def fit_model(
    snapshot: Snapshot,
    *,
    params: Mapping[str, Any],
    pool: Any,
    threshold: float | None = None,
    factory: IdentifierFactory | None = None,
    previous: ModelRecord | None = None,
) -> FittedModel:
    """Fit the model for the speakers of ``snapshot`` (see the module docstring for the kinds).

    Args:
        snapshot: the enrollment data the model must match exactly.
        params: keyword arguments of the identifier (method, random_state, far ...).
        pool: the negative pool passed to ``fit(X, y, pool=pool)``; a zero-argument callable
            is called only when someone is enrolled.
        threshold: a user-set threshold that overrides the calibrated one, or ``None``.
        factory: builds the identifier from ``params`` (default ``OpenSetSpeakerIdentifier``).
        previous: the committed model to update warm from (``update``, see :func:`_warm`);
            ``None`` or a model that cannot be updated: a cold ``fit``.
    """
    names = tuple(sorted(snapshot.embeddings))
    if not names:
        return FittedModel("empty", (), {}, {"threshold": threshold})
    x, y = snapshot.arrays()
    if len(names) == 1:  # one person: the estimator's centroid model
        params = {**params, "method": "cosine"}
    negatives = pool() if callable(pool) else pool
    ident = make_identifier(params, factory)
    copies = snapshot.copy_arrays() if takes_copies(ident) else None
    warm = _warm(previous, ident, x, y, negatives, copies) if previous is not None else None
    if warm is None:
        ident.fit(x, y, pool=negatives, **({} if copies is None else {"copies": copies}))
    else:
        ident = warm
    files = identifier_files(ident)
    info: dict[str, object] = {
        "threshold": threshold,
        "calibrated_threshold": float(ident.threshold_),
        "update": str(getattr(ident, "update_mode_", "cold")),
        "enrollment_copies": bool(getattr(ident, "copies_used_", False)),
    }
    return FittedModel("identifier", tuple(str(c) for c in ident.classes_), files, info)


def takes_copies(ident: Any) -> bool:
    """Whether an identifier made by the factory uses enrollment copies (``fit(copies=)``)."""
    settings = getattr(ident, "settings", None)
    return bool(getattr(settings, "takes_copies", False))


def _warm(
    previous: ModelRecord, fresh: Any, x: np.ndarray, y: Any, pool: Any, copies: Any = None
) -> Any:
    """``previous``'s identifier updated warm to ``(x, y)``, or ``None`` to fit cold.

    Warm only when the stored identifier loads and has exactly the settings a cold fit would
    use (``fresh``'s); any failure of the update falls back to the cold fit.
    """
    if previous.kind != "identifier" or not hasattr(fresh, "update"):
        return None
    try:
        old = identifier_from_files(type(fresh), previous.files)
        if old.get_params() != fresh.get_params():
            logger.info("settings changed since the stored model: cold refit")
            return None
        return old.update(x, y, pool=pool, **({} if copies is None else {"copies": copies}))
    except Exception as exc:  # the cold fit that follows decides what is an error
        logger.warning("warm update failed (%s: %s); cold refit", type(exc).__name__, exc)
        return None


class LoadedModel:
    """A committed model ready to score embeddings (thread-safe for concurrent reads).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> alice = np.array([1.0, 0.0, 0.0]) + 0.05 * rng.normal(size=(3, 3))
        >>> pool = (rng.normal(size=(40, 3)) + [0, 2, 0], np.repeat([f"v{i}" for i in range(8)], 5))
        >>> snap = Snapshot(1, "toy", {"alice": alice})
        >>> fitted = fit_model(snap, params={"target_far": 0.05}, pool=pool)
        >>> rec = ModelRecord(1, 1, fitted.kind, fitted.classes, fitted.info, fitted.files)
        >>> [r["speaker"] for r in load_model(rec).identify(np.array([[1, 0.1, 0], [0, 1, 0]]))]
        ['alice', '<unknown>']
    """

    def __init__(
        self,
        record: ModelRecord,
        scorer: Callable[[np.ndarray], np.ndarray],
        threshold: float,
        unknown_label: str = "",
        confidence: Callable[..., np.ndarray] | None = None,
        posterior: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.version = record.version
        self.kind = record.kind
        self.classes: tuple[str, ...] = record.classes
        self.threshold = float(threshold)
        self.unknown_label = unknown_label
        self.refit_pending = bool(record.info.get("refit_pending", False))
        self._scorer = scorer
        self._confidence = confidence  # (best scores[, condition posterior]) -> confidence
        self._posterior = posterior  # embeddings -> condition posterior (quality-aware models)
        self.confidence_threshold: float | None = None
        if confidence is not None and np.isfinite(self.threshold):
            self.confidence_threshold = float(confidence(np.array([self.threshold]))[0])

    @property
    def calibrated(self) -> bool:
        """Whether scores map to the identifier's calibrated confidence (see
        :mod:`speakerrpl.decisions`)."""
        return self._confidence is not None and self.confidence_threshold is not None

    def decide(self, x: np.ndarray, best: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(accepted, confidence)`` of clips ``x`` (N, D) whose scores of interest are
        ``best`` (N,): a quality-aware identifier reads each clip's confidence with its
        condition posterior and accepts at ``confidence_threshold``; any other accepts where
        the score reaches ``threshold``. ``confidence`` is ``None`` without calibration."""
        best = np.asarray(best, dtype=np.float64)
        post = None
        if self._posterior is not None and self.confidence_threshold is not None:
            post = self._posterior(np.asarray(x, dtype=np.float32))
        conf = None if self._confidence is None else self._confidence(best, post)
        if post is not None and conf is not None:
            return np.asarray(conf >= self.confidence_threshold), conf
        return best >= self.threshold, conf

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Scores ``(N, K)``, higher = more likely that speaker."""
        if self.kind == "empty":
            raise RegistryError("no speakers are enrolled; enroll at least one first")
        return np.asarray(self._scorer(np.asarray(x, dtype=np.float32)), dtype=np.float64)

    def identify(self, x: np.ndarray) -> list[dict[str, Any]]:
        """One decision per row of ``x``: ``speaker`` (name or the identifier's
        ``unknown_label``), ``score``, ``threshold`` and the per-speaker ``scores``; with a
        calibrated identifier also ``confidence`` in [0, 1] and ``confidence_threshold`` (the
        confidence at ``threshold``).

        The rule is the estimator's ``predict`` applied to scores computed once (a test pins
        the two together): a quality-aware identifier accepts where the clip's confidence,
        read with its condition posterior, reaches ``confidence_threshold``; any other where
        the best score reaches ``threshold``.
        """
        s = self.scores(x)
        if not s.size:
            return []
        accepted_rows, conf = self.decide(x, s.max(axis=1))
        out = []
        for i, row in enumerate(s):
            best = int(np.argmax(row))
            accepted = bool(accepted_rows[i])
            out.append(
                {
                    "speaker": self.classes[best] if accepted else self.unknown_label,
                    "best_match": self.classes[best],
                    "score": float(row[best]),
                    "threshold": self.threshold,
                    "model_version": self.version,
                    "scores": {c: float(v) for c, v in zip(self.classes, row, strict=True)},
                }
            )
            if conf is not None:  # the identifier's calibrated scale (speakerrpl.decisions)
                out[-1]["confidence"] = float(conf[i])
                out[-1]["confidence_threshold"] = self.confidence_threshold
        return out


def load_model(record: ModelRecord) -> LoadedModel:
    """Rebuild a :class:`LoadedModel` from a committed :class:`ModelRecord` (from memory)."""
    info = dict(record.info)
    if record.kind == "empty":
        return LoadedModel(record, lambda x: np.zeros((len(x), 0)), float("inf"))
    if record.kind == "paused":
        return LoadedModel(record, _paused, float("inf"))
    if record.kind != "identifier":  # e.g. "cosine" of registries before the estimator did K=1
        raise RegistryError(f"model kind {record.kind!r} is not loadable by this version")
    from speakerrpl.identifier import OpenSetSpeakerIdentifier

    ident = identifier_from_files(OpenSetSpeakerIdentifier, record.files)
    user = info.get("threshold")
    threshold = float(ident.threshold_) if user is None else float(user)  # type: ignore[arg-type]
    classes = [str(c) for c in ident.classes_]
    label = str(ident.settings.unknown_label)
    decision = getattr(ident, "decision_", None)
    conf = decision.confidence if decision is not None else None
    post = ident.condition_posterior if decision is not None and decision.quality_aware else None
    if info.get("restricted"):  # a removal's stand-in: the previous model, fewer columns
        missing = sorted(set(record.classes) - set(classes))
        if missing:
            raise RegistryError(f"restricted model lacks the classes {missing}")
        columns = [classes.index(c) for c in record.classes]
        return LoadedModel(
            record, lambda x: ident.decision_function(x)[:, columns], threshold, label, conf, post
        )
    if tuple(classes) != record.classes:
        raise RegistryError(f"stored identifier classes {classes} != record {record.classes}")
    return LoadedModel(record, ident.decision_function, threshold, label, conf, post)


def _paused(x: np.ndarray) -> np.ndarray:
    raise IdentificationPausedError(
        "identification is paused: a speaker was removed and no model for the remaining "
        "speakers could be made yet; it resumes when a refit succeeds "
        "(`speakerrpl speakers refit --registry PATH`, or the next enrollment)"
    )


def restrict(record: ModelRecord, keep: Sequence[str]) -> FittedModel:
    """The previous model limited to the speakers ``keep`` (what a removal commits first).

    Removed names are erased from the stored config (the model's weights stay until the
    refit replaces them); a model that cannot be restricted becomes ``"paused"``.

    Example:
        >>> rec = ModelRecord(1, 1, "identifier", ("alice",), {"threshold": 0.5}, {})
        >>> restrict(rec, []).kind
        'empty'
    """
    keep = tuple(sorted(keep))
    if not keep:
        return FittedModel("empty", (), {}, {"threshold": None})
    if record.kind != "identifier" or not set(keep) <= set(record.classes):
        return FittedModel("paused", keep, {}, {"threshold": None, "refit_pending": True})
    try:
        config = json.loads(record.files[CONFIG_FILE].decode("utf-8"))
        removed = {c: f"removed:{i}" for i, c in enumerate(config["classes"]) if c not in keep}
        for field in ("classes", "training_classes"):
            config[field] = [removed.get(c, c) for c in config[field]]
    except (KeyError, TypeError, ValueError, UnicodeDecodeError):
        return FittedModel("paused", keep, {}, {"threshold": None, "refit_pending": True})
    files = {**record.files, CONFIG_FILE: json.dumps(config, indent=2).encode("utf-8")}
    info = {**record.info, "restricted": True, "refit_pending": True}
    return FittedModel("identifier", keep, files, info)


def describe(model: LoadedModel) -> dict[str, object]:
    """JSON-ready summary of a model (used by ``GET /healthz`` and ``speakers list``)."""
    return {
        "version": model.version,
        "kind": model.kind,
        "speakers": len(model.classes),
        "threshold": model.threshold if np.isfinite(model.threshold) else None,
        "refit_pending": bool(model.refit_pending),
    }


def dumps(results: Sequence[Mapping[str, Any]]) -> str:
    """Serialise identification results as JSON (stable key order)."""
    return json.dumps(list(results), indent=2, sort_keys=True)
