"""The speaker registry engine: enroll, identify, remove, recalibrate.

The CLI and the REST service are thin layers over :class:`SpeakerEngine`. Writers (enroll,
remove, recalibrate) are serialised by a lock and refit **before** their single commit (see
:mod:`speakerrpl.service.registry`), so readers keep using the last committed model while a
refit runs, and never see a model that does not match the committed speakers.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from speakerrpl.errors import InvalidInputError, RegistryError, SpeakerNotFoundError
from speakerrpl.service.models import FittedModel, LoadedModel, describe, fit_model, load_model
from speakerrpl.service.registry import (
    ConcurrentChangeError,
    Enrollment,
    Snapshot,
    SpeakerRegistry,
    validate_speaker_name,
)
from speakerrpl.service.settings import ServiceSettings

__all__ = ["SpeakerEngine"]

logger = logging.getLogger(__name__)

_RETRIES = 3


def _pcm16(wave: np.ndarray) -> bytes:
    return (np.clip(wave, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


class SpeakerEngine:
    """Enroll and identify speakers against a durable :class:`SpeakerRegistry`.

    Args:
        registry: the registry, or the path of its SQLite file.
        settings: engine settings (default: :meth:`ServiceSettings.from_env`).
        frontend: an object with ``name`` and ``embed(waves) -> (N, D)``; default
            ``get_frontend(settings.frontend)``, created on first use.
        pool: negative pool for ``fit(..., pool=...)``; default
            ``speakerrpl.synth.pool.default_pool(frontend)``, computed on first refit.
        identifier_factory: builds the identifier from keyword arguments (default
            ``OpenSetSpeakerIdentifier``); ``identifier_loader`` loads a saved one.

    Example:
        >>> import tempfile, numpy as np
        >>> class Toy:
        ...     name = "toy"
        ...     def embed(self, waves): return np.stack([w[:4] for w in waves])
        >>> eng = SpeakerEngine(tempfile.mkdtemp() + "/r.db", ServiceSettings(), frontend=Toy())
        >>> _ = eng.enroll("alice", [np.array([1.0, 0, 0, 0]), np.array([0.9, 0, 0.1, 0])])
        >>> eng.identify([np.array([0.9, 0.1, 0, 0])])[0]["speaker"]
        'alice'
    """

    def __init__(
        self,
        registry: SpeakerRegistry | str | Path,
        settings: ServiceSettings | None = None,
        *,
        frontend: Any = None,
        pool: Any = None,
        identifier_factory: Callable[..., Any] | None = None,
        identifier_loader: Callable[[str], Any] | None = None,
    ) -> None:
        self.registry = (
            registry if isinstance(registry, SpeakerRegistry) else SpeakerRegistry(registry)
        )
        self.settings = settings if settings is not None else ServiceSettings.from_env()
        self._frontend = frontend
        self._pool = pool
        self._factory = identifier_factory
        self._loader = identifier_loader
        self._write_lock = threading.RLock()
        self._init_lock = threading.Lock()
        self._model: LoadedModel | None = None
        slots = self.settings.inference_slots
        self._slots: AbstractContextManager[Any] = (
            threading.BoundedSemaphore(slots) if slots > 0 else nullcontext()
        )

    # --- building blocks --------------------------------------------------------------

    @property
    def frontend(self) -> Any:
        """The embedding frontend (created on first use)."""
        with self._init_lock:
            if self._frontend is None:
                from speakerrpl.frontends import get_frontend

                self._frontend = get_frontend(self.settings.frontend)
            return self._frontend

    def _negatives(self) -> Any:
        frontend = self.frontend
        with self._init_lock:
            if self._pool is None:
                self._pool = _load_pool(self.settings.pool_path, frontend)
            return self._pool

    def embed(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """Embed 16 kHz mono waveforms with the registry's frontend -> ``(N, D)``."""
        if len(waves) == 0:
            raise InvalidInputError("no audio given: expected at least one clip")
        frontend = self.frontend
        with self._slots:  # optionally bounded (settings.inference_slots)
            return np.asarray(frontend.embed(list(waves)), dtype=np.float32)

    def warm_up(self) -> None:
        """Create the frontend and load the committed model now, not on the first request."""
        _ = self.frontend
        # torch.optim imports torch._dynamo on first use (seconds): do it now, in the background,
        # rather than inside the first refit.
        threading.Thread(target=_import_quietly, args=("torch._dynamo",), daemon=True).start()
        try:
            self.model()
        except RegistryError:
            logger.info("registry %s is empty", self.registry.path)

    # --- reading ----------------------------------------------------------------------

    def model(self) -> LoadedModel:
        """The last committed model (reloaded when another writer committed a newer one)."""
        version = self.registry.model_version()
        current = self._model
        if current is not None and current.version == version:
            return current
        record = self.registry.current_model()
        if record is None:
            raise RegistryError("no speakers are enrolled; enroll at least one first")
        loaded = load_model(record, self._loader)
        self._model = loaded
        logger.info(
            "loaded model v%d (%s, %d speakers)", loaded.version, loaded.kind, len(loaded.classes)
        )
        return loaded

    def identify(self, waves: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        """Name the speaker of each clip, or ``<unknown>``; see :meth:`LoadedModel.identify`."""
        model = self.model()  # fail fast on an empty registry, before embedding
        if model.kind == "empty":
            model.scores(np.zeros((0, 0)))
        return model.identify(self.embed(waves))

    def speakers(self) -> list[dict[str, object]]:
        """Enrolled speakers with their enrollment counts."""
        return self.registry.speakers()

    def status(self) -> dict[str, object]:
        """Registry and model summary (for health checks)."""
        out: dict[str, object] = {
            "registry": self.registry.path.name,
            "speakers": len(self.speakers()),
        }
        try:
            out["model"] = describe(self.model())
        except RegistryError:
            out["model"] = None
        return out

    # --- writing ----------------------------------------------------------------------

    def enroll(
        self,
        name: str,
        waves: Sequence[np.ndarray],
        sources: Sequence[str] | None = None,
    ) -> dict[str, object]:
        """Add ``name`` (or extend it) with the given clips, refit and commit atomically.

        A speaker needs at least ``settings.min_clips`` clips in total (the ensemble holds out
        enrollment clips); fewer raise :class:`InvalidInputError` and change nothing.
        """
        name = validate_speaker_name(name)
        have = {s["name"]: int(s["n_enrollments"]) for s in self.speakers()}.get(name, 0)  # type: ignore[call-overload]
        if have + len(waves) < self.settings.min_clips:
            raise InvalidInputError(
                f"speaker {name!r} needs at least {self.settings.min_clips} enrollment clips "
                f"(utterances) in total, got {have + len(waves)}"
            )
        emb = self.embed(waves)
        keep = self.settings.keep_audio
        items = [
            Enrollment(e, _pcm16(w) if keep else None, sources[i] if sources else None)
            for i, (e, w) in enumerate(zip(emb, waves, strict=True))
        ]
        return self._change(lambda snap: _with_added(snap, name, emb), add={name: items})

    def remove(self, name: str) -> dict[str, object]:
        """Remove a speaker and all its enrollments, refit and commit atomically."""
        name = validate_speaker_name(name)
        if name not in {s["name"] for s in self.speakers()}:
            raise SpeakerNotFoundError(f"no enrolled speaker named {name!r}")
        return self._change(lambda snap: _without(snap, name), remove=[name])

    def recalibrate(
        self, far: float | None = None, threshold: float | None = None
    ) -> dict[str, object]:
        """Refit with a new target false-acceptance rate, or pin a fixed ``threshold``.

        A pinned threshold applies to every later refit too, until ``far=`` is given again.
        """
        if (far is None) == (threshold is None):
            raise InvalidInputError("give exactly one of far= or threshold=")
        if far is not None and not 0.0 < far < 1.0:
            raise InvalidInputError(f"far must be in (0, 1), got {far}")
        if threshold is not None:
            if not np.isfinite(threshold):
                raise InvalidInputError(f"threshold must be finite, got {threshold}")
            return self._pin_threshold(float(threshold))
        return self._change(lambda snap: snap, settings={"far": str(far), "threshold": ""})

    def _pin_threshold(self, threshold: float) -> dict[str, object]:
        """Store the current model again with a new threshold: no refit needed."""
        with self._write_lock:
            snap = self.registry.snapshot()
            current = self.registry.current_model()
            if current is None or current.data_version != snap.data_version:
                return self._change(lambda s: s, settings={"threshold": str(threshold)})
            version = self.registry.commit(
                snap.data_version, self.frontend.name, model_kind=current.kind,
                model_classes=current.classes, model_files=current.files,
                model_info={**current.info, "threshold": threshold},
                settings={"threshold": str(threshold)},
            )  # fmt: skip
        return {"model_version": version, "kind": current.kind, "refit_seconds": 0.0,
                "speakers": list(current.classes)}  # fmt: skip

    def _change(
        self, target: Callable[[Snapshot], Snapshot], **commit_kw: Any
    ) -> dict[str, object]:
        settings: Mapping[str, str] = commit_kw.pop("settings", {})
        with self._write_lock:
            for attempt in range(_RETRIES):
                snap = self.registry.snapshot()
                logger.info("refitting on data v%d", snap.data_version)
                start = time.perf_counter()
                fitted = self._fit(target(snap), settings)
                fit_s = time.perf_counter() - start
                try:
                    version = self.registry.commit(
                        snap.data_version, self.frontend.name, model_kind=fitted.kind,
                        model_classes=fitted.classes, model_files=fitted.files,
                        model_info={**fitted.info, "fit_seconds": fit_s}, settings=settings,
                        **commit_kw,
                    )  # fmt: skip
                except ConcurrentChangeError:
                    logger.warning(
                        "registry changed during refit (attempt %d); refitting", attempt + 1
                    )
                    continue
                return {"model_version": version, "kind": fitted.kind, "refit_seconds": fit_s,
                        "speakers": list(fitted.classes)}  # fmt: skip
        raise RegistryError("registry kept changing during the refit; try again")

    def _fit(self, snap: Snapshot, new_settings: Mapping[str, str]) -> FittedModel:
        far_s = new_settings.get("far") or self.registry.get_setting("far")
        thr_s = (
            new_settings["threshold"]
            if "threshold" in new_settings
            else self.registry.get_setting("threshold")
        )
        params: dict[str, Any] = {
            "method": self.settings.method,
            "random_state": self.settings.random_state,
            "target_far": float(far_s) if far_s else self.settings.far,
            "frontend": self.frontend.name,
            **self.settings.identifier_params,
        }
        return fit_model(
            snap, params=params, pool=self._negatives,
            single_speaker_threshold=self.settings.single_speaker_threshold,
            threshold=float(thr_s) if thr_s else None, factory=self._factory,
        )  # fmt: skip


def _import_quietly(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError:  # pragma: no cover - depends on the torch build
        logger.debug("could not pre-import %s", module)


def _with_added(snap: Snapshot, name: str, emb: np.ndarray) -> Snapshot:
    data = dict(snap.embeddings)
    data[name] = np.concatenate([data[name], emb]) if name in data else emb
    return Snapshot(snap.data_version, snap.frontend, data)


def _without(snap: Snapshot, name: str) -> Snapshot:
    return Snapshot(
        snap.data_version, snap.frontend, {k: v for k, v in snap.embeddings.items() if k != name}
    )


def _load_pool(path: str | None, frontend: Any) -> tuple[np.ndarray, np.ndarray]:
    if path is None:
        from speakerrpl.synth.pool import default_pool

        return default_pool(frontend)
    from speakerrpl.embeddings import EmbeddingSet
    from speakerrpl.errors import ModelMismatchError

    pool = EmbeddingSet.load(path)
    if pool.frontend != frontend.name:
        raise ModelMismatchError(
            f"pool {path!r} holds {pool.frontend!r} embeddings, not {frontend.name!r}"
        )
    logger.info(
        "negative pool: %d utterances of %d voices from %s",
        len(pool),
        len(set(pool.speakers)),
        path,
    )
    return pool.embeddings, pool.speakers
