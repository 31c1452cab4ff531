"""``POST /diarize``: who spoke when in one uploaded recording, named from the registry.

The upload (at most the server's body limit) is spooled to a temporary file and diarized in a
worker thread, streamed in chunks; the answer is the JSON of ``speakerrpl diarize --json`` for
one file. Speakers are named by the registry's committed model; an empty registry gives
anonymous ``SPEAKER_xx`` labels. One diarization runs at a time (the VAD carries state).
Access level ``IDENTIFY`` (:mod:`speakerrpl.service.auth`): a caller without the key gets no
score for a stranger's turns (that score tells how close the stranger is to an enrolled person).
"""

from __future__ import annotations

import logging
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Any

from speakerrpl._optional import require

require("fastapi", extra="service", purpose="the REST service")

from fastapi import APIRouter, Depends, File, UploadFile  # noqa: E402
from starlette.concurrency import run_in_threadpool  # noqa: E402

from speakerrpl.errors import AudioReadError, RegistryError  # noqa: E402
from speakerrpl.service.auth import Access, Caller, guard  # noqa: E402
from speakerrpl.service.engine import SpeakerEngine  # noqa: E402
from speakerrpl.service.routes import ERROR_RESPONSES  # noqa: E402

__all__ = ["build_router"]

logger = logging.getLogger(__name__)

Recording = Annotated[UploadFile, File(description="one recording (WAV, FLAC, OGG)")]
Identifier = Annotated[Caller, Depends(guard(Access.IDENTIFY))]


class _DiarizeService:
    """The diarizer of one engine, created on first use and run one call at a time."""

    def __init__(self, engine: SpeakerEngine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._diarizer: Any = None

    def __call__(self, data: bytes, filename: str, caller: Caller) -> dict[str, Any]:
        from speakerrpl.diarization import Diarizer, to_json

        if not data:
            raise AudioReadError(f"{filename!r}: no data (0 bytes)")
        try:
            model = self.engine.model()
        except RegistryError:
            model = None
        suffix = Path(filename).suffix[:8] if Path(filename).suffix.isascii() else ""
        with self._lock, tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
            tmp.write(data)
            tmp.flush()
            if self._diarizer is None:
                self._diarizer = Diarizer(frontend=self.engine.frontend)
            try:
                result = self._diarizer.run(tmp.name, identifier=model)
            except AudioReadError as exc:  # do not leak the temporary file name
                raise AudioReadError(f"{filename!r}: not a readable audio file") from exc
        out = to_json(result.segments, filename, result.duration)
        out["model_version"] = None if model is None else model.version
        if not caller.has_key and result.naming is not None:
            named = {
                lab
                for lab, ok in zip(result.naming.labels, result.naming.enrolled, strict=True)
                if ok
            }
            for seg in out["segments"]:
                if seg["label"] not in named:
                    seg["score"] = None
        return out


def build_router(engine: SpeakerEngine) -> APIRouter:
    """The router of ``POST /diarize``, bound to ``engine`` (errors as every other route's)."""
    router = APIRouter(responses=ERROR_RESPONSES)
    service = _DiarizeService(engine)

    @router.post("/diarize", summary="who spoke when: enrolled names or SPEAKER_xx")
    async def diarize(file: Recording, caller: Identifier) -> dict[str, Any]:
        data = await file.read()
        return await run_in_threadpool(service, data, file.filename or "recording", caller)

    return router
