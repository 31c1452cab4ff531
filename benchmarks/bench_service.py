"""Service benchmark: refit time vs enrolled speakers, and identify load on loopback.

Not a test. Two parts, each bounded in time:

1. **refit**: time of ``SpeakerEngine.enroll`` of the N-th speaker (a full refit of the
   SpeakerRPL v2 ensemble plus the registry commit) for N in ``--refit-sizes``, on synthetic
   192-d embeddings (4 clips per speaker) and a synthetic 32-voice pool. ``--refit-params``
   overrides identifier settings (default: none, i.e. the real method).
2. **load**: ``speakerrpl serve`` in a subprocess with 3 enrolled speakers (two real people from
   pocketsphinx-testdata, one espeak-ng voice); for each count in ``--clients`` (default 1, 4
   and 16), that many threads POST 3 s clips to ``/identify`` for ``--warmup`` then
   ``--duration`` seconds; requests/s, p50/p99 latency, errors, and the server's RSS after the
   round and its peak during it (``VmHWM``, reset before each round).

3. **forward batches** (``--forward-batches``, off by default): milliseconds per clip of the
   served frontend's ``embed`` (features and network) on equal-length 3 s clips at each batch
   size, one thread: whether batching concurrent requests can pay on this machine.

Writes JSON (``--out``) and prints a table::

    .venv/bin/python benchmarks/bench_service.py --refit-sizes --clients 1 4 16 --duration 20
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
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

from speakerrpl.service.engine import SpeakerEngine
from speakerrpl.service.registry import Enrollment
from speakerrpl.service.settings import ServiceSettings

PS = Path("/usr/share/pocketsphinx/test/data")
DIM, CLIPS = 192, 4


class _Vectors:
    name = "synthetic"

    def embed(self, waves: list[np.ndarray]) -> np.ndarray:
        return np.stack(waves).astype(np.float32)


def _speakers(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n, DIM))
    return {f"s{i:03d}": c + 0.6 * rng.normal(size=(CLIPS, DIM)) for i, c in enumerate(centres)}


def bench_refit(size: int, params: dict[str, Any]) -> dict[str, Any]:
    """Seed N-1 speakers, then time the enrollment of the N-th (one full refit + commit)."""
    import torch

    torch.set_num_threads(1)
    pool_spk = _speakers(32, seed=1)
    pool = (np.concatenate(list(pool_spk.values())), np.repeat(list(pool_spk), CLIPS))
    data = _speakers(size, seed=2)
    names = sorted(data)
    settings = ServiceSettings(identifier_params=params)
    with tempfile.TemporaryDirectory() as tmp:
        eng = SpeakerEngine(Path(tmp) / "r.db", settings, frontend=_Vectors(), pool=pool)
        seed = {n: [Enrollment(e) for e in data[n]] for n in names[:-1]}
        eng.registry.commit(0, "synthetic", add=seed, model_kind="empty", model_classes=names[:-1])
        start, cpu = time.perf_counter(), time.process_time()
        out = eng.enroll(names[-1], list(data[names[-1]]))
        total, cpu = time.perf_counter() - start, time.process_time() - cpu
        model = eng.registry.current_model()
        model_bytes = sum(len(b) for b in model.files.values()) if model else 0
    return {
        "speakers": size,
        "enroll_seconds": round(total, 3),
        "enroll_cpu_seconds": round(cpu, 3),
        "fit_seconds": round(float(out["refit_seconds"]), 3),
        "model_bytes": model_bytes,
        "params": params,
    }


def _clip(path: Path, seconds: float = 3.0) -> bytes:
    from speakerrpl.audio import load_audio

    wave = load_audio(path)[: int(seconds * 16000)]
    buf = io.BytesIO()
    sf.write(buf, wave, 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _espeak(text: str, out: Path) -> Path:
    subprocess.run(["espeak-ng", "-v", "en+Andy", "-w", str(out), text], check=True)
    return out


def _start_server(registry: Path, params: str, port: int) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ, SPEAKERRPL_API_KEY="bench-key-123456", SPEAKERRPL_IDENTIFIER_PARAMS=params
    )
    cmd = [
        sys.executable,
        "-m",
        "speakerrpl",
        "serve",
        "--registry",
        str(registry),
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return wait_for_server(proc, port, tries=600)


def _rss_mib(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    vals = {
        ln.split(":")[0]: int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("Vm")
    }
    return {
        "rss_mib": round(vals["VmRSS"] / 1024, 1),
        "peak_rss_mib": round(vals["VmHWM"] / 1024, 1),
    }


def _reset_peak(pid: int) -> None:
    """Start a new peak-RSS window (``VmHWM``), where the kernel allows it."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def _worker(url: str, clips: list[bytes], stop: float, out: list[float], errors: list[str]) -> None:
    headers = {"X-API-Key": "bench-key-123456"}  # identification needs the key
    with httpx.Client(base_url=url, timeout=60, headers=headers) as client:
        i = 0
        while time.monotonic() < stop:
            start = time.perf_counter()
            r = client.post(
                "/identify", files=[("file", ("c.wav", clips[i % len(clips)], "audio/wav"))]
            )
            if r.status_code == 200:
                out.append(time.perf_counter() - start)
            else:
                errors.append(f"{r.status_code}")
            i += 1


