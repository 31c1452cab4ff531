"""Running the proxy as a Wyoming server (``speakerrpl wyoming``)."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any
from urllib.parse import urlparse

from speakerrpl._optional import require
from speakerrpl.errors import InvalidInputError
from speakerrpl.wyoming.handler import handler_class
from speakerrpl.wyoming.proxy import SpeakerProxy

__all__ = ["proxy_server", "run_proxy", "start_proxy"]

logger = logging.getLogger(__name__)

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def proxy_server(uri: str) -> Any:
    """The wyoming package's ``AsyncServer`` for ``uri`` (``tcp://HOST:PORT`` or ``unix://PATH``)."""
    require("wyoming", "wyoming", "the Home Assistant (Wyoming) proxy")
    from wyoming.server import AsyncServer

    parsed = urlparse(uri)
    if parsed.scheme not in ("tcp", "unix"):
        raise InvalidInputError(f"--uri must be tcp://HOST:PORT or unix://PATH, got {uri!r}")
    if parsed.scheme == "tcp":
        try:
            port = parsed.port
        except ValueError:
            port = None
        if not parsed.hostname or port is None:
            raise InvalidInputError(f"--uri {uri!r} needs a host and a port 0-65535")
        if parsed.hostname not in _LOOPBACK:
            logger.warning(
                "listening on %s: Wyoming has no authentication, anyone who can reach this "
                "port can ask who is speaking; keep it on a trusted network",
                parsed.hostname,
            )
    return AsyncServer.from_uri(uri)


async def start_proxy(proxy: SpeakerProxy, uri: str) -> Any:
    """Start serving ``proxy`` on ``uri`` without blocking; ``await server.stop()`` ends it."""
    server = proxy_server(uri)
    await server.start(partial(handler_class(), proxy=proxy))
    return server


async def run_proxy(proxy: SpeakerProxy, uri: str) -> None:
    """Serve ``proxy`` on ``uri`` until cancelled (or SIGTERM)."""
    server = proxy_server(uri)
    logger.info("speakerrpl Wyoming proxy on %s -> %s", uri, proxy.upstream.uri)
    await server.run(partial(handler_class(), proxy=proxy))
