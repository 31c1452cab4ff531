"""Speaker-management routes: verify, per-speaker details and clips, threshold, voiceprint
export/import, enrollment jobs and the ``/ui`` page (included by
:func:`speakerrpl.service.app.create_app`).

Every route declares its access level (:mod:`speakerrpl.service.auth`): anything that reveals or
exports voiceprints needs the key (``VOICEPRINTS``), anything that changes them too (``WRITE``).
Answers are typed (:mod:`speakerrpl.service.api_models`); errors use the one error body.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

from speakerrpl._optional import require

require("fastapi", extra="service", purpose="the REST service")

from fastapi import APIRouter, Body, Depends, File, Form, Path, Response, UploadFile  # noqa: E402
from fastapi.responses import HTMLResponse  # noqa: E402
from starlette.concurrency import run_in_threadpool  # noqa: E402

from speakerrpl.errors import InvalidInputError, SpeakerNotFoundError, SpeakerRPLError  # noqa: E402
from speakerrpl.service import voiceprints  # noqa: E402
from speakerrpl.service.api_models import (  # noqa: E402
    ChangeResult,
    ClipList,
    JobState,
    SpeakerDetail,
    ThresholdChange,
    ThresholdInfo,
    VerifyResult,
    Voiceprint,
)
from speakerrpl.service.auth import Access, Caller, guard  # noqa: E402
from speakerrpl.service.engine import SpeakerEngine  # noqa: E402
from speakerrpl.service.jobs import JobQueue  # noqa: E402
from speakerrpl.service.registry import validate_speaker_name  # noqa: E402
from speakerrpl.service.routes import ERROR_RESPONSES, _decode, _read_clips  # noqa: E402

__all__ = ["build_manage_router", "identify_each"]

Name = Annotated[str, Path(description="speaker name")]
KeyHolder = Annotated[Caller, Depends(guard(Access.VOICEPRINTS))]
Writer = Annotated[Caller, Depends(guard(Access.WRITE))]
Public = Annotated[Caller, Depends(guard(Access.PUBLIC))]
_UI_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; media-src 'self' blob:; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


def _error_body(exc: SpeakerRPLError) -> tuple[int, dict[str, Any]]:
    from speakerrpl.service.app import status_for

    return status_for(exc), {"error": type(exc).__name__, "detail": str(exc)}


def _probe_each(
    engine: SpeakerEngine, blobs: list[bytes], names: list[str]
) -> list[SpeakerRPLError | None]:
    """Each clip's header check: ``None`` when fine, else the error (no decoding)."""
    from speakerrpl.audio import probe_audio_bytes

    cap = engine.settings.max_clip_seconds
    errors: list[SpeakerRPLError | None] = []
    for blob, name in zip(blobs, names, strict=True):
        try:
            probe_audio_bytes(blob, source=repr(name)).check(repr(name), cap)
            errors.append(None)
        except SpeakerRPLError as exc:
            errors.append(exc)
    return errors


def _decode_each(engine: SpeakerEngine, blobs: list[bytes], names: list[str]) -> list[Any]:
    """Decode each clip on its own: a wave, or the error that clip raised."""
    from speakerrpl.audio import load_audio_bytes

    cap = engine.settings.max_clip_seconds
    out: list[Any] = []
    with engine.work_slot():
        for blob, name in zip(blobs, names, strict=True):
            try:
                out.append(load_audio_bytes(blob, max_duration=cap, source=repr(name)))
            except SpeakerRPLError as exc:
                out.append(exc)
    return out


async def identify_each(engine: SpeakerEngine, files: list[UploadFile]) -> list[dict[str, Any]]:
    """``POST /identify?partial=true``: an unreadable clip gets ``{"file", "speaker": None,
    "error": {error, detail}}`` in its place and the other clips are still identified."""
    if not files:
        raise InvalidInputError("no file uploaded: send one or more clips in the 'file' field")
    if len(files) > engine.settings.max_clips:
        raise InvalidInputError(f"too many clips: {len(files)} > {engine.settings.max_clips}")
    blobs = [await f.read() for f in files]
    names = [f.filename or f"clip{i}" for i, f in enumerate(files)]
    outcome: list[Any] = list(_probe_each(engine, blobs, names))
    keep = [i for i, err in enumerate(outcome) if err is None]
    waves = await run_in_threadpool(
        _decode_each, engine, [blobs[i] for i in keep], [names[i] for i in keep]
    )
    for i, wave in zip(keep, waves, strict=True):
        outcome[i] = wave
    good = [i for i, o in enumerate(outcome) if not isinstance(o, Exception)]
    results = await run_in_threadpool(engine.identify, [outcome[i] for i in good]) if good else []
    for i, res in zip(good, results, strict=True):
        outcome[i] = {**res, "file": names[i]}
    return [
        o if isinstance(o, dict) else {"file": names[i], "speaker": None,
                                       "error": {"error": type(o).__name__, "detail": str(o)}}
        for i, o in enumerate(outcome)
    ]  # fmt: skip


def _job(state: dict[str, Any]) -> dict[str, Any]:
    return {**state, "status_url": f"/jobs/{state['job_id']}"}


