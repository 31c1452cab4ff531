"""HTTP routes of the REST service (built by :func:`speakerrpl.service.app.create_app`).

Every route declares its access level (:mod:`speakerrpl.service.auth`). Uploads are checked by
their headers first (clip count, per-clip and per-request seconds, channels x rate), then
decoded and resampled in worker threads, off the event loop, under the engine's process-wide
slots (:meth:`~speakerrpl.service.engine.SpeakerEngine.work_slot`; 503 + ``Retry-After`` when
all are busy). Identification then hands its clips to the engine's micro-batcher
(:mod:`speakerrpl.service.batcher`: concurrent requests share one embedding call; a full queue
answers 503 + ``Retry-After``). Refits run in worker threads too, so identification goes on
with the last committed model while an enrollment refits.
"""

from __future__ import annotations

from typing import Annotated, Any

from speakerrpl._optional import require

require("fastapi", extra="service", purpose="the REST service")

from fastapi import APIRouter, Depends, File, HTTPException, Path, Query, Response, UploadFile  # noqa: E402
from pydantic import BaseModel  # noqa: E402
from starlette.concurrency import run_in_threadpool  # noqa: E402

from speakerrpl.audio import load_audio_bytes, probe_audio_bytes  # noqa: E402
from speakerrpl.errors import AudioTooLongError, InvalidInputError  # noqa: E402
from speakerrpl.service.api_models import ChangeResult, IdentifyResults, SpeakerList  # noqa: E402
from speakerrpl.service.auth import Access, Caller, guard, redact  # noqa: E402
from speakerrpl.service.engine import SpeakerEngine  # noqa: E402
from speakerrpl.service.voiceprints import apply_request_threshold  # noqa: E402

__all__ = ["ERROR_RESPONSES", "ErrorBody", "build_router"]

Clips = Annotated[list[UploadFile], File(description="one or several audio clips")]
Name = Annotated[
    str,
    Path(
        description="speaker name: 1-64 letters, digits, '_', '-', '.', single spaces",
        min_length=1,
        max_length=64,
    ),
]


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: str
    detail: str | list[dict[str, Any]]


_WHY = {
    400: "invalid input (name, clip count, duplicate clip)",
    401: "missing or wrong API key",
    403: "no API key configured on this server",
    404: "no such speaker",
    408: "the request body did not arrive in time",
    409: "registry empty, frontend mismatch, or concurrent changes",
    413: "request body, clip or request audio over its limit",
    422: "unreadable audio or malformed request",
    503: "busy (Retry-After), registry read-only or full, or identification paused",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": why} for code, why in _WHY.items()
}
_THRESHOLD = "this request's raw-score threshold instead of the registry's (key holders only)"
_FLOOR = "accept only at or above this confidence (stricter only; see speakerrpl.decisions)"
_PARTIAL = "an unreadable clip gets its error in its result instead of failing the request"
KeyHolder = Annotated[Caller, Depends(guard(Access.VOICEPRINTS))]
Writer = Annotated[Caller, Depends(guard(Access.WRITE))]
Identifier = Annotated[Caller, Depends(guard(Access.IDENTIFY))]


async def _read_clips(
    engine: SpeakerEngine, files: list[UploadFile]
) -> tuple[list[bytes], list[str]]:
    """Read the uploads and check their headers: no decoding happens here."""
    s = engine.settings
    if not files:
        raise InvalidInputError("no file uploaded: send one or more clips in the 'file' field")
    if len(files) > s.max_clips:
        raise InvalidInputError(f"too many clips: {len(files)} > {s.max_clips}")
    blobs = [await f.read() for f in files]
    names = [f.filename or f"clip{i}" for i, f in enumerate(files)]
    total = 0.0
    for blob, name in zip(blobs, names, strict=True):
        info = probe_audio_bytes(blob, source=repr(name))
        info.check(repr(name), s.max_clip_seconds)
        total += min(info.duration, s.max_clip_seconds)  # unknown length: at most the cap
    if total > s.max_request_seconds:
        raise AudioTooLongError(
            f"{total:.1f} s of audio in one request is over the {s.max_request_seconds:g} s cap"
        )
    return blobs, names


