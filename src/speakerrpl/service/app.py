"""REST service over a :class:`~speakerrpl.service.engine.SpeakerEngine` (FastAPI + uvicorn).

Needs the ``service`` extra (``pip install 'speakerrpl[service]'``), imported lazily by
:func:`create_app`. Endpoints: ``GET|HEAD /healthz``, ``GET /status``, ``GET /speakers``,
``POST /speakers/{name}/enrollments``, ``DELETE /speakers/{name}``, ``POST /refit``,
``POST /identify``; OpenAPI docs at ``/docs``. Who may call what is decided in one place,
:mod:`speakerrpl.service.auth`. Every library error becomes a 4xx/503 answer with a JSON body
``{"error": TYPE, "detail": MESSAGE}``; request bodies are capped in size and time while they
stream in (:class:`BodyLimitMiddleware`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from speakerrpl._optional import require
from speakerrpl.errors import (
    AudioError,
    AudioTooLargeError,
    AudioTooLongError,
    CorruptModelError,
    FrontendError,
    IdentificationPausedError,
    InvalidInputError,
    MissingDependencyError,
    ModelMismatchError,
    RegistryError,
    RegistryUnavailableError,
    ServiceBusyError,
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
    (AudioTooLargeError, 413),
    (AudioError, 422),
    (InvalidInputError, 400),
    (ModelMismatchError, 409),
    (RegistryUnavailableError, 503),
    (CorruptModelError, 503),
    (IdentificationPausedError, 503),
    (ServiceBusyError, 503),
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


async def _send_json(
    send: Callable[[Message], Awaitable[None]],
    status: int,
    error: str,
    detail: str,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    body = json.dumps({"error": error, "detail": detail}).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"), *headers]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Cap request bodies while they stream in, before any parsing.

    Over ``limit`` bytes: 413; not fully arrived within ``timeout`` seconds: 408; all requests
    in progress together holding more than ``budget`` bytes of bodies: 503 with
    ``Retry-After`` (a request's bytes count until its answer is sent). Memory used for
    request bodies is thus at most ``budget``, whatever the number of clients.
    """

    def __init__(self, app: ASGIApp, limit: int, timeout: float, budget: int) -> None:
        self.app, self.limit, self.timeout, self.budget = app, limit, timeout, budget
        self.inflight = 0  # bytes held by requests in progress (one event loop: no lock)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            code = 413 if length.isdigit() else 400
            await _send_json(
                send,
                code,
                "PayloadTooLarge" if code == 413 else "BadRequest",
                f"request body over {self.limit} bytes (or a bad Content-Length)",
            )
            return  # fmt: skip
        held = [0]  # this request's bytes, released whatever happens
        try:
            body = await self._receive_body(receive, send, held)
            if body is not None:
                await self.app(scope, _replay(body, receive), send)
        finally:
            self.inflight -= held[0]

    async def _receive_body(self, receive: Any, send: Any, held: list[int]) -> bytes | None:
        chunks: list[bytes] = []
        more, deadline = True, time.monotonic() + self.timeout
        while more:
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except TimeoutError:
                await _send_json(
                    send,
                    408,
                    "RequestTimeout",
                    f"request body not received within {self.timeout:g} s",
                )
                return None  # fmt: skip
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            chunks.append(chunk)
            held[0] += len(chunk)
            self.inflight += len(chunk)
            if held[0] > self.limit:
                await _send_json(
                    send, 413, "PayloadTooLarge", f"request body over {self.limit} bytes"
                )
                return None  # fmt: skip
            if self.inflight > self.budget:
                await _send_json(
                    send,
                    503,
                    "ServiceBusyError",
                    "too many uploads in progress; retry",
                    ((b"retry-after", b"2"),),
                )
                return None  # fmt: skip
            more = bool(message.get("more_body", False))
        return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Callable[[], Awaitable[Message]]:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return dict(await receive())

    return replay


def create_app(engine: SpeakerEngine) -> Any:
    """Build the FastAPI application serving ``engine`` (settings from ``engine.settings``).

    Example:
        >>> import tempfile
        >>> from speakerrpl.service.settings import ServiceSettings
        >>> app = create_app(SpeakerEngine(tempfile.mkdtemp() + "/r.db", ServiceSettings()))
        >>> sorted(p for p in app.openapi()["paths"] if p.startswith("/sp"))[:3]
        ['/speakers', '/speakers/{name}', '/speakers/{name}/enrollments']
    """
    require("fastapi", "service", "the REST service")
    require("python_multipart", "service", "audio uploads")
    from speakerrpl.service.diarize import build_router as diarize_router
    from speakerrpl.service.routes import build_router
    from speakerrpl.service.routes_manage import build_manage_router

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
        headers = None
        if isinstance(exc, ServiceBusyError):
            headers = {"Retry-After": str(exc.retry_after)}
        body = {"error": type(exc).__name__, "detail": str(exc)}
        return JSONResponse(body, status_for(exc), headers=headers)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Any, exc: HTTPException) -> Any:
        name = _HTTP_NAMES.get(exc.status_code, "HTTPError")
        headers = exc.headers
        if exc.status_code == 405:  # one path may be served by routes of several routers
            headers = {**(headers or {}), "Allow": _allowed(request.app, request.url.path)}
        return JSONResponse({"error": name, "detail": exc.detail}, exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Any, exc: RequestValidationError) -> Any:
        detail = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg"))} for e in exc.errors()]
        return JSONResponse({"error": "RequestValidationError", "detail": detail}, 422)

    app.include_router(build_router(engine))
    app.include_router(build_manage_router(engine))
    app.include_router(diarize_router(engine))
    s = engine.settings
    app.add_middleware(
        BodyLimitMiddleware, limit=s.max_upload_bytes, timeout=s.body_timeout_seconds,
        budget=s.max_inflight_bytes,
    )  # fmt: skip
    return app


def _allowed(app: Any, path: str) -> str:
    """Every method some route serves at ``path`` (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in app.routes:
        regex, served = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and served and regex.match(path):
            methods |= set(served)
    return ", ".join(sorted(methods))


_HTTP_NAMES = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed"}
