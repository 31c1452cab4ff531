"""Shared helpers of the benchmark scripts (not a test; never collected by pytest).

Machine info, median-of-runs timing, JSON writing, peak memory of a fresh subprocess, and the
data the training benchmarks use (the demo embeddings when present, else Gaussian voices).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo"


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """CPU model, cores, versions, torch threads and load: the context of every timing.

    Example:
        >>> sorted(machine_info())[:3]
        ['cores', 'cpu', 'cuda_device']
    """
    import torch

    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            ln.split(":", 1)[1].strip()
            for ln in cpuinfo.read_text().splitlines()
            if ln.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    cuda = torch.cuda.get_device_name(0) if device.startswith("cuda") else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda_device": cuda,
        "loadavg_1m": os.getloadavg()[0],
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }


def sync(device: str) -> None:
    """Wait for queued CUDA work (no-op on CPU)."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def time_runs(
    fn: Callable[[], object], runs: int = 3, warmup: int = 1, device: str = "cpu"
) -> dict[str, float]:
    """Median, min and max wall seconds of ``runs`` calls of ``fn`` after ``warmup`` calls.

    ``cpu_median_s`` is the median process CPU time (all threads) per call: on a shared machine
    it estimates what a dedicated core would take, where wall time also counts waiting.

    Example:
        >>> time_runs(lambda: None, runs=3, warmup=0)["runs"]
        3
    """
    for _ in range(warmup):
        fn()
        sync(device)
    times, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {
        "median_s": statistics.median(times),
        "cpu_median_s": statistics.median(cpu),
        "min_s": min(times),
        "max_s": max(times),
        "runs": len(times),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB; ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as indented JSON, creating the folder; returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    return out


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def run_child(script: Path, args: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run ``script --child ...`` in a fresh interpreter; it prints one JSON line last.

    A fresh process per measurement makes ``ru_maxrss`` that measurement's own peak memory.
    """
    cmd = [sys.executable, str(script), *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-500:]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """Print ``rows`` as a plain aligned table of ``columns``."""
    cells = [[_fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def base_parser(doc: str, out: str) -> argparse.ArgumentParser:
    """Parser with the flags every benchmark takes: --device, --quick, --runs, --out, --threads."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--quick", action="store_true", help="short run (smaller grid)")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per figure")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (0: torch's default, all cores)"
    )
    parser.add_argument("--out", default=out, help="JSON output path")
    return parser


def set_threads(threads: int | None) -> None:
    """Apply ``--threads`` to torch (None leaves torch's default)."""
    import torch

    if threads:
        torch.set_num_threads(threads)


@dataclass(frozen=True)
class Voices:
    """Embeddings of a set of voices: rows ``x`` (N, D) and their voice names ``y`` (N,)."""

    x: np.ndarray
    y: np.ndarray


def gaussian_voices(
    n_voices: int, per_voice: tuple[int, int], dim: int, seed: int, prefix: str
) -> Voices:
    """Synthetic voices: a random mean per voice, 3-6 (``per_voice``) noisy rows each.

    Example:
        >>> gaussian_voices(2, (3, 3), 4, 0, "s").x.shape
        (6, 4)
    """
    rng = np.random.default_rng(seed)
    counts = rng.integers(per_voice[0], per_voice[1] + 1, size=n_voices)
    means = rng.normal(size=(n_voices, dim))
    x = np.repeat(means, counts, axis=0) + 0.6 * rng.normal(size=(int(counts.sum()), dim))
    names = np.repeat([f"{prefix}{i:05d}" for i in range(n_voices)], counts)
    return Voices(x.astype(np.float32), names)


def demo_data() -> tuple[Voices, Voices] | None:
    """The demo's real embeddings ``(eval, pool)`` when ``data/demo`` holds them, else None."""
    ev, pool = DEMO / "eval.npz", DEMO / "pool.npz"
    if not (ev.is_file() and pool.is_file()):
        return None
    loaded = [np.load(p, allow_pickle=False) for p in (ev, pool)]
    return Voices(loaded[0]["embeddings"], loaded[0]["speakers"]), Voices(
        loaded[1]["embeddings"], loaded[1]["speakers"]
    )


def split_targets(
    voices: Voices, n_targets: int, n_enroll: int, seed: int
) -> tuple[Voices, Voices, Voices]:
    """Pick ``n_targets`` speakers: ``n_enroll`` rows each to enroll, the rest to test; the other
    speakers are the unknowns. Returns ``(enroll, known_test, unknown_test)``.
    """
    rng = np.random.default_rng(seed)
    names = np.unique(voices.y)
    counts = {n: int((voices.y == n).sum()) for n in names}
    eligible = [n for n in names if counts[n] > n_enroll]
    chosen = set(rng.permutation(eligible)[:n_targets].tolist())
    enroll, known = [], []
    for name in sorted(chosen):
        idx = rng.permutation(np.flatnonzero(voices.y == name))
        enroll.extend(idx[:n_enroll].tolist())
        known.extend(idx[n_enroll:].tolist())
    unknown = np.flatnonzero(~np.isin(voices.y, list(chosen)))

    def take(idx: Sequence[int] | np.ndarray) -> Voices:
        arr = np.asarray(idx, dtype=np.int64)
        return Voices(voices.x[arr], voices.y[arr])

    return take(enroll), take(known), take(unknown)


def wait_for_server(
    proc: subprocess.Popen[bytes], port: int, tries: int
) -> subprocess.Popen[bytes]:
    """Return ``proc`` once ``GET /healthz`` on 127.0.0.1:``port`` answers 200.

    Polls every 0.2 s at most ``tries`` times; a server that exits or never answers is killed
    and reported as a ``RuntimeError`` (with its stderr when it was piped).
    """
    import httpx

    for _ in range(tries):
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "server exited")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")
