"""Hostile-upload benchmark: peak RSS of ``speakerrpl serve`` under decompression bombs.

Not a test. Starts the real server (CAM++, loopback only) on a registry with one enrolled
person (pocketsphinx-testdata), then, each round with 4 clients in parallel:

1. **rate bombs**: an 8-channel, 655,350 Hz, 59 s FLAC made here (the file of issue 17; it
   would decode to 1.2 GB of float32): refused by its header (413) before decoding;
2. **largest accepted**: 8 channels at 48 kHz for 29 s (11.1 M samples, just under the
   decoding budget of 60 s x 192,000): accepted by the header, then decoded, down-mixed and
   resampled in blocks (45 MB of float32 if it were decoded whole; inference_slots=2 lets two
   of the four decode at once);
3. **longest speech**: 3 x 60 s clips of 16 kHz tone per request (the per-request cap is
   180 s), the most inference work a request may ask for; the engine embeds at most 30 s of
   audio per forward pass;
4. **stalled uploads**: 30 clients announce 19.5 MB bodies, send 19 MB and stop: held bodies
   are capped by ``max_inflight_bytes`` (503 beyond) and cut off by the body timeout (408).

The server's peak RSS (``VmHWM``, reset before each round through ``/proc/PID/clear_refs``
where permitted) is read after each round. Goal: under 1 GB. Writes JSON::

    .venv/bin/python benchmarks/bench_hostile_uploads.py --out results/bench_hostile_uploads.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soundfile as sf
from _common import wait_for_server

PS = Path("/usr/share/pocketsphinx/test/data")
KEY = "bench-hostile-key-0123"


def make_flac(path: Path, rate: int, channels: int, seconds: float, tone: bool) -> Path:
    """Write a FLAC block by block (little memory here too): silence, or a loud 300 Hz tone
    (``tone``, so the clip passes the speech check); both compress well."""
    frames_per_block = rate  # one second = 300 whole periods: blocks join seamlessly
    t = np.arange(frames_per_block) / rate
    wave = (0.3 * 32767 * np.sin(2 * np.pi * 300 * t)) if tone else np.zeros(t.size)
    block = np.repeat(wave.astype(np.int16)[:, None], channels, axis=1)
    frames = int(rate * seconds)
    with sf.SoundFile(path, "w", rate, channels, "PCM_16", format="FLAC") as out:
        for start in range(0, frames, len(block)):
            out.write(block[: min(len(block), frames - start)])
    return path


def _reset_peak(pid: int) -> None:
    """Start a new peak-RSS window (``VmHWM``), where the kernel allows it."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def _peak_mib(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    vals = {ln.split(":")[0]: int(ln.split()[1]) for ln in status.splitlines() if ":" in ln
            and ln.split(":")[0] in ("VmRSS", "VmHWM")}  # fmt: skip
    return {
        "rss_mib": round(vals["VmRSS"] / 1024, 1),
        "peak_rss_mib": round(vals["VmHWM"] / 1024, 1),
    }


def _start(registry: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "speakerrpl", "serve", "--registry", str(registry),
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return wait_for_server(proc, port, tries=900)


def wav_tone(seconds: float) -> bytes:
    """A 16 kHz FLAC of a modulated 300 Hz tone (passes the speech check)."""
    t = np.arange(int(seconds * 16_000)) / 16_000
    wave = 0.3 * np.sin(2 * np.pi * 300 * t) * (1 + 0.3 * np.sin(2 * np.pi * 2 * t))
    buf = io.BytesIO()
    sf.write(buf, wave, 16_000, format="FLAC")
    return buf.getvalue()


def _parallel(url: str, blob: bytes, name: str, n: int, copies: int = 1) -> list[int]:
    codes: list[int] = [0] * n

    def one(i: int) -> None:
        files = [("file", (f"{k}{name}", blob, "audio/flac")) for k in range(copies)]
        with httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=300) as c:
            r = c.post("/identify", files=files)
            codes[i] = r.status_code

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes


