"""Real-time factor and peak memory of each available frontend on CPU (not a test).

Each frontend is measured in its own subprocess (so peak memory is its own), with one CPU
thread by default: the median wall time of several ``embed([wave])`` calls on one utterance,
divided by the utterance duration, is the real-time factor (RTF; lower is faster, 0.03 means
33x faster than real time). The process CPU time per call is reported too ("RTF cpu"): on a
shared machine it estimates what one dedicated core would take, where wall time also counts
the time other processes held the core. The utterance is real speech (pocketsphinx-testdata's
LibriVox recordings, concatenated and cut to length) when installed, else noise.

Usage:
    python benchmarks/bench_frontends.py [--seconds 10] [--runs 7] [--threads 1]
        [--out results/bench_frontends.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import machine_info as common_machine_info

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
CASES = ("campplus", "campplus-onnx", "resemblyzer")


def _speech(seconds: float) -> Any:
    import numpy as np

    from speakerrpl.audio import load_audio

    files = sorted(LIBRIVOX.glob("*.wav"))
    if files:
        wave = np.concatenate([load_audio(f) for f in files])
        while wave.size < seconds * 16000:
            wave = np.concatenate([wave, wave])
    else:
        wave = np.random.default_rng(0).uniform(-0.2, 0.2, int(seconds * 16000))
    return wave[: int(seconds * 16000)].astype(np.float32)


def _frontend(case: str, threads: int, workdir: Path) -> Any:
    from speakerrpl.frontends import get_frontend

    if case == "campplus":
        return get_frontend("campplus", num_threads=threads)
    if case == "campplus-onnx":
        from speakerrpl.frontends.onnx_model import export_campplus_onnx

        path = export_campplus_onnx(workdir / "campplus.onnx")
        return get_frontend("onnx", model_path=path, num_threads=threads)
    if case == "resemblyzer":
        return get_frontend("resemblyzer", num_threads=threads)
    raise SystemExit(f"unknown case {case}")


def measure_one(case: str, seconds: float, runs: int, threads: int) -> dict[str, Any]:
    """Measure one frontend in this process; returns a JSON-able dict."""
    import torch

    torch.set_num_threads(threads)
    wave = _speech(seconds)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        frontend = _frontend(case, threads, Path(workdir))
        load_s = time.perf_counter() - start
        frontend.embed([wave])  # warm-up
        times, cpu_times = [], []
        for _ in range(runs):
            start, cpu_start = time.perf_counter(), time.process_time()
            frontend.embed([wave])
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    median = statistics.median(times)
    cpu_median = statistics.median(cpu_times)
    return {
        "case": case,
        "dim": frontend.dim,
        "seconds_audio": seconds,
        "runs": runs,
        "threads": threads,
        "load_s": round(load_s, 3),
        "median_s": round(median, 4),
        "min_s": round(min(times), 4),
        "rtf_median": round(median / seconds, 4),
        "rtf_min": round(min(times) / seconds, 4),
        "cpu_s_median": round(cpu_median, 4),
        "rtf_cpu_median": round(cpu_median / seconds, 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_model_mb": round(base_rss, 1),
    }


def machine_info() -> dict[str, Any]:
    """The shared machine context of every benchmark, plus the onnxruntime version."""
    import onnxruntime

    return {**common_machine_info(), "onnxruntime": onnxruntime.__version__}


def available_cases() -> list[str]:
    """Cases whose frontend can be created here."""
    from speakerrpl.frontends import list_frontends

    ok = {info.name for info in list_frontends() if info.available}
    return [c for c in CASES if c.split("-")[0] in ok and ("onnx" not in c or "onnx" in ok)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cases", nargs="*", default=None, help=f"subset of {CASES}")
    parser.add_argument("--out", default="results/bench_frontends.json")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one, args.seconds, args.runs, args.threads)))
        return 0
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    info = machine_info()
    results = []
    for case in args.cases or available_cases():
        cmd = [
            sys.executable,
            __file__,
            "--one",
            case,
            "--seconds",
            str(args.seconds),
            "--runs",
            str(args.runs),
            "--threads",
            str(args.threads),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            print(f"{case}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    info["loadavg_1m_end"] = os.getloadavg()[0]
    print(
        f"{'frontend':<15}{'dim':>5}{'RTF med':>9}{'RTF min':>9}{'RTF cpu':>9}"
        f"{'median s':>10}{'load s':>8}{'peak MB':>9}"
    )
    for r in results:
        print(
            f"{r['case']:<15}{r['dim']:>5}{r['rtf_median']:>9.4f}{r['rtf_min']:>9.4f}"
            f"{r['rtf_cpu_median']:>9.4f}{r['median_s']:>10.3f}{r['load_s']:>8.2f}"
            f"{r['peak_rss_mb']:>9.0f}"
        )
    print(
        f"{args.seconds:g} s utterance, {args.runs} runs, {args.threads} thread(s); "
        f"{info['cpu']}; load avg {info['loadavg_1m']:.1f} -> {info['loadavg_1m_end']:.1f}"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": info, "results": results}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
