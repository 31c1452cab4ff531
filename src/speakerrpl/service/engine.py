"""The speaker registry engine: enroll, identify, remove, recalibrate.

The CLI and the REST service are thin layers over :class:`SpeakerEngine`. Writers (enroll,
recalibrate) are serialised by a lock and refit **before** their single commit (see
:mod:`speakerrpl.service.registry`), so readers keep using the last committed model while a
refit runs, and never see a model that does not match the committed speakers. A removal commits
**first** (the voiceprint is gone at once; the previous model serves restricted to the remaining
speakers) and refits after; a failed refit never undoes it.

Each committed model version is loaded once per engine, from memory, and shared by all
requests; decoding (and an enrollment's embedding) runs under a process-wide limit
(``inference_slots``); the clips of concurrent identifications are embedded together by one
:class:`~speakerrpl.service.batcher.EmbeddingBatcher` with a bounded queue.
"""

from __future__ import annotations

import importlib
import logging
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from speakerrpl.errors import (
    CorruptModelError,
    InvalidInputError,
    RegistryError,
    ServiceBusyError,
    SpeakerRPLError,
)
from speakerrpl.service.batcher import EmbeddingBatcher
from speakerrpl.service.clip_writer import ClipWriter
from speakerrpl.service.models import LoadedModel, describe, load_model
from speakerrpl.service.registry import SpeakerRegistry
from speakerrpl.service.settings import ServiceSettings
from speakerrpl.service.writer import clip_hash

__all__ = ["SpeakerEngine", "clip_hash"]

logger = logging.getLogger(__name__)

_BATCH_SAMPLES = 30 * 16_000  # most audio embedded in one forward pass (see _batches)


