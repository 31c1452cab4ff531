"""Changes to single clips: remove one enrollment clip, enroll from ready embeddings.

A mixin of :class:`~speakerrpl.service.engine.SpeakerEngine` on top of
:class:`~speakerrpl.service.writer.RegistryWriter`, used by the speaker-management routes (one
clip's removal, a voiceprint import). Like a person's removal, a clip's removal commits first and
refits after; a failed refit never undoes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from speakerrpl.errors import InvalidInputError, SpeakerNotFoundError
from speakerrpl.service.hygiene import enrollment_warnings
from speakerrpl.service.registry import Enrollment, validate_speaker_name
from speakerrpl.service.writer import RegistryWriter, _with_added

__all__ = ["ClipWriter"]


class ClipWriter(RegistryWriter):
    """Single-clip changes (see the module docstring)."""

    def enroll_embeddings(
        self,
        name: str,
        embeddings: np.ndarray,
        sources: Sequence[str | None] | None = None,
        copies: np.ndarray | None = None,
    ) -> dict[str, object]:
        """Add ``name`` (or extend it) with ready embeddings from this registry's frontend
        (an imported voiceprint), with each clip's channel copies ``(N, C, D)`` when it has
        them, refit and commit; returns the enrollment answer."""
        name = validate_speaker_name(name)
        self.registry.check_writable()
        self.registry.check_new_name(name)
        emb = np.asarray(embeddings, dtype=np.float32)
        have = {s["name"]: int(s["n_enrollments"]) for s in self.speakers()}.get(name, 0)  # type: ignore[call-overload]
        n = len(emb) if emb.ndim == 2 else 0
        if n == 0 or have + n < self.settings.min_clips:
            raise InvalidInputError(
                f"speaker {name!r} needs at least {self.settings.min_clips} enrollment clips "
                f"in total, got {have + n}"
            )
        if copies is not None and (copies.ndim != 3 or copies.shape[0] != n):
            raise InvalidInputError(f"copies of shape {copies.shape} for {n} clips")
        items = [
            Enrollment(e, None, sources[i] if sources else None,
                       copies=None if copies is None else copies[i])
            for i, e in enumerate(emb)
        ]  # fmt: skip
        added = None if copies is None else copies.reshape(-1, emb.shape[1])
        out = self._change(lambda snap: _with_added(snap, name, emb, added), add={name: items})
        return {**out, "warnings": enrollment_warnings(self.model(), name, emb, None, 0)}

    def remove_clip(self, name: str, clip_id: int) -> dict[str, object]:
        """Remove one enrollment clip at once (committed with the current model), then refit.

        Raises:
            SpeakerNotFoundError: ``name`` has no clip ``clip_id``.
            InvalidInputError: fewer than ``settings.min_clips`` would remain (remove the
                speaker instead).
        """
        name = validate_speaker_name(name)
        self.registry.check_writable()
        with self._write_lock:
            clips = [int(c["id"]) for c in self.registry.enrollments(name)]  # type: ignore[call-overload]
            if clip_id not in clips:
                raise SpeakerNotFoundError(f"{name!r} has no enrollment clip {clip_id}")
            if len(clips) - 1 < self.settings.min_clips:
                raise InvalidInputError(
                    f"{name!r} would keep {len(clips) - 1} clip(s), fewer than the "
                    f"{self.settings.min_clips} needed; remove the speaker instead"
                )
            snap = self.registry.snapshot()
            current = self.registry.current_model()
            kind, classes = (current.kind, current.classes) if current else ("paused", ())
            self.registry.commit(
                snap.data_version, snap.frontend or self.frontend.name,
                remove_enrollments=[clip_id], model_kind=kind, model_classes=classes,
                model_files=current.files if current else {},
                model_info={**(current.info if current else {}), "refit_pending": True},
            )  # fmt: skip
            return {**self._refit_after_removal(), "removed_clip": clip_id}