def _decode(engine: SpeakerEngine, blobs: list[bytes], names: list[str]) -> list[Any]:
    with engine.work_slot():
        cap = engine.settings.max_clip_seconds
        return [
            load_audio_bytes(b, max_duration=cap, source=repr(n))
            for b, n in zip(blobs, names, strict=True)
        ]


def build_router(engine: SpeakerEngine) -> APIRouter:
    """Return the router of every endpoint, bound to ``engine``."""
    router = APIRouter(responses=ERROR_RESPONSES)

    @router.get("/healthz", summary="liveness (reveals nothing)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.head("/healthz", summary="liveness, headers only")
    async def healthz_head() -> Response:
        return Response(status_code=200, media_type="application/json")

    @router.get("/status", summary="model summary (key holders)")
    async def status(caller: KeyHolder) -> dict[str, Any]:
        return await run_in_threadpool(engine.status)

    @router.get("/speakers", summary="list enrolled speakers", response_model=SpeakerList)
    async def list_speakers(caller: KeyHolder) -> dict[str, Any]:
        return {"speakers": await run_in_threadpool(engine.speakers)}

    @router.post("/speakers/{name}/enrollments", status_code=201, summary="enroll audio clips",
                 response_model=ChangeResult)  # fmt: skip
    async def enroll(name: Name, file: Clips, caller: Writer, response: Response) -> dict[str, Any]:
        from speakerrpl.service.registry import validate_speaker_name

        name = validate_speaker_name(name)  # before any decoding work
        engine.registry.check_writable()
        blobs, sources = await _read_clips(engine, file)
        waves = await run_in_threadpool(_decode, engine, blobs, sources)
        out = await run_in_threadpool(engine.enroll, name, waves, sources)
        if out.get("duplicates") == len(waves):
            response.status_code = 200  # a retried request: nothing new was enrolled
        return {"name": name, "clips": len(waves), **out}

    @router.delete("/speakers/{name}", summary="remove a speaker at once, then refit",
                   response_model=ChangeResult)  # fmt: skip
    async def remove(name: Name, caller: Writer) -> dict[str, Any]:
        out = await run_in_threadpool(engine.remove, name)
        return {"removed": name, **out}

    @router.post("/refit", summary="refit the model on the stored enrollments",
                 response_model=ChangeResult)  # fmt: skip
    async def refit(caller: Writer) -> dict[str, Any]:
        return await run_in_threadpool(engine.refit)

    @router.post("/identify", summary="name the speaker of each clip, or <unknown>",
                 response_model=IdentifyResults, response_model_exclude_unset=True)  # fmt: skip
    async def identify(
        file: Clips,
        caller: Identifier,
        threshold: Annotated[float | None, Query(description=_THRESHOLD)] = None,
        min_confidence: Annotated[float | None, Query(description=_FLOOR)] = None,
        partial: Annotated[bool, Query(description=_PARTIAL)] = False,
    ) -> dict[str, Any]:
        from speakerrpl.service.routes_manage import identify_each

        if threshold is not None and not caller.has_key:
            raise HTTPException(403, "a per-request threshold needs the API key; "
                                     "use min_confidence to be stricter")  # fmt: skip
        await run_in_threadpool(engine.model)  # an empty registry answers 409 before decoding
        if partial:
            results = await identify_each(engine, file)
        else:
            blobs, names = await _read_clips(engine, file)
            waves = await run_in_threadpool(_decode, engine, blobs, names)
            results = await run_in_threadpool(engine.identify, waves)
            results = [{**r, "file": n} for r, n in zip(results, names, strict=True)]
        ok = [r for r in results if "error" not in r]
        decided = apply_request_threshold(ok, threshold, min_confidence)
        for res, new in zip(ok, decided, strict=True):
            res.update(new)
        return {"results": [r if "error" in r else redact(r, caller) for r in results]}

    return router
