"""REST service over a :class:`~speakerrpl.service.engine.SpeakerEngine` (FastAPI + uvicorn).

Needs the ``service`` extra (``pip install 'speakerrpl[service]'``), imported lazily by
:func:`create_app`. Endpoints: ``GET /healthz``, ``GET /speakers``,
``POST /speakers/{name}/enrollments``, ``DELETE /speakers/{name}``, ``POST /identify``; OpenAPI
docs at ``/docs``. Audio and refits run in worker threads, so a refit in progress never blocks
identification, which keeps using the last committed model. Every library error becomes a 4xx
answer with a JSON body ``{"error": TYPE, "detail": MESSAGE}``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from speakerrpl._optional import require
from speakerrpl.errors import (
    AudioError,
    AudioTooLongError,
    FrontendError,
    InvalidInputError,
    MissingDependencyError,
    ModelMismatchError,
    RegistryError,
    SpeakerNotFoundError,
    SpeakerRPLError,
)
from speakerrpl.service.engine import SpeakerEngine

__all__ = ["create_app", "status_for"]

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_STATUS: tuple[tuple[type[SpeakerRPLError], int], ...] = (
    (SpeakerNotFoundError, 404),
    (AudioTooLongError, 413),
    (AudioError, 422),
    (InvalidInputError, 400),
    (ModelMismatchError, 409),
    (RegistryError, 409),
    (MissingDependencyError, 503),
    (FrontendError, 503),
)


def status_for(exc: SpeakerRPLError) -> int:
    """HTTP status of a library error (400 when nothing more specific applies).

    Example:
        >>> status_for(SpeakerNotFoundError("bob"))
        404
    """
    return next((code for cls, code in _STATUS if isinstance(exc, cls)), 400)


async def _send_json(send: Callable[[Message], Awaitable[None]], status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Reject request bodies over ``limit`` bytes with 413, before any parsing."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = (
            b'{"error": "PayloadTooLarge", "detail": "request body over %d bytes"}' % self.limit
        )
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await _send_json(send, 413 if length.isdigit() else 400, too_big)
            return
        chunks: list[bytes] = []
        total, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            total += len(chunks[-1])
            if total > self.limit:
                await _send_json(send, 413, too_big)
                return
            more = bool(message.get("more_body", False))
        body, sent = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return dict(await receive())

        await self.app(scope, replay, send)


def create_app(engine: SpeakerEngine) -> Any:
    """Build the FastAPI application serving ``engine`` (settings from ``engine.settings``).

    Example:
        >>> import tempfile
        >>> from speakerrpl.service.settings import ServiceSettings
        >>> app = create_app(SpeakerEngine(tempfile.mkdtemp() + "/r.db", ServiceSettings()))
        >>> sorted(p for p in app.openapi()["paths"] if p.startswith("/s"))
        ['/speakers', '/speakers/{name}', '/speakers/{name}/enrollments']
    """
    require("fastapi", "service", "the REST service")
    require("python_multipart", "service", "audio uploads")
    from speakerrpl.service.routes import build_router

    fastapi = require("fastapi", "service")
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    app = fastapi.FastAPI(
        title="speakerrpl",
        description="Few-shot open-set speaker identification: enroll, identify, remove.",
    )
    app.state.engine = engine

    @app.exception_handler(SpeakerRPLError)
    async def _library_error(request: Any, exc: SpeakerRPLError) -> Any:
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_for(exc))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Any, exc: HTTPException) -> Any:
        return JSONResponse(
            {"error": "HTTPError", "detail": exc.detail}, exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Any, exc: RequestValidationError) -> Any:
        detail = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg"))} for e in exc.errors()]
        return JSONResponse({"error": "RequestValidationError", "detail": detail}, 422)

    app.include_router(build_router(engine, _key_checker(engine)))
    app.add_middleware(BodyLimitMiddleware, limit=engine.settings.max_upload_bytes)
    return app


def _key_checker(engine: SpeakerEngine) -> Callable[[Any, bool], None]:
    from fastapi import HTTPException

    key = engine.settings.api_key

    def check(request: Any, mutating: bool) -> None:
        if not mutating and not engine.settings.identify_requires_key:
            return
        if key is None:
            raise HTTPException(403, "this server has no API key configured (SPEAKERRPL_API_KEY)")
        given = request.headers.get("x-api-key", "")
        auth = request.headers.get("authorization", "")
        if not given and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if not hmac.compare_digest(given.encode("utf-8", "replace"), key.encode("utf-8")):
            raise HTTPException(401, "missing or wrong API key", {"WWW-Authenticate": "Bearer"})

    return check
