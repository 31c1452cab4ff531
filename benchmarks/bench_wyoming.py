"""Wyoming proxy: latency it adds to a Home Assistant speech-to-text request.

Not a test. A small upstream ASR (the wyoming package's server classes) answers each utterance
after ``--upstream-delay`` seconds (0 = an instant upstream: the worst case for the proxy, whose
identification then cannot overlap with the upstream's work). Each real pocketsphinx-testdata
clip is sent as Home Assistant sends it (``transcribe``, ``audio-start``, 1024-byte
``audio-chunk``s at full speed, ``audio-stop``), once straight to the upstream and once through
the proxy (CAM++ on one thread, a two-person registry); the figure is the median time from
``audio-stop`` to ``transcript`` through the proxy minus the same straight to the upstream.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_wyoming.py --runs 5

Writes ``results/bench_wyoming.json``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import base_parser, machine_info, print_table, set_threads, write_json
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.server import AsyncTcpServer

from speakerrpl.audio import load_audio
from speakerrpl.service.engine import SpeakerEngine
from speakerrpl.service.settings import ServiceSettings
from speakerrpl.wyoming import SpeakerProxy, Upstream, start_proxy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from wyoming_support import FakeASR, free_port  # the tests' upstream ASR

PS = Path("/usr/share/pocketsphinx/test/data")


def _files() -> tuple[list[Path], list[Path]]:
    return sorted((PS / "cards").glob("*.wav")), sorted((PS / "librivox").glob("*.wav"))


def build_registry(path: Path) -> None:
    """Enroll two real people (the default method and pool)."""
    cards, books = _files()
    engine = SpeakerEngine(path, ServiceSettings())
    engine.enroll("alice", [load_audio(p) for p in cards[:4]])
    engine.enroll("bob", [load_audio(p) for p in books[::2]])


def held_out() -> list[np.ndarray]:
    """Their clips that were not enrolled."""
    cards, books = _files()
    return [load_audio(p) for p in [cards[4], *books[1::2]]]


async def one(port: int, wave: np.ndarray) -> tuple[float, float, dict[str, Any]]:
    """Send one utterance; (audio-stop -> transcript s, whole request s, transcript context)."""
    audio = (wave * 32767).astype("<i2").tobytes()
    async with AsyncTcpClient("127.0.0.1", port, read_timeout=60) as client:
        start = time.perf_counter()
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(16000, 2, 1).event())
        for i in range(0, len(audio), 1024):
            await client.write_event(AudioChunk(16000, 2, 1, audio[i : i + 1024]).event())
        stop = time.perf_counter()
        await client.write_event(AudioStop().event())
        event = await client.read_event()
        end = time.perf_counter()
    if event is None or not Transcript.is_type(event.type):
        raise RuntimeError(f"expected a transcript, got {event}")
    return end - stop, end - start, Transcript.from_event(event).context or {}


async def measure(
    engine: SpeakerEngine, clips: list[np.ndarray], delay: float, runs: int
) -> dict[str, Any]:
    """Median latencies straight to the upstream and through the proxy."""
    up_port, port = free_port(), free_port()
    handler = type("DelayedASR", (FakeASR,), {"delay": delay})
    upstream = AsyncTcpServer("127.0.0.1", up_port)
    await upstream.start(handler)
    proxy = SpeakerProxy(engine, Upstream(f"tcp://127.0.0.1:{up_port}"))
    server = await start_proxy(proxy, f"tcp://127.0.0.1:{port}")
    rows: dict[str, list[tuple[float, float, dict[str, Any]]]] = {"direct": [], "proxy": []}
    try:
        await one(port, clips[0])  # warm-up (first CAM++ call)
        for _ in range(runs):
            for wave in clips:
                rows["direct"].append(await one(up_port, wave))
                rows["proxy"].append(await one(port, wave))
    finally:
        await server.stop()
        await upstream.stop()
    med = {k: statistics.median(r[0] for r in v) for k, v in rows.items()}
    total = {k: statistics.median(r[1] for r in v) for k, v in rows.items()}
    ident = [r[2]["identify_seconds"] for r in rows["proxy"]]
    added = [p[0] - d[0] for p, d in zip(rows["proxy"], rows["direct"], strict=True)]
    return {
        "upstream_delay_s": delay,
        "requests": len(rows["proxy"]),
        "direct_after_stop_median_s": med["direct"],
        "proxy_after_stop_median_s": med["proxy"],
        "added_after_stop_median_s": med["proxy"] - med["direct"],
        "added_after_stop_p90_s": float(np.percentile(added, 90)),
        "added_total_median_s": total["proxy"] - total["direct"],
        "identify_median_s": statistics.median(ident),
        "speakers": sorted({r[2]["speaker"] for r in rows["proxy"]}),
    }


def main() -> None:
    parser = base_parser(__doc__ or "", "results/bench_wyoming.json")
    parser.add_argument("--upstream-delay", type=float, nargs="+", default=[0.0, 0.5])
    parser.add_argument("--registry", default=None, help="existing registry (default: build one)")
    args = parser.parse_args()
    set_threads(args.threads)
    runs = args.runs or (2 if args.quick else 5)
    with tempfile.TemporaryDirectory() as tmp:
        registry = Path(args.registry) if args.registry else Path(tmp) / "reg.db"
        if args.registry is None:
            build_registry(registry)
        clips = held_out()
        engine = SpeakerEngine(registry, ServiceSettings(torch_threads=args.threads))
        engine.warm_up()
        results = [asyncio.run(measure(engine, clips, d, runs)) for d in args.upstream_delay]
    durations = [round(len(c) / 16000, 2) for c in clips]
    write_json(args.out, {"machine": machine_info(), "clip_seconds": durations,
                          "results": results})  # fmt: skip
    print_table(results, ["upstream_delay_s", "requests", "direct_after_stop_median_s",
                          "proxy_after_stop_median_s", "added_after_stop_median_s",
                          "added_after_stop_p90_s", "identify_median_s"])  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
