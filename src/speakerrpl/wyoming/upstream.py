"""The upstream speech-to-text service the proxy forwards audio to (any Wyoming ASR server).

Every network step is bounded: connecting by ``connect_timeout``, each write and the wait for
the transcript by ``timeout``. A refused connection, a closed socket or a timeout becomes one
:class:`UpstreamError` whose message names the upstream and what it did not do, so the proxy can
answer its client with a clear ``error`` event instead of hanging.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from speakerrpl._optional import require
from speakerrpl.errors import InvalidInputError, SpeakerRPLError

if TYPE_CHECKING:
    from wyoming.asr import Transcribe, Transcript
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncClient
    from wyoming.event import Event
    from wyoming.info import Info

__all__ = ["Upstream", "UpstreamError", "UpstreamSession"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class UpstreamError(SpeakerRPLError):
    """The upstream speech-to-text service is unreachable, too slow, or answered an error."""


@dataclass(frozen=True)
class Upstream:
    """Where and how patiently to reach the upstream ASR.

    Args:
        uri: ``tcp://HOST:PORT`` (or ``unix://PATH``) of a Wyoming ASR server.
        connect_timeout: seconds to wait for the connection.
        timeout: seconds to wait for any single write, and for the transcript after
            ``audio-stop``.
    """

    uri: str
    connect_timeout: float = 5.0
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.uri.startswith(("tcp://", "unix://")):
            raise InvalidInputError(
                f"upstream must be tcp://HOST:PORT or unix://PATH, got {self.uri!r}"
            )
        for name in ("connect_timeout", "timeout"):
            value = getattr(self, name)
            if not value > 0 or value == float("inf"):
                raise InvalidInputError(f"{name} must be a positive number of seconds, got {value}")

    async def connect(self) -> UpstreamSession:
        """Open a connection (one per utterance)."""
        require("wyoming", "wyoming", "the Home Assistant (Wyoming) proxy")
        from wyoming.client import AsyncClient

        try:
            client = AsyncClient.from_uri(self.uri)
        except ValueError as exc:
            raise InvalidInputError(f"upstream {self.uri!r}: {exc}") from None
        try:
            await asyncio.wait_for(client.connect(), self.connect_timeout)
        except asyncio.TimeoutError:
            raise UpstreamError(
                f"upstream ASR {self.uri} did not accept a connection within "
                f"{self.connect_timeout:g} s"
            ) from None
        except OSError as exc:
            raise UpstreamError(f"upstream ASR {self.uri} is unreachable: {exc}") from None
        return UpstreamSession(self, client)

    async def describe(self) -> Info:
        """Ask the upstream for its ``info``."""
        from wyoming.info import Describe, Info

        session = await self.connect()
        try:
            await session.write(Describe().event())
            event = await session.read_until(Info.is_type, "info")
            return Info.from_event(event)
        finally:
            await session.close()


class UpstreamSession:
    """One open connection to the upstream (made by :meth:`Upstream.connect`)."""

    def __init__(self, upstream: Upstream, client: AsyncClient) -> None:
        self.upstream = upstream
        self._client = client

    async def _bounded(self, step: Awaitable[T], what: str) -> T:
        try:
            return await asyncio.wait_for(step, self.upstream.timeout)
        except asyncio.TimeoutError:
            raise UpstreamError(
                f"upstream ASR {self.upstream.uri} did not {what} within "
                f"{self.upstream.timeout:g} s"
            ) from None
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise UpstreamError(
                f"upstream ASR {self.upstream.uri} failed to {what}: {exc or type(exc).__name__}"
            ) from None

    async def write(self, event: Event) -> None:
        """Send one event (bounded by ``timeout``)."""
        await self._bounded(self._client.write_event(event), "take the audio")

    async def read_until(self, wanted: Any, what: str) -> Event:
        """Read events until one with ``wanted(type)`` true arrives, all within ``timeout``."""

        from wyoming.error import Error

        async def read() -> Event:
            while True:
                event = await self._client.read_event()
                if event is None:
                    raise UpstreamError(
                        f"upstream ASR {self.upstream.uri} closed the connection before "
                        f"sending its {what}"
                    )
                if Error.is_type(event.type):
                    err = Error.from_event(event)
                    raise UpstreamError(f"upstream ASR {self.upstream.uri}: {err.text}")
                if wanted(event.type):
                    return event
                logger.debug("upstream event %s skipped while waiting for %s", event.type, what)

        return await self._bounded(read(), f"send its {what}")

    async def start(self, transcribe: Transcribe, audio_start: AudioStart) -> None:
        """Begin an utterance: ``transcribe`` then ``audio-start``."""
        await self.write(transcribe.event())
        await self.write(audio_start.event())

    async def send(self, chunk: AudioChunk) -> None:
        """Forward one audio chunk."""
        await self.write(chunk.event())

    async def finish(self, stop: AudioStop) -> Transcript:
        """Send ``audio-stop`` and wait for the final ``transcript``."""
        from wyoming.asr import Transcript

        await self.write(stop.event())
        event = await self.read_until(Transcript.is_type, "transcript")
        return Transcript.from_event(event)

    async def close(self) -> None:
        """Close the connection (never raises)."""
        try:
            await asyncio.wait_for(self._client.disconnect(), 1.0)
        except (OSError, asyncio.TimeoutError):
            logger.debug("closing the upstream connection failed", exc_info=True)
