"""Corpus extraction speed, quiet and with one competing CPU-bound process (not a test).

Embeds the same demo clips (``data/demo/corpus/eval``, every ``stride``-th utterance) with each
configuration into an empty cache, once with the machine as it is and once while a
``while True: pass`` process started here competes for a core, and prints x real time
(seconds of audio per wall second, decoding and features included). The machine's 1-minute
load average is recorded before every run: on a shared machine, compare configurations
within one run, not with figures taken at another time.

Usage:
    python benchmarks/bench_extraction.py [--n-clips 300] [--configs torch-2t torch-1t ...]
        [--out results/bench_extraction.json]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _common import DEMO, machine_info, write_json

#: name -> (backend, torch/onnxruntime threads per process, worker processes)
CONFIGS: dict[str, tuple[str, int | None, int]] = {
    "torch-default-threads": ("torch", None, 1),  # before issue 16
    "torch-1thread": ("torch", 1, 1),
    "onnx-1thread": ("onnx", 1, 1),
    "torch-2procs-1thread": ("torch", 1, 2),
    "onnx-2procs-1thread": ("onnx", 1, 2),
    "default": ("default", None, 0),  # extract_embeddings(utts) with no arguments
}


def clips(data_dir: Path, n_clips: int) -> tuple[list[Any], float]:
    """``n_clips`` utterances spread over the data dir, and their total seconds."""
    import soundfile as sf

    from speakerrpl.data.kaldi import read_data_dir

    utts = read_data_dir(data_dir)
    stride = max(1, len(utts) // n_clips)
    chosen = utts[::stride][:n_clips]
    return chosen, sum(sf.info(str(u.path)).duration for u in chosen)


@contextmanager
def competitor(enabled: bool) -> Any:
    """Run one CPU-bound busy loop in another process while the block runs."""
    if not enabled:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield
    finally:
        proc.kill()
        proc.wait()


def frontend_for(backend: str, threads: int | None) -> Any:
    """The frontend of one configuration."""
    from speakerrpl.frontends import get_frontend

    if backend == "default":
        return get_frontend("campplus")
    kwargs: dict[str, Any] = {"backend": "onnxruntime" if backend == "onnx" else "torch"}
    if threads is not None:
        kwargs["num_threads"] = threads
    return get_frontend("campplus", **kwargs)


def run_one(name: str, utts: list[Any], seconds: float, busy: bool) -> dict:
    """Embed ``utts`` with configuration ``name`` into a fresh cache; time it."""
    from speakerrpl.embeddings import extract_embeddings

    backend, threads, workers = CONFIGS[name]
    frontend = frontend_for(backend, threads)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as cache, competitor(busy):
        start = time.perf_counter()
        kwargs = {} if workers == 0 else {"workers": workers}
        emb, failures = extract_embeddings(utts, frontend, cache_dir=cache, **kwargs)
        wall = time.perf_counter() - start
    row = {
        "config": name,
        "competing_process": busy,
        "wall_s": round(wall, 2),
        "x_real_time": round(seconds / wall, 1),
        "clips_per_s": round(len(utts) / wall, 1),
        "embedded": len(emb),
        "failed": len(failures),
        "loadavg_1m_before": load,
    }
    print(
        f"{name:24s} {'busy' if busy else 'as is':5s} {wall:7.1f} s {seconds / wall:7.1f}x "
        f"real time  (load {load:.1f})",
        flush=True,
    )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEMO / "corpus" / "eval")
    parser.add_argument("--n-clips", type=int, default=300)
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--quick", action="store_true", help="24 clips, two configurations")
    parser.add_argument("--out", type=Path, default=Path("results/bench_extraction.json"))
    args = parser.parse_args()
    if not (args.data / "wav.scp").is_file():
        print(f"no demo corpus at {args.data} (run `make demo` first); skipped")
        return 0
    if args.quick:
        args.n_clips, args.configs = 24, ["torch-1thread", "default"]
    utts, seconds = clips(args.data, args.n_clips)
    print(f"{len(utts)} clips, {seconds:.0f} s of audio, load {os.getloadavg()[0]:.1f}")
    rows: list[dict[str, Any]] = []
    for busy in (False, True):
        for name in args.configs:
            rows.append(run_one(name, utts, seconds, busy))
            write_json(  # after every row: a long run that is stopped keeps what it measured
                args.out,
                {
                    "machine": machine_info(),
                    "loadavg_now": os.getloadavg(),
                    "n_clips": len(utts),
                    "audio_seconds": round(seconds, 1),
                    "note": "shared machine: compare rows of one run; see loadavg_1m_before",
                    "rows": rows,
                },
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
