"""HTTP routes of the REST service (built by :func:`speakerrpl.service.app.create_app`).

Uploads are decoded and embedded, and refits run, in worker threads
(``starlette.concurrency.run_in_threadpool``): the event loop stays free and identification goes
on with the last committed model while an enrollment refits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, File, Path, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from speakerrpl.audio import load_audio_bytes
from speakerrpl.errors import InvalidInputError
from speakerrpl.service.engine import SpeakerEngine

__all__ = ["build_router"]

Clips = Annotated[list[UploadFile], File(description="one or several audio clips")]
Name = Annotated[
    str, Path(description="speaker name: 1-64 letters, digits, '_', '-', '.', single spaces")
]


async def _read_clips(
    engine: SpeakerEngine, files: list[UploadFile]
) -> tuple[list[Any], list[str]]:
    limit = engine.settings.max_clips
    if not files:
        raise InvalidInputError("no file uploaded: send one or more clips in the 'file' field")
    if len(files) > limit:
        raise InvalidInputError(f"too many clips: {len(files)} > {limit}")
    blobs = [await f.read() for f in files]
    names = [f.filename or f"clip{i}" for i, f in enumerate(files)]

    def decode() -> list[Any]:
        return [
            load_audio_bytes(b, max_duration=engine.settings.max_clip_seconds, source=f"{n!r}")
            for b, n in zip(blobs, names, strict=True)
        ]

    return await run_in_threadpool(decode), names


def build_router(engine: SpeakerEngine, check_key: Callable[[Any, bool], None]) -> APIRouter:
    """Return the router of every endpoint, bound to ``engine``."""
    router = APIRouter()

    @router.get("/healthz", summary="liveness and model summary")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", **(await run_in_threadpool(engine.status))}

    @router.get("/speakers", summary="list enrolled speakers")
    async def list_speakers(request: Request) -> dict[str, Any]:
        check_key(request, False)
        return {"speakers": await run_in_threadpool(engine.speakers)}

    @router.post("/speakers/{name}/enrollments", status_code=201, summary="enroll audio clips")
    async def enroll(
        request: Request,
        name: Name,
        file: Clips,
    ) -> dict[str, Any]:
        check_key(request, True)
        from speakerrpl.service.registry import validate_speaker_name

        name = validate_speaker_name(name)  # before any decoding work
        waves, sources = await _read_clips(engine, file)
        out = await run_in_threadpool(engine.enroll, name, waves, sources)
        return {"name": name, "clips": len(waves), **out}

    @router.delete("/speakers/{name}", summary="remove a speaker and its enrollments")
    async def remove(request: Request, name: Name) -> dict[str, Any]:
        check_key(request, True)
        out = await run_in_threadpool(engine.remove, name)
        return {"removed": name, **out}

    @router.post("/identify", summary="name the speaker of each clip, or <unknown>")
    async def identify(
        request: Request,
        file: Clips,
    ) -> dict[str, Any]:
        check_key(request, False)
        await run_in_threadpool(engine.model)  # an empty registry answers 409 before any decoding
        waves, names = await _read_clips(engine, file)
        results = await run_in_threadpool(engine.identify, waves)
        for name, res in zip(names, results, strict=True):
            res["file"] = name
        return {"results": results}

    return router
