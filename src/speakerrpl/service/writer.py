"""The writing half of :class:`~speakerrpl.service.engine.SpeakerEngine`: enroll, remove,
refit, recalibrate.

Enrollments and recalibrations refit on a snapshot and commit once (compare-and-set on the
data version, retried on a concurrent change). A removal commits first, with the previous model
restricted to the remaining speakers, and refits after; a failed refit never undoes it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import numpy as np

from speakerrpl.errors import InvalidInputError, RegistryError, SpeakerNotFoundError, TTSError
from speakerrpl.service.hygiene import check_speech, enrollment_warnings
from speakerrpl.service.models import (
    FittedModel,
    LoadedModel,
    fit_model,
    make_identifier,
    restrict,
    takes_copies,
)
from speakerrpl.service.registry import (
    ConcurrentChangeError,
    Enrollment,
    ModelRecord,
    Snapshot,
    SpeakerRegistry,
    validate_speaker_name,
)
from speakerrpl.service.settings import ServiceSettings

__all__ = ["RegistryWriter", "clip_hash"]

logger = logging.getLogger(__name__)

_RETRIES = 3


def _pcm16(wave: np.ndarray) -> bytes:
    return (np.clip(wave, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def clip_hash(wave: np.ndarray) -> str:
    """SHA-256 of a decoded clip: the same recording sent twice has the same hash."""
    return hashlib.sha256(np.ascontiguousarray(wave, dtype="<f4").tobytes()).hexdigest()


class RegistryWriter:
    """Mixin of :class:`~speakerrpl.service.engine.SpeakerEngine` holding every change."""

    registry: SpeakerRegistry
    settings: ServiceSettings
    _write_lock: threading.RLock
    _init_lock: threading.Lock
    _pool: Any
    _talkers: list[np.ndarray] | None = None
    _factory: Callable[..., Any] | None

    if TYPE_CHECKING:  # provided by SpeakerEngine

        @property
        def frontend(self) -> Any: ...

        def embed(self, waves: Sequence[np.ndarray]) -> np.ndarray: ...

        def work_slot(self) -> AbstractContextManager[None]: ...

        def model(self) -> LoadedModel: ...

        def speakers(self) -> list[dict[str, object]]: ...

    def _negatives(self) -> Any:
        frontend = self.frontend
        with self._init_lock:
            if self._pool is None:
                self._pool = _load_pool(self.settings.pool_path, frontend)
            return self._pool

    def enroll(
        self,
        name: str,
        waves: Sequence[np.ndarray],
        sources: Sequence[str] | None = None,
    ) -> dict[str, object]:
        """Add ``name`` (or extend it) with the given clips, refit and commit atomically.

        A speaker needs at least ``settings.min_clips`` clips in total (the ensemble holds out
        enrollment clips); fewer raise :class:`InvalidInputError` and change nothing, as does a
        clip with under ``settings.min_enroll_speech`` seconds of speech. The answer's
        ``warnings`` name ignored duplicates and clips that sound like another enrolled person
        (:mod:`speakerrpl.service.hygiene`).
        """
        name = validate_speaker_name(name)
        self.registry.check_writable()
        self.registry.check_new_name(name)
        waves, sources, duplicates = self._new_clips(name, waves, sources)
        have = {s["name"]: int(s["n_enrollments"]) for s in self.speakers()}.get(name, 0)  # type: ignore[call-overload]
        if not waves and have:  # a retried request: every clip is enrolled already
            ignored = enrollment_warnings(None, name, np.zeros((0, 0)), None, duplicates)
            return {**self._summary(), "duplicates": duplicates, "refit_seconds": 0.0,
                    "warnings": ignored}  # fmt: skip
        if have + len(waves) < self.settings.min_clips:
            raise InvalidInputError(
                f"speaker {name!r} needs at least {self.settings.min_clips} enrollment clips "
                f"(utterances) in total, got {have + len(waves)}"
            )
        check_speech(waves, sources, self.settings.min_enroll_speech)
        hashes = [clip_hash(w) for w in waves]
        with self.work_slot():
            emb = self.embed(waves)
            copies, copies_note = self._channel_copies(waves, hashes)
        keep = self.settings.keep_audio
        items = [
            Enrollment(e, _pcm16(w) if keep else None, sources[i] if sources else None, h,
                       None if copies is None else copies[i])
            for i, (e, w, h) in enumerate(zip(emb, waves, hashes, strict=True))
        ]  # fmt: skip
        added = None if copies is None else copies.reshape(-1, emb.shape[1])
        out = self._change(
            lambda snap: _with_added(snap, name, emb, added), warm=True, add={name: items}
        )
        warnings = enrollment_warnings(self.model(), name, emb, sources, duplicates)
        if copies_note:
            warnings.append(copies_note)
        return {**out, "duplicates": duplicates, "warnings": warnings}

    def _channel_copies(
        self, waves: Sequence[np.ndarray], hashes: Sequence[str]
    ) -> tuple[np.ndarray | None, dict[str, Any] | None]:
        """Each clip's channel copies embedded, (N, C, D), when this service's identifier
        uses them (``settings.enrollment_copies``); else ``None``. A failure to make them
        (no espeak-ng for the babble talkers) enrolls without them and says so."""
        if not self.settings.enrollment_copies:
            return None, None
        if not takes_copies(make_identifier(self._params(None), self._factory)):
            return None, None
        from speakerrpl.synth.enrollment_copies import babble_talkers, embedded_copies

        try:
            with self._init_lock:
                if self._talkers is None:
                    self._talkers = babble_talkers()
        except TTSError as exc:
            logger.warning("enrollment copies not made: %s", exc)
            return None, {"clip": None, "code": "no-channel-copies", "other": None,
                          "message": f"enrolled without channel copies: {exc}"}  # fmt: skip
        return embedded_copies(waves, hashes, self.embed, self._talkers), None

    def _new_clips(
        self, name: str, waves: Sequence[np.ndarray], sources: Sequence[str] | None
    ) -> tuple[list[np.ndarray], list[str] | None, int]:
        """Drop clips already enrolled for ``name`` (by content); refuse clips of another."""
        hashes = [clip_hash(w) for w in waves]
        if len(set(hashes)) < len(hashes):
            raise InvalidInputError("the same clip was sent more than once in one enrollment")
        known = self.registry.enrolled_hashes(hashes)
        other = sorted({n for n in known.values() if n != name})
        if other:
            raise InvalidInputError(f"a clip is already enrolled for another speaker: {other}")
        keep = [i for i, h in enumerate(hashes) if h not in known]
        kept_sources = [sources[i] for i in keep] if sources else None
        return [waves[i] for i in keep], kept_sources, len(hashes) - len(keep)

    def _summary(self) -> dict[str, object]:
        model = self.model()
        return {"model_version": model.version, "kind": model.kind,
                "speakers": list(model.classes)}  # fmt: skip

    def remove(self, name: str) -> dict[str, object]:
        """Remove a speaker at once, then refit for the remaining speakers.

        The removal is committed first, with the previous model restricted to the remaining
        speakers (:func:`~speakerrpl.service.models.restrict`), and the WAL is checkpointed:
        the voiceprint is gone before any refit starts. The refit follows; when it fails
        (e.g. the negative pool cannot be built) the removal stands, the remaining people are
        identified by the restricted model, and the answer says ``refit: "failed"``.
        """
        name = validate_speaker_name(name)
        self.registry.check_writable()
        with self._write_lock:
            snap = self.registry.snapshot()
            if name not in snap.embeddings:
                raise SpeakerNotFoundError(f"no enrolled speaker named {name!r}")
            current = self.registry.current_model()
            keep = sorted(n for n in snap.embeddings if n != name)
            interim = restrict(current, keep) if current is not None else None
            if interim is None:
                interim = FittedModel("paused", tuple(keep), {}, {"refit_pending": True})
            self.registry.commit(
                snap.data_version, snap.frontend or self.frontend.name, remove=[name],
                model_kind=interim.kind, model_classes=interim.classes,
                model_files=interim.files, model_info=interim.info,
            )  # fmt: skip
            if interim.kind == "empty":
                return {**self._summary(), "refit": "not needed", "refit_seconds": 0.0}
            return self._refit_after_removal()

    def _refit_after_removal(self) -> dict[str, object]:
        try:
            return {**self._change(lambda snap: snap, warm=True), "refit": "done"}
        except Exception as exc:  # the removal stands whatever the refit does
            logger.warning("refit after removal failed: %s: %s", type(exc).__name__, exc)
            model = self.model()
            serving = "paused" if model.kind == "paused" else "previous model, restricted"
            return {**self._summary(), "refit": "failed", "refit_error": str(exc),
                    "identification": serving, "refit_seconds": 0.0}  # fmt: skip

    def refit(self) -> dict[str, object]:
        """Refit the model on the stored enrollments and commit it (repairs a corrupt or
        restricted model; ``speakerrpl speakers refit``)."""
        self.registry.check_writable()
        return self._change(lambda snap: snap)

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
        self, target: Callable[[Snapshot], Snapshot], warm: bool = False, **commit_kw: Any
    ) -> dict[str, object]:
        """Refit on ``target(snapshot)`` and commit; ``warm``: update the committed model
        (``OpenSetSpeakerIdentifier.update``) when ``settings.warm_updates`` allows."""
        settings: Mapping[str, str] = commit_kw.pop("settings", {})
        warm = warm and self.settings.warm_updates
        self.registry.check_writable()  # before the refit's work
        with self._write_lock:
            for attempt in range(_RETRIES):
                snap = self.registry.snapshot()
                logger.info("refitting on data v%d", snap.data_version)
                start = time.perf_counter()
                previous = self.registry.current_model() if warm else None
                fitted = self._fit(target(snap), settings, previous)
                frontend = self.frontend.name
                fit_s = time.perf_counter() - start
                try:
                    version = self.registry.commit(
                        snap.data_version, frontend, model_kind=fitted.kind,
                        model_classes=fitted.classes, model_files=fitted.files,
                        model_info={**fitted.info, "fit_seconds": fit_s}, settings=settings,
                        **commit_kw,
                    )  # fmt: skip
                except ConcurrentChangeError:
                    logger.warning(
                        "registry changed during refit (attempt %d); refitting", attempt + 1
                    )
                    continue
                return {
                    "model_version": version,
                    "kind": fitted.kind,
                    "refit_seconds": fit_s,
                    "speakers": list(fitted.classes),
                    "update": fitted.info.get("update", "cold"),
                    "enrollment_copies": bool(fitted.info.get("enrollment_copies")),
                }
        raise RegistryError("registry kept changing during the refit; try again")

    def _params(self, far: float | None) -> dict[str, Any]:
        """The identifier's keyword arguments at a refit (``far``: the registry's stored one)."""
        return {
            "method": self.settings.method,
            "random_state": self.settings.random_state,
            "target_far": self.settings.far if far is None else far,
            "frontend": self.frontend.name,
            **self.settings.identifier_params,
        }

    def _fit(
        self, snap: Snapshot, new_settings: Mapping[str, str], previous: ModelRecord | None = None
    ) -> FittedModel:
        far_s = new_settings.get("far") or self.registry.get_setting("far")
        thr_s = (
            new_settings["threshold"]
            if "threshold" in new_settings
            else self.registry.get_setting("threshold")
        )
        return fit_model(
            snap, params=self._params(float(far_s) if far_s else None), pool=self._negatives,
            threshold=float(thr_s) if thr_s else None, factory=self._factory,
            previous=previous,
        )  # fmt: skip


def _with_added(
    snap: Snapshot, name: str, emb: np.ndarray, copies: np.ndarray | None = None
) -> Snapshot:
    """``snap`` with ``name``'s new clips (and their copies: ``None`` when they have none)."""
    data = dict(snap.embeddings)
    data[name] = np.concatenate([data[name], emb]) if name in data else emb
    have = dict(snap.copies)
    had_copies = name in have or name not in snap.embeddings
    if copies is not None and had_copies:
        have[name] = np.concatenate([have[name], copies]) if name in have else copies
    else:
        have.pop(name, None)  # one clip without copies: the person has none
    return Snapshot(snap.data_version, snap.frontend, data, have)


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
