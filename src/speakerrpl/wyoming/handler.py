"""One Wyoming connection to the proxy: ``describe``, and ``transcribe`` + audio -> ``transcript``.

The audio is forwarded to the upstream as it arrives (so the upstream transcribes while the
user speaks) and kept for identification (up to ``ProxyOptions.max_seconds``). At
``audio-stop`` identification runs in a worker thread while the upstream finishes, so the proxy
adds the part of the identification time the upstream does not already spend. Any upstream
failure is answered at ``audio-stop`` with one ``error`` event and the connection is closed (Home
Assistant waits for a transcript and skips other events; a closed connection ends its wait).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from speakerrpl.wyoming.proxy import SpeakerProxy
from speakerrpl.wyoming.upstream import UpstreamError, UpstreamSession

if TYPE_CHECKING:
    from wyoming.asr import Transcribe
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.event import Event

__all__ = ["ProxyLogic", "handler_class"]

logger = logging.getLogger(__name__)


@functools.cache
def handler_class() -> type:
    """``ProxyHandler``: :class:`ProxyLogic` on the wyoming package's ``AsyncEventHandler``
    (built on first use, so this module imports without the ``wyoming`` extra)."""
    from wyoming.server import AsyncEventHandler

    return type("ProxyHandler", (ProxyLogic, AsyncEventHandler), {"__module__": __name__})


class ProxyLogic:
    """Wyoming event handling of one client connection (see :func:`handler_class`)."""

    write_event: Callable[[Event], Awaitable[None]]  # from AsyncEventHandler

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, proxy: SpeakerProxy
    ) -> None:
        super().__init__(reader, writer)  # type: ignore[call-arg]  # AsyncEventHandler
        self.proxy = proxy
        self._transcribe: Transcribe | None = None
        self._format: AudioStart | None = None
        self._upstream: UpstreamSession | None = None
        self._audio: list[bytes] = []
        self._kept = 0
        self._failure: UpstreamError | None = None

    async def handle_event(self, event: Event) -> bool:
        """Dispatch one client event; unknown events are ignored (as Wyoming servers do).

        Returns False (closing the connection) after an ``error`` event: Home Assistant skips
        events that are not a transcript, so only a closed connection ends its wait.
        """
        from wyoming.asr import Transcribe
        from wyoming.audio import AudioChunk, AudioStart, AudioStop
        from wyoming.info import Describe
        from wyoming.ping import Ping, Pong

        if Describe.is_type(event.type):
            return await self._answer_describe()
        if Ping.is_type(event.type):
            await self.write_event(Pong(text=Ping.from_event(event).text).event())
        elif Transcribe.is_type(event.type):
            await self._reset()
            self._transcribe = Transcribe.from_event(event)
        elif AudioStart.is_type(event.type):
            await self._audio_start(AudioStart.from_event(event))
        elif AudioChunk.is_type(event.type):
            await self._audio_chunk(AudioChunk.from_event(event))
        elif AudioStop.is_type(event.type):
            return await self._audio_stop(AudioStop.from_event(event))
        else:
            logger.debug("ignoring event %s", event.type)
        return True

    async def disconnect(self) -> None:
        """Client went away: close the upstream connection of an unfinished utterance."""
        await self._reset()

    async def _answer_describe(self) -> bool:
        try:
            await self.write_event((await self.proxy.info()).event())
        except UpstreamError as exc:
            await self._error(exc, "upstream-unavailable")
            return False
        return True

    async def _audio_start(self, start: AudioStart) -> None:
        from wyoming.asr import Transcribe

        transcribe = self._transcribe or Transcribe()
        await self._reset()
        self._transcribe, self._format = transcribe, start
        try:
            self._upstream = await self.proxy.upstream.connect()
            await self._upstream.start(transcribe, start)
        except UpstreamError as exc:
            await self._fail(exc)

    async def _audio_chunk(self, chunk: AudioChunk) -> None:
        from wyoming.audio import AudioStart

        if self._failure is not None:
            return
        if self._format is None:  # audio without audio-start: take its format from the chunk
            await self._audio_start(AudioStart(chunk.rate, chunk.width, chunk.channels))
            if self._failure is not None:
                return
        limit = int(self.proxy.options.max_seconds * chunk.rate) * chunk.width * chunk.channels
        if self._kept < limit:
            self._audio.append(chunk.audio[: limit - self._kept])
            self._kept += len(self._audio[-1])
        try:
            if self._upstream is not None:
                await self._upstream.send(chunk)
        except UpstreamError as exc:
            await self._fail(exc)

    async def _audio_stop(self, stop: AudioStop) -> bool:
        from wyoming.error import Error

        if self._failure is not None:
            await self._error(self._failure, "upstream-failed")
            await self._reset()
            return False
        if self._upstream is None or self._format is None:
            await self.write_event(Error("audio-stop without audio-start", "bad-order").event())
            await self._reset()
            return True
        fmt, pcm, session = self._format, b"".join(self._audio), self._upstream
        identified = asyncio.create_task(
            asyncio.to_thread(self.proxy.identify, pcm, fmt.rate, fmt.width, fmt.channels)
        )
        try:
            transcript = await session.finish(stop)
        except UpstreamError as exc:
            await self._error(exc, "upstream-failed")
            await self._reset()
            await _settle(identified)
            return False
        context = await identified
        await self.write_event(self.proxy.tag(transcript, context).event())
        logger.info("speaker %s (%s)", context["speaker"], context.get("confidence"))
        await self._reset()
        return True

    async def _fail(self, exc: UpstreamError) -> None:
        """Remember an upstream failure (answered at ``audio-stop``); drop the rest of the audio."""
        logger.warning("%s", exc)
        await self._reset()
        self._failure = exc

    async def _error(self, exc: Exception, code: str) -> None:
        from wyoming.error import Error

        logger.warning("%s", exc)
        await self.write_event(Error(text=str(exc), code=code).event())

    async def _reset(self) -> None:
        session, self._upstream = self._upstream, None
        self._transcribe, self._format = None, None
        self._audio, self._kept, self._failure = [], 0, None
        if session is not None:
            await session.close()


async def _settle(task: asyncio.Task[Any]) -> None:
    """Wait for a worker-thread task whose result is no longer needed."""
    try:
        await task
    except Exception:  # pragma: no cover - identify() catches library errors itself
        logger.debug("identification failed after an upstream error", exc_info=True)