class SpeakerEngine(ClipWriter):
    """Enroll and identify speakers against a durable :class:`SpeakerRegistry`.

    Reading (model, identify, status) lives here; every change (enroll, remove, refit,
    recalibrate) in :class:`~speakerrpl.service.writer.RegistryWriter`, single-clip changes in
    :class:`~speakerrpl.service.clip_writer.ClipWriter`.

    Args:
        registry: the registry, or the path of its SQLite file.
        settings: engine settings (default: :meth:`ServiceSettings.from_env`).
        frontend: an object with ``name`` and ``embed(waves) -> (N, D)``; default
            ``get_frontend(settings.frontend)``, created on first use.
        pool: negative pool for ``fit(..., pool=...)``; default
            ``speakerrpl.synth.pool.default_pool(frontend)``, computed on first refit.
        identifier_factory: builds the identifier from keyword arguments (default
            ``OpenSetSpeakerIdentifier``).
        create: create a missing registry (``False`` for read commands: a missing file is an
            error).
        read_only: see :class:`SpeakerRegistry` (``None``: decided by the file system).

    Example:
        >>> import tempfile, numpy as np
        >>> class Toy:
        ...     name = "toy"
        ...     def embed(self, waves): return np.stack([w[:4] for w in waves])
        >>> s = ServiceSettings(min_enroll_speech=0)  # toy "audio": no speech to detect
        >>> eng = SpeakerEngine(tempfile.mkdtemp() + "/r.db", s, frontend=Toy())
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
        create: bool = True,
        read_only: bool | None = None,
    ) -> None:
        self.registry = (
            registry
            if isinstance(registry, SpeakerRegistry)
            else SpeakerRegistry(registry, create=create, read_only=read_only)
        )
        self.settings = settings if settings is not None else ServiceSettings.from_env()
        self._frontend = frontend
        self._pool = pool
        self._factory = identifier_factory
        self._write_lock = threading.RLock()
        self._init_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._model: LoadedModel | None = None
        self._broken: tuple[int, CorruptModelError] | None = None
        self.loads = 0  # model loads so far: one per committed version
        self._slots = threading.BoundedSemaphore(self.settings.inference_slots)
        s = self.settings
        self.batcher = EmbeddingBatcher(
            self.embed, s.batch_max_clips, s.batch_wait_seconds, s.batch_queue_seconds,
            s.batch_workers,
        )  # fmt: skip

    # --- building blocks --------------------------------------------------------------

    @property
    def frontend(self) -> Any:
        """The embedding frontend (created on first use)."""
        with self._init_lock:
            if self._frontend is None:
                from speakerrpl.frontends import get_frontend

                self._frontend = get_frontend(self.settings.frontend)
            return self._frontend

    @contextmanager
    def work_slot(self) -> Iterator[None]:
        """Hold one of the ``inference_slots`` decode/inference slots of this process.

        Raises:
            ServiceBusyError: none freed up within ``slot_wait_seconds``.
        """
        wait = self.settings.slot_wait_seconds
        if not self._slots.acquire(timeout=wait):
            raise ServiceBusyError(
                f"all {self.settings.inference_slots} decode/inference slots are busy; retry",
                retry_after=max(1, math.ceil(wait)),
            )
        try:
            yield
        finally:
            self._slots.release()

    def embed(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """Embed 16 kHz mono waveforms with the registry's frontend -> ``(N, D)``.

        Callers that decode audio hold :meth:`work_slot` around decoding and this call.
        """
        if len(waves) == 0:
            raise InvalidInputError("no audio given: expected at least one clip")
        frontend = self.frontend
        parts = [np.asarray(frontend.embed(batch), dtype=np.float32) for batch in _batches(waves)]
        return np.concatenate(parts)

    def warm_up(self) -> None:
        """Create the frontend and load the committed model now, not on the first request.

        Raises:
            CorruptModelError: the stored model cannot be loaded (the message says what to run).
        """
        try:
            model: LoadedModel | None = self.model()  # a corrupt model stops start-up first
        except CorruptModelError:
            raise
        except RegistryError:
            logger.info("registry %s is empty", self.registry.path)
            model = None
        _ = self.frontend
        if not self.registry.read_only:
            # torch.optim imports torch._dynamo on first use (seconds): do it now, in the
            # background, rather than inside the first refit.
            threading.Thread(target=_import_quietly, args=("torch._dynamo",), daemon=True).start()
        if model is not None and model.refit_pending:
            logger.warning(
                "the model awaits a refit after a removal (run `speakerrpl speakers refit "
                "--registry %s`); identification uses the previous model meanwhile",
                self.registry.path,
            )

    # --- reading ----------------------------------------------------------------------

    def model(self) -> LoadedModel:
        """The last committed model: loaded once per version and shared by every caller.

        Raises:
            RegistryError: nothing is enrolled yet.
            CorruptModelError: the stored model cannot be loaded (remembered per version, so
                a broken model is not reloaded by every request).
        """
        version = self.registry.model_version()
        current = self._model
        if current is not None and current.version == version:
            return current
        with self._load_lock:  # concurrent requests wait for one load instead of each loading
            current, broken = self._model, self._broken
            if current is not None and current.version >= version:
                return current
            if broken is not None and broken[0] == version:
                raise broken[1]
            record = self.registry.current_model()
            if record is None:
                raise RegistryError("no speakers are enrolled; enroll at least one first")
            try:
                loaded = load_model(record)
            except (SpeakerRPLError, ValueError, KeyError) as exc:
                error = CorruptModelError(
                    f"the stored model v{record.version} cannot be loaded ({exc}); refit it "
                    f"from the stored enrollments: speakerrpl speakers refit --registry "
                    f"{self.registry.path}"
                )
                self._broken = (record.version, error)
                raise error from exc
            self._model = loaded
            self.loads += 1
        logger.info(
            "loaded model v%d (%s, %d speakers)", loaded.version, loaded.kind, len(loaded.classes)
        )
        return loaded

    def identify(self, waves: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        """Name the speaker of each clip, or ``<unknown>``; see :meth:`LoadedModel.identify`.

        The clips are embedded by :attr:`batcher`, together with those of concurrent calls.

        Raises:
            ServiceBusyError: the batcher's queue is full.
        """
        model = self.model()  # fail fast on an empty registry, before embedding
        if model.kind in ("empty", "paused"):
            model.scores(np.zeros((0, 0)))
        emb = self.batcher.embed(waves)
        return self.model().identify(emb)

    def speakers(self) -> list[dict[str, object]]:
        """Enrolled speakers with their enrollment counts."""
        return self.registry.speakers()

    def status(self) -> dict[str, object]:
        """Model summary for the key holder (``GET /status``; ``/healthz`` reveals nothing)."""
        out: dict[str, object] = {
            "speakers": len(self.speakers()),
            "read_only": self.registry.read_only,
        }
        try:
            out["model"] = describe(self.model())
        except CorruptModelError as exc:
            out["model"], out["problem"] = None, str(exc)
        except RegistryError:
            out["model"] = None
        return out


def _batches(waves: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
    """Consecutive groups of at most ``_BATCH_SAMPLES`` samples (a longer clip runs alone).

    A forward pass of CAM++ holds about 4-5 MB per second of audio (measured: 240 MB for one
    60 s clip), and equal-length clips are batched together: grouping bounds one request's
    inference memory by the batch, not by the request (16 x 60 s would be ~4 GB).
    """
    out: list[list[np.ndarray]] = [[]]
    size = 0
    for wave in waves:
        if out[-1] and size + wave.size > _BATCH_SAMPLES:
            out.append([])
            size = 0
        out[-1].append(wave)
        size += wave.size
    return out


def _import_quietly(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError:  # pragma: no cover - depends on the torch build
        logger.debug("could not pre-import %s", module)