def _speaker_routes(router: APIRouter, engine: SpeakerEngine) -> None:
    @router.get("/speakers/{name}", summary="one enrolled person and their clips",
                response_model=SpeakerDetail)  # fmt: skip
    async def speaker(name: Name, caller: KeyHolder) -> dict[str, Any]:
        return await run_in_threadpool(voiceprints.speaker_detail, engine, name)

    @router.get("/speakers/{name}/enrollments", summary="list a person's enrollment clips",
                response_model=ClipList)  # fmt: skip
    async def clips(name: Name, caller: KeyHolder) -> dict[str, Any]:
        detail = await run_in_threadpool(voiceprints.speaker_detail, engine, name)
        return {"name": name, "clips": detail["clips"]}

    @router.delete("/speakers/{name}/enrollments/{clip_id:int}", response_model=ChangeResult,
                   summary="remove one enrollment clip at once, then refit")  # fmt: skip
    async def remove_clip(name: Name, clip_id: int, caller: Writer) -> dict[str, Any]:
        return await run_in_threadpool(engine.remove_clip, name, clip_id)

    @router.post("/verify", summary="is this clip speaker NAME? (yes/no, confidence)",
                 response_model=VerifyResult)  # fmt: skip
    async def verify(
        caller: KeyHolder,
        name: Annotated[str, Form(description="the enrolled person to check against")],
        file: Annotated[UploadFile, File(description="one audio clip")],
    ) -> dict[str, Any]:
        name = validate_speaker_name(name)
        await run_in_threadpool(engine.model)  # 409 on an empty registry, before decoding
        blobs, names = await _read_clips(engine, [file])
        waves = await run_in_threadpool(_decode, engine, blobs, names)
        return await run_in_threadpool(voiceprints.verify, engine, name, waves[0])


def _registry_routes(router: APIRouter, engine: SpeakerEngine) -> None:
    @router.get("/threshold", summary="the acceptance threshold in force",
                response_model=ThresholdInfo)  # fmt: skip
    async def get_threshold(caller: KeyHolder) -> dict[str, Any]:
        return await run_in_threadpool(voiceprints.threshold_info, engine)

    @router.put("/threshold", summary="recalibrate to a target FAR, or pin a threshold",
                response_model=ThresholdInfo)  # fmt: skip
    async def put_threshold(change: ThresholdChange, caller: Writer) -> dict[str, Any]:
        await run_in_threadpool(engine.recalibrate, change.far, change.threshold)
        return await run_in_threadpool(voiceprints.threshold_info, engine)

    @router.get("/speakers/{name}/voiceprint", response_model=Voiceprint,
                summary="export a person's voiceprint (biometric data)")  # fmt: skip
    async def export(name: Name, caller: KeyHolder) -> dict[str, Any]:
        return await run_in_threadpool(voiceprints.export_voiceprint, engine, name)

    @router.put("/speakers/{name}/voiceprint", status_code=201, response_model=ChangeResult,
                summary="import a voiceprint exported with the same frontend")  # fmt: skip
    async def import_(name: Name, doc: Annotated[Voiceprint, Body()], caller: Writer) -> Any:
        name = validate_speaker_name(name)
        return await run_in_threadpool(
            voiceprints.import_voiceprint, engine, name, doc.model_dump()
        )


def _job_routes(router: APIRouter, engine: SpeakerEngine, jobs: JobQueue) -> None:
    @router.post("/speakers/{name}/enrollments/jobs", status_code=202, response_model=JobState,
                 summary="enroll in the background: 202 + job id, then GET /jobs/ID")  # fmt: skip
    async def enroll_job(
        name: Name,
        file: Annotated[list[UploadFile], File(description="one or several audio clips")],
        caller: Writer,
        response: Response,
    ) -> dict[str, Any]:
        name = validate_speaker_name(name)
        engine.registry.check_writable()
        blobs, sources = await _read_clips(engine, file)  # headers checked before answering

        def work() -> dict[str, Any]:
            waves = _decode(engine, blobs, sources)
            return {"name": name, "clips": len(waves), **engine.enroll(name, waves, sources)}

        state = _job(jobs.submit("enroll", work))
        response.headers["Location"] = state["status_url"]
        return state

    @router.get("/jobs/{job_id}", summary="state of a background enrollment",
                response_model=JobState)  # fmt: skip
    async def job(job_id: str, caller: Writer) -> dict[str, Any]:
        state = jobs.get(job_id)
        if state is None:
            raise SpeakerNotFoundError(f"no job {job_id!r} (unknown, or forgotten after a restart)")
        return _job(state)


def build_manage_router(engine: SpeakerEngine) -> APIRouter:
    """Return the router of the speaker-management endpoints and ``/ui``, bound to ``engine``."""
    router = APIRouter(responses=ERROR_RESPONSES)
    _speaker_routes(router, engine)
    _registry_routes(router, engine)
    _job_routes(router, engine, JobQueue(_error_body))
    page = resources.files("speakerrpl.service").joinpath("ui/index.html").read_text("utf-8")

    @router.get("/ui", response_class=HTMLResponse, include_in_schema=False)
    async def ui(caller: Public) -> HTMLResponse:
        return HTMLResponse(page, headers=_UI_HEADERS)

    return router
