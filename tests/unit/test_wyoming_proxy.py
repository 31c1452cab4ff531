"""The Wyoming proxy over real loopback sockets: the wyoming package's own client talks to the
proxy, which talks to a small upstream ASR server built from the package's server classes.

The registry engine uses a tiny spectral frontend (tones stand in for voices), so these tests
exercise the proxy's protocol handling, forwarding, tagging and failure paths in seconds; the
real CAM++ path is in tests/integration/test_wyoming_cli.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from wyoming.asr import Transcript
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.server import AsyncEventHandler, AsyncTcpServer

from speakerrpl.service.engine import SpeakerEngine
from speakerrpl.service.settings import ServiceSettings
from speakerrpl.wyoming import ProxyOptions, SpeakerProxy, Upstream, start_proxy
from toy_audio import RATE, ToneFrontend, tone
from wyoming_support import FakeASR, SlowASR, free_port, run, utterance


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> SpeakerEngine:
    """A registry with 'alice' (a 300 Hz tone) enrolled; one speaker -> the cosine model."""
    path = tmp_path_factory.mktemp("wyoming") / "reg.db"
    eng = SpeakerEngine(path, ServiceSettings(min_enroll_speech=0), frontend=ToneFrontend())
    eng.enroll("alice", [tone(300), tone(305)])
    return eng


@contextlib.asynccontextmanager
async def running(
    engine: SpeakerEngine,
    upstream_handler: type[AsyncEventHandler] | None = FakeASR,
    timeout: float = 5.0,
    **options: bool,
) -> AsyncIterator[AsyncTcpClient]:
    """Upstream (unless None: nothing listens there) + proxy; yields a connected client."""
    up_port, proxy_port = free_port(), free_port()
    upstream_server = AsyncTcpServer("127.0.0.1", up_port)
    if upstream_handler is not None:
        await upstream_server.start(upstream_handler)
    proxy = SpeakerProxy(
        engine,
        Upstream(f"tcp://127.0.0.1:{up_port}", connect_timeout=1.0, timeout=timeout),
        ProxyOptions(**options),
    )
    server = await start_proxy(proxy, f"tcp://127.0.0.1:{proxy_port}")
    client = AsyncTcpClient("127.0.0.1", proxy_port, read_timeout=15.0)
    try:
        async with client:
            yield client
    finally:
        await server.stop()
        if upstream_handler is not None:
            await upstream_server.stop()


def test_describe_names_the_proxy_with_the_upstream_languages(engine: SpeakerEngine) -> None:
    async def go() -> Info:
        async with running(engine) as client:
            await client.write_event(Describe().event())
            event = await client.read_event()
            assert event is not None and Info.is_type(event.type)
            return Info.from_event(event)

    info = run(go())
    assert isinstance(info, Info)
    assert [p.name for p in info.asr] == ["speakerrpl"]
    assert "fake-whisper" in (info.asr[0].description or "")
    assert [m.languages for m in info.asr[0].models] == [["en", "de"]]


def test_transcript_carries_the_speaker_and_all_audio_reached_the_upstream(
    engine: SpeakerEngine,
) -> None:
    async def go() -> list[tuple[Event, int]]:
        async with running(engine) as client:  # two utterances on one connection
            return [await utterance(client, tone(300), chunk=777),
                    await utterance(client, tone(2500), chunk=4096)]  # fmt: skip

    (alice, n_alice), (stranger, n_stranger) = run(go())  # type: ignore[misc]
    a, s = Transcript.from_event(alice), Transcript.from_event(stranger)
    assert a.text == f"heard {n_alice} bytes" and s.text == f"heard {n_stranger} bytes"
    assert a.language == "en" and a.context is not None and s.context is not None
    assert a.context["upstream"] == "fake"  # the upstream's own context is kept
    assert a.context["speaker"] == "alice" and s.context["speaker"] == "<unknown>"
    assert a.context["confidence"] >= a.context["threshold"] > s.context["confidence"]


def test_other_formats_are_identified_too(engine: SpeakerEngine) -> None:
    async def go() -> tuple[Event, int]:
        async with running(engine) as client:
            return await utterance(client, tone(300, rate=22050), rate=22050, channels=2)

    event, n = run(go())  # type: ignore[misc]
    t = Transcript.from_event(event)
    assert t.text == f"heard {n} bytes" and t.context and t.context["speaker"] == "alice"


def test_tag_text_and_require_known(engine: SpeakerEngine) -> None:
    async def go(**opts: bool) -> list[str]:
        async with running(engine, **opts) as client:
            events = [await utterance(client, tone(f)) for f in (300, 2500)]
        return [Transcript.from_event(e).text for e, _ in events]

    tagged = run(go(tag_text=True))
    assert isinstance(tagged, list) and tagged[0].startswith("[alice] heard ")
    assert tagged[1].startswith("heard ")
    assert run(go(require_known=True, tag_text=True)) == [tagged[0], ""]


def test_too_little_audio_is_unknown_with_a_reason(engine: SpeakerEngine) -> None:
    async def go() -> tuple[Event, int]:
        async with running(engine) as client:
            return await utterance(client, np.zeros(RATE, dtype=np.float32))

    event, n = run(go())  # type: ignore[misc]
    t = Transcript.from_event(event)
    assert t.text == f"heard {n} bytes" and t.context is not None
    assert t.context["speaker"] == "<unknown>" and "speech" in t.context["error"]


def test_upstream_down_gives_an_error_event_then_closes(engine: SpeakerEngine) -> None:
    async def go() -> tuple[list[Event | None], float]:
        start = time.monotonic()
        seen: list[Event | None] = []
        async with running(engine, upstream_handler=None) as client:
            await client.write_event(Describe().event())
            seen += [await client.read_event(), await client.read_event()]
        async with running(engine, upstream_handler=None) as client:
            event, _ = await utterance(client, tone(300))
            seen += [event, await client.read_event()]
        return seen, time.monotonic() - start

    (described, closed1, answered, closed2), took = run(go())  # type: ignore[misc]
    assert described is not None and answered is not None
    assert Error.from_event(described).code == "upstream-unavailable"
    assert Error.from_event(answered).code == "upstream-failed"
    assert "unreachable" in Error.from_event(answered).text
    # then the proxy hangs up: Home Assistant, which waits for a transcript, stops waiting
    assert closed1 is None and closed2 is None and took < 5.0


def test_slow_upstream_gives_an_error_event_not_a_hang(engine: SpeakerEngine) -> None:
    async def go() -> tuple[Event, float, Event | None]:
        async with running(engine, upstream_handler=SlowASR, timeout=0.5) as client:
            start = time.monotonic()
            event, _ = await utterance(client, tone(300))
            return event, time.monotonic() - start, await client.read_event()

    event, took, after = run(go())  # type: ignore[misc]
    assert Error.is_type(event.type) and after is None
    assert "did not send its transcript within 0.5 s" in Error.from_event(event).text
    assert took < 3.0


def test_upstream_that_never_reads_does_not_hang_the_proxy(
    engine: SpeakerEngine, tmp_path: Path
) -> None:
    async def go() -> tuple[Event, float]:
        port = free_port()
        held: list[object] = []  # keep the streams: a collected writer closes the socket
        silent = await asyncio.start_server(lambda r, w: held.append((r, w)), "127.0.0.1", port)
        proxy = SpeakerProxy(engine, Upstream(f"tcp://127.0.0.1:{port}", 1.0, 0.5))
        proxy_port = free_port()
        server = await start_proxy(proxy, f"tcp://127.0.0.1:{proxy_port}")
        try:
            async with AsyncTcpClient("127.0.0.1", proxy_port, read_timeout=15.0) as client:
                start = time.monotonic()
                event, _ = await utterance(client, tone(300, seconds=20.0), chunk=65536)
                return event, time.monotonic() - start
        finally:
            await server.stop()
            silent.close()

    event, took = run(go())  # type: ignore[misc]
    assert Error.is_type(event.type) and "within 0.5 s" in Error.from_event(event).text
    assert took < 5.0
