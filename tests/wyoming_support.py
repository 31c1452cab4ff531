"""Shared by the Wyoming proxy tests: a small upstream ASR server and utterance helpers."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import AsrModel, AsrProgram, Attribution, Describe, Info
from wyoming.server import AsyncEventHandler

from toy_audio import RATE, pcm16


class FakeASR(AsyncEventHandler):
    """Upstream ASR: answers `describe`, and transcribes by counting the audio bytes it got."""

    delay = 0.0

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(reader, writer)
        self.got = 0
        self.language: str | None = None

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            model = AsrModel(name="tiny-int8", attribution=Attribution("test", "http://test"),
                             installed=True, description=None, version="1",
                             languages=["en", "de"])  # fmt: skip
            program = AsrProgram(name="fake-whisper", attribution=model.attribution,
                                 installed=True, description=None, version="1",
                                 models=[model])  # fmt: skip
            await self.write_event(Info(asr=[program]).event())
        elif Transcribe.is_type(event.type):
            self.language = Transcribe.from_event(event).language
        elif AudioChunk.is_type(event.type):
            self.got += len(AudioChunk.from_event(event).audio)
        elif AudioStop.is_type(event.type):
            await asyncio.sleep(self.delay)
            text, ctx = f"heard {self.got} bytes", {"upstream": "fake"}
            await self.write_event(Transcript(text, context=ctx, language=self.language).event())
            self.got = 0
        return True


class SlowASR(FakeASR):
    delay = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def utterance(
    client: AsyncTcpClient,
    wave: np.ndarray,
    rate: int = RATE,
    channels: int = 1,
    chunk: int = 1024,
    language: str | None = "en",
) -> tuple[Event, int]:
    """Send one utterance as Home Assistant does; return the answer and the bytes sent."""
    frames = wave if channels == 1 else np.repeat(wave[:, None], channels, axis=1)
    audio = pcm16(frames.reshape(-1))
    await client.write_event(Transcribe(language=language).event())
    await client.write_event(AudioStart(rate, 2, channels).event())
    for i in range(0, len(audio), chunk):
        await client.write_event(AudioChunk(rate, 2, channels, audio[i : i + chunk]).event())
    await client.write_event(AudioStop().event())
    event = await client.read_event()
    assert event is not None
    return event, len(audio)


def run(coro: object) -> object:
    """Run a coroutine to completion (one event loop per test)."""
    return asyncio.run(coro)  # type: ignore[arg-type]