def _stalled(port: int, n: int, send: int, announce: int) -> list[str]:
    """``n`` clients announce ``announce`` bytes, send ``send`` and stop; their answers."""
    answers: list[str] = [""] * n
    head = (f"POST /identify HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Type: "
            "multipart/form-data; boundary=zz\r\n"
            f"Content-Length: {announce}\r\n\r\n").encode()  # fmt: skip
    chunk = b"z" * 1_000_000

    def one(i: int) -> None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
                s.sendall(head)
                for _ in range(send // len(chunk)):
                    s.sendall(chunk)
                answers[i] = s.recv(64).split(b"\r\n")[0].decode()
        except OSError as exc:  # the server may close before all is sent (413/503)
            answers[i] = f"closed: {type(exc).__name__}"

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/bench_hostile_uploads.json")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--stalled", type=int, default=30)
    parser.add_argument("--slots", type=int, default=None, help="SPEAKERRPL_INFERENCE_SLOTS")
    parser.add_argument("--arena-max", type=int, default=None, help="MALLOC_ARENA_MAX")
    parser.add_argument("--mmap-threshold", type=int, default=None, help="MALLOC_MMAP_THRESHOLD_")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    t0 = time.perf_counter()
    rate_bomb = make_flac(tmp / "bomb.flac", 655_350, 8, 59.0, tone=False)
    liar = make_flac(tmp / "large.flac", 48_000, 8, 29.0, tone=True)
    made_s = time.perf_counter() - t0
    info = sf.info(str(liar))
    port = 18_500 + os.getpid() % 400
    env = dict(os.environ, SPEAKERRPL_API_KEY=KEY, SPEAKERRPL_TORCH_THREADS="1",
               SPEAKERRPL_BODY_TIMEOUT="10", OMP_NUM_THREADS="1")  # fmt: skip
    if args.slots is not None:
        env["SPEAKERRPL_INFERENCE_SLOTS"] = str(args.slots)
    if args.arena_max is not None:
        env["MALLOC_ARENA_MAX"] = str(args.arena_max)
    if args.mmap_threshold is not None:
        env["MALLOC_MMAP_THRESHOLD_"] = str(args.mmap_threshold)
    proc = _start(tmp / "reg.db", port, env)
    url = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {
        "files": {
            "rate_bomb": {"bytes": rate_bomb.stat().st_size, "rate": 655_350, "channels": 8,
                          "seconds": 59.0,
                          "float32_if_decoded_mb": round(655_350 * 59 * 8 * 4 / 1e6)},
            "largest_accepted": {"bytes": liar.stat().st_size, "rate": 48_000, "channels": 8,
                                 "seconds": info.duration,
                                 "float32_if_decoded_mb": round(info.frames * 8 * 4 / 1e6)},
            "made_in_s": round(made_s, 1),
        },
        "loadavg_1m_start": os.getloadavg()[0],
        "inference_slots": env.get("SPEAKERRPL_INFERENCE_SLOTS", "default (2)"),
        "malloc_arena_max": env.get("MALLOC_ARENA_MAX", "glibc default"),
    }  # fmt: skip
    try:
        clips = sorted((PS / "cards").glob("*.wav"))[:3]
        with httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=600) as c:
            files = [("file", (p.name, p.read_bytes(), "audio/wav")) for p in clips]
            c.post("/speakers/alice/enrollments", files=files).raise_for_status()
            c.post("/identify", files=files[:1]).raise_for_status()
        result["idle"] = _peak_mib(proc.pid)
        t = time.perf_counter()
        _reset_peak(proc.pid)
        codes = _parallel(url, rate_bomb.read_bytes(), "bomb.flac", args.clients)
        result["rate_bombs"] = {"codes": codes, "seconds": round(time.perf_counter() - t, 1),
                                **_peak_mib(proc.pid)}  # fmt: skip
        t = time.perf_counter()
        _reset_peak(proc.pid)
        codes = _parallel(url, liar.read_bytes(), "large.flac", args.clients)
        result["largest_accepted"] = {"codes": codes, "seconds": round(time.perf_counter() - t, 1),
                                   **_peak_mib(proc.pid)}  # fmt: skip
        t = time.perf_counter()
        _reset_peak(proc.pid)
        long = wav_tone(60.0)
        codes = _parallel(url, long, "long.flac", args.clients, copies=3)
        result["longest_speech"] = {"codes": codes, "seconds": round(time.perf_counter() - t, 1),
                                    **_peak_mib(proc.pid)}  # fmt: skip
        t = time.perf_counter()
        _reset_peak(proc.pid)
        answers = _stalled(port, args.stalled, 19_000_000, 19_500_000)
        result["stalled_uploads"] = {
            "answers": {a: answers.count(a) for a in sorted(set(answers))},
            "seconds": round(time.perf_counter() - t, 1), **_peak_mib(proc.pid),
        }  # fmt: skip
        with httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=600) as c:
            result["still_identifies"] = c.post("/identify", files=files[:1]).json()["results"]
    finally:
        proc.terminate()
        proc.wait(30)
    rounds = ("rate_bombs", "largest_accepted", "longest_speech", "stalled_uploads")
    result["peak_rss_mib"] = max(result[r]["peak_rss_mib"] for r in rounds)
    result["goal_mib"] = 1024
    result["loadavg_1m_end"] = os.getloadavg()[0]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