def _round(url: str, clips: list[bytes], clients: int, seconds: float) -> dict[str, Any]:
    lat: list[float] = []
    errors: list[str] = []
    stop = time.monotonic() + seconds
    threads = [
        threading.Thread(target=_worker, args=(url, clips, stop, lat, errors))
        for _ in range(clients)
    ]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ms = np.asarray(lat or [float("nan")]) * 1000
    return {
        "clients": clients,
        "duration_s": round(wall, 2),
        "requests": len(lat),
        "errors": len(errors),
        "error_codes": sorted(set(errors)),
        "requests_per_s": round(len(lat) / wall, 2),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
    }


def bench_load(clients: list[int], duration: float, warmup: float, params: str) -> dict[str, Any]:
    """Enroll 3 speakers over HTTP, then hammer /identify with each count of client threads.

    One server for all rounds; before each round its peak RSS is reset, then a warm-up, then
    the measured ``duration``.
    """
    from speakerrpl.service.registry import SpeakerRegistry

    tmp = Path(tempfile.mkdtemp(prefix="bench-service-"))
    port = 18000 + os.getpid() % 1000
    proc = _start_server(tmp / "reg.db", params, port)
    url, key = f"http://127.0.0.1:{port}", {"X-API-Key": "bench-key-123456"}
    texts = [
        "The quick brown fox jumps over the lazy dog.",
        "Please call me back later today.",
        "Turn on the kitchen lights now.",
        "A number of people gathered in the square.",
    ]
    enroll = {
        "alice": sorted((PS / "cards").glob("*.wav"))[:4],
        "bob": sorted((PS / "librivox").glob("*.wav"))[::2],
        "carol": [_espeak(t, tmp / f"carol{i}.wav") for i, t in enumerate(texts)],
    }
    rounds: list[dict[str, Any]] = []
    try:
        for name, paths in enroll.items():
            files = [("file", (p.name, p.read_bytes(), "audio/wav")) for p in paths]
            r = httpx.post(
                f"{url}/speakers/{name}/enrollments", files=files, headers=key, timeout=3600
            )
            r.raise_for_status()
        clips = [
            _clip(sorted((PS / "cards").glob("*.wav"))[4]),
            _clip(PS / "librivox" / "sense_and_sensibility_01_austen_64kb-0880.wav"),
        ]
        idle = _rss_mib(proc.pid)
        for count in clients:
            _reset_peak(proc.pid)
            _round(url, clips, count, warmup)
            row = _round(url, clips, count, duration)
            after = _rss_mib(proc.pid)
            row["server_rss_after_mib"] = after["rss_mib"]
            row["server_peak_rss_mib"] = after["peak_rss_mib"]
            rounds.append(row)
            print(_row_text(row), flush=True)
        registry_ok = SpeakerRegistry(tmp / "reg.db").verify() == []
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "clip_seconds": 3.0,
        "warmup_s": warmup,
        "server_rss_idle_mib": idle["rss_mib"],
        "rounds": rounds,
        "speakers": len(enroll),
        "registry_ok": registry_ok,
        "params": params,
    }


def _row_text(row: dict[str, Any]) -> str:
    return (
        f"load   clients={row['clients']:3d}  req/s={row['requests_per_s']:6.2f}  "
        f"p50={row['p50_ms']:7.1f} ms  p99={row['p99_ms']:7.1f} ms  errors={row['errors']}  "
        f"rss={row['server_rss_after_mib']} MiB (peak {row['server_peak_rss_mib']})"
    )


def bench_forward(sizes: list[int], seconds: float = 1.5) -> list[dict[str, Any]]:
    """Per-clip cost of one ``embed`` call of the default frontend at each batch size."""
    import torch

    from speakerrpl.frontends import get_frontend

    torch.set_num_threads(1)
    frontend = get_frontend("campplus")
    wave = _decoded_clip()
    rows = []
    for size in sizes:
        batch = [wave] * size
        frontend.embed(batch)  # warm-up
        clips, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            frontend.embed(batch)
            clips += size
        per_clip = (time.perf_counter() - start) / clips * 1000
        rows.append({"batch": size, "ms_per_clip": round(per_clip, 2), "clips": clips})
        print(f"forward batch={size:3d}  {per_clip:6.2f} ms per 3 s clip", flush=True)
    return rows


def _decoded_clip() -> np.ndarray:
    from speakerrpl.audio import load_audio_bytes

    return load_audio_bytes(_clip(sorted((PS / "cards").glob("*.wav"))[4]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/bench_service.json")
    p.add_argument("--refit-sizes", type=int, nargs="*", default=[10, 100])
    p.add_argument("--refit-params", default="{}", help="identifier settings JSON for part 1")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds of load")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument(
        "--serve-params",
        default='{"epochs": 5}',
        help="identifier settings of the served model (inference cost depends on "
        "n_models, not epochs)",
    )
    p.add_argument("--skip-load", action="store_true")
    p.add_argument("--forward-batches", type=int, nargs="*", default=[])
    args = p.parse_args(argv)
    result: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_start": os.getloadavg(),
        },
        "refit": [],
    }
    for size in args.refit_sizes:
        result["refit"].append(bench_refit(size, json.loads(args.refit_params)))
        r = result["refit"][-1]
        print(
            f"refit  speakers={size:4d}  enroll={r['enroll_seconds']:8.2f} s "
            f"(cpu {r['enroll_cpu_seconds']:.2f} s, model {r['model_bytes'] / 1e6:.1f} MB)",
            flush=True,
        )
    if args.forward_batches:
        result["forward"] = bench_forward(args.forward_batches)
    if not args.skip_load:
        result["load"] = bench_load(args.clients, args.duration, args.warmup, args.serve_params)
    result["machine"]["load_avg_end"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
