"""Turning enrollment data into a storable model and a stored model back into scores.

Three kinds of model, chosen by the number K of enrolled speakers:

- ``"identifier"`` (K >= 2): the SpeakerRPL v2 ensemble (``OpenSetSpeakerIdentifier``), stored as
  the files of its ``save(dir)`` (JSON + safetensors);
- ``"cosine"`` (K == 1): the ensemble needs two targets, so the single speaker is scored by the
  cosine similarity to the mean of its enrollment embeddings, against a fixed threshold;
- ``"empty"`` (K == 0): nothing can be identified (:class:`~speakerrpl.errors.RegistryError`).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speakerrpl.errors import RegistryError
from speakerrpl.service.registry import ModelRecord, Snapshot

__all__ = ["UNKNOWN", "FittedModel", "LoadedModel", "fit_model", "load_model"]

UNKNOWN = "<unknown>"
_CENTROID_FILE = "centroid.f32"

IdentifierFactory = Callable[..., Any]


@dataclass(frozen=True)
class FittedModel:
    """What :meth:`SpeakerRegistry.commit` stores: kind, classes, files and info."""

    kind: str
    classes: tuple[str, ...]
    files: Mapping[str, bytes]
    info: Mapping[str, object]


def _default_factory(**kwargs: Any) -> Any:
    from speakerrpl.identifier import OpenSetSpeakerIdentifier

    return OpenSetSpeakerIdentifier(**kwargs)


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def fit_model(
    snapshot: Snapshot,
    *,
    params: Mapping[str, Any],
    pool: Any,
    single_speaker_threshold: float,
    threshold: float | None = None,
    factory: IdentifierFactory | None = None,
) -> FittedModel:
    """Fit the model for the speakers of ``snapshot`` (see the module docstring for the kinds).

    Args:
        snapshot: the enrollment data the model must match exactly.
        params: keyword arguments of the identifier (method, random_state, far ...).
        pool: the negative pool passed to ``fit(X, y, pool=pool)``; a zero-argument callable
            is called only when an ensemble is fitted.
        single_speaker_threshold: cosine threshold of the one-speaker model.
        threshold: a user-set threshold that overrides the calibrated one, or ``None``.
        factory: builds the identifier from ``params`` (default ``OpenSetSpeakerIdentifier``).
    """
    names = tuple(sorted(snapshot.embeddings))
    if not names:
        return FittedModel("empty", (), {}, {"threshold": threshold})
    if len(names) == 1:
        centroid = _normalise(_normalise(snapshot.embeddings[names[0]]).mean(axis=0))
        one = {"threshold": single_speaker_threshold if threshold is None else threshold}
        return FittedModel("cosine", names, {_CENTROID_FILE: centroid.astype("<f4").tobytes()}, one)
    x, y = snapshot.arrays()
    negatives = pool() if callable(pool) else pool
    ident = (factory or _default_factory)(**params)
    ident.fit(x, y, pool=negatives)
    with tempfile.TemporaryDirectory(prefix="speakerrpl-model-") as tmp:
        ident.save(tmp)
        files = {p.name: p.read_bytes() for p in sorted(Path(tmp).iterdir()) if p.is_file()}
    info: dict[str, object] = {
        "threshold": threshold,
        "calibrated_threshold": float(ident.threshold_),
    }
    return FittedModel("identifier", tuple(str(c) for c in ident.classes_), files, info)


class LoadedModel:
    """A committed model ready to score embeddings (thread-safe for concurrent reads).

    Example:
        >>> from speakerrpl.service.registry import ModelRecord
        >>> rec = ModelRecord(1, 1, "cosine", ("alice",), {"threshold": 0.5},
        ...                   {"centroid.f32": np.array([1, 0], "<f4").tobytes()})
        >>> m = load_model(rec)
        >>> m.identify(np.array([[1.0, 0.1], [0.0, 1.0]]))[0]["speaker"]
        'alice'
    """

    def __init__(
        self,
        record: ModelRecord,
        scorer: Callable[[np.ndarray], np.ndarray],
        threshold: float,
    ) -> None:
        self.version = record.version
        self.kind = record.kind
        self.classes: tuple[str, ...] = record.classes
        self.threshold = float(threshold)
        self._scorer = scorer

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Scores ``(N, K)``, higher = more likely that speaker."""
        if self.kind == "empty":
            raise RegistryError("no speakers are enrolled; enroll at least one first")
        return np.asarray(self._scorer(np.asarray(x, dtype=np.float32)), dtype=np.float64)

    def identify(self, x: np.ndarray) -> list[dict[str, Any]]:
        """One decision per row of ``x``: ``speaker`` (name or ``<unknown>``), ``score``,
        ``threshold`` and the per-speaker ``scores``."""
        s = self.scores(x)
        out = []
        for row in s:
            best = int(np.argmax(row))
            accepted = bool(row[best] >= self.threshold)
            out.append(
                {
                    "speaker": self.classes[best] if accepted else UNKNOWN,
                    "best_match": self.classes[best],
                    "score": float(row[best]),
                    "threshold": self.threshold,
                    "model_version": self.version,
                    "scores": {c: float(v) for c, v in zip(self.classes, row, strict=True)},
                }
            )
        return out


def load_model(
    record: ModelRecord, factory_load: Callable[[str], Any] | None = None
) -> LoadedModel:
    """Rebuild a :class:`LoadedModel` from a committed :class:`ModelRecord`."""
    info = dict(record.info)
    if record.kind == "empty":
        return LoadedModel(record, lambda x: np.zeros((len(x), 0)), float("inf"))
    if record.kind == "cosine":
        centroid = np.frombuffer(record.files[_CENTROID_FILE], dtype="<f4")

        def cosine(x: np.ndarray) -> np.ndarray:
            if x.ndim != 2 or x.shape[1] != centroid.size:
                raise RegistryError(f"expected embeddings of size {centroid.size}, got {x.shape}")
            return _normalise(x) @ centroid[:, None]

        return LoadedModel(record, cosine, float(info["threshold"]))  # type: ignore[arg-type]
    if record.kind != "identifier":
        raise RegistryError(f"unknown model kind {record.kind!r} in the registry")
    ident = _load_identifier(record.files, factory_load)
    user = info.get("threshold")
    threshold = float(ident.threshold_) if user is None else float(user)  # type: ignore[arg-type]
    classes = tuple(str(c) for c in ident.classes_)
    if classes != record.classes:
        raise RegistryError(f"stored identifier classes {classes} != record {record.classes}")
    return LoadedModel(record, ident.decision_function, threshold)


def _load_identifier(files: Mapping[str, bytes], loader: Callable[[str], Any] | None) -> Any:
    if loader is None:
        from speakerrpl.identifier import OpenSetSpeakerIdentifier

        loader = OpenSetSpeakerIdentifier.load
    with tempfile.TemporaryDirectory(prefix="speakerrpl-model-") as tmp:
        for name, data in files.items():
            if Path(name).name != name:
                raise RegistryError(f"model file name {name!r} is not a plain file name")
            (Path(tmp) / name).write_bytes(data)
        return loader(tmp)


def describe(model: LoadedModel) -> dict[str, object]:
    """JSON-ready summary of a model (used by ``GET /healthz`` and ``speakers list``)."""
    return {
        "version": model.version,
        "kind": model.kind,
        "speakers": len(model.classes),
        "threshold": model.threshold if np.isfinite(model.threshold) else None,
    }


def dumps(results: Sequence[Mapping[str, Any]]) -> str:
    """Serialise identification results as JSON (stable key order)."""
    return json.dumps(list(results), indent=2, sort_keys=True)
