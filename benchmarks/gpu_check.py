"""The GPU figures of issue 16 in one short run (what ``benchmarks/gpu_check.sh`` runs).

Prints and writes (``--out``, JSON):

1. ensemble fit time of ``rpl_v2`` for M = 1 and M = 30 at K = 40 enrolled speakers (the
   default recipe, pool included; Gaussian voices, or the demo embeddings when present);
2. batched CAM++ extraction of ``--n-clips`` 3 s WAV files, end to end: decoding (threads),
   fbank and network on the device (``embed_equal_length``), in clips/s and x real time;
3. identify latency: one 3 s file -> decode, embed, ``predict`` with the M = 30 ensemble.

``--dry-run`` shrinks every size (K = 4, M = 1 and 3, 1 epoch, 8 clips) so the whole script
runs on a CPU in seconds; ``make bench`` runs it that way so the GPU path cannot rot.

Usage:
    python benchmarks/gpu_check.py [--device cuda] [--dry-run] [--out results/gpu_check.json]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from _common import demo_data, gaussian_voices, machine_info, split_targets, sync, write_json

SECONDS = 3.0


def fit_times(device: str, k: int, models: list[int], epochs: int | None) -> dict[str, Any]:
    """Wall seconds of one ``rpl_v2`` fit per ensemble size, and the last identifier."""
    from speakerrpl.identifier import OpenSetSpeakerIdentifier

    data = demo_data()
    if data is not None and len(np.unique(data[0].y)) > k:
        enroll, _, _ = split_targets(data[0], k, 5, 0)
        pool = data[1]
    else:
        enroll = gaussian_voices(k, (5, 5), 192, 0, "s")
        pool = gaussian_voices(3 * k + 40, (5, 5), 192, 1, "p")
    extra = {} if epochs is None else {"epochs": epochs, "min_steps": 0}
    out: dict[str, Any] = {"k": k, "enroll_rows": len(enroll.y), "fit_s": {}}
    warm = {"method": "rpl_v2", "n_models": 1, "selection": "none", "device": device}
    OpenSetSpeakerIdentifier(**warm, epochs=1, min_steps=0).fit(  # imports, kernels, allocator
        enroll.x, enroll.y, pool=(pool.x, pool.y)
    )
    est = None
    for m in models:
        params = {"method": "rpl_v2", "n_models": m, "device": device, "random_state": 0}
        if m < 3:
            params["selection"] = "none"
        est = OpenSetSpeakerIdentifier(**params, **extra)
        sync(device)
        start = time.perf_counter()
        est.fit(enroll.x, enroll.y, pool=(pool.x, pool.y))
        sync(device)
        out["fit_s"][m] = round(time.perf_counter() - start, 3)
        print(f"fit rpl_v2 K={k} M={m}: {out['fit_s'][m]:.2f} s", flush=True)
    out["ratio_max_over_1"] = round(out["fit_s"][models[-1]] / out["fit_s"][models[0]], 2)
    out["identifier"] = est
    return out


def write_clips(folder: Path, n: int) -> list[Path]:
    """``n`` distinct 3 s speech-like WAV files (harmonics with a moving pitch, noise)."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(int(SECONDS * 16000)) / 16000
    paths = []
    for i in range(n):
        pitch = rng.uniform(90, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.3, 1) * t))
        phase = 2 * np.pi * np.cumsum(pitch) / 16000
        wave = sum(np.sin(h * phase) / h for h in range(1, 10)) * 0.05
        wave = wave + 0.003 * rng.standard_normal(t.size)
        paths.append(folder / f"clip{i:05d}.wav")
        sf.write(paths[-1], wave.astype(np.float32), 16000)
    return paths


def extraction(frontend: Any, paths: list[Path], batch: int, device: str) -> dict[str, Any]:
    """End-to-end batched extraction: decode in threads, fbank + network on the device."""
    from speakerrpl.audio import load_audio

    def run() -> int:
        done = 0
        with ThreadPoolExecutor(8) as pool:
            for start in range(0, len(paths), batch):
                waves = list(pool.map(load_audio, paths[start : start + batch]))
                n = min(w.size for w in waves)
                done += len(frontend.embed_equal_length(np.stack([w[:n] for w in waves])))
        sync(device)
        return done

    run()  # warm-up (CUDA context, kernels, page cache)
    start = time.perf_counter()
    count = run()
    wall = time.perf_counter() - start
    row = {
        "clips": count,
        "batch": batch,
        "wall_s": round(wall, 3),
        "clips_per_s": round(count / wall, 1),
        "x_real_time": round(count * SECONDS / wall, 1),
    }
    print(f"extraction: {row['clips_per_s']} clips/s, {row['x_real_time']}x real time", flush=True)
    return row


def identify_latency(frontend: Any, est: Any, path: Path, device: str, runs: int) -> dict:
    """Median seconds of decode + embed + predict for one 3 s file (after one warm-up)."""
    from speakerrpl.audio import load_audio

    times = []
    for _ in range(runs + 1):
        sync(device)
        start = time.perf_counter()
        est.predict(frontend.embed_equal_length(load_audio(path)[None]))
        sync(device)
        times.append(time.perf_counter() - start)
    median = statistics.median(times[1:])
    m = est.settings.n_models
    print(f"identify latency (3 s clip, M={m} ensemble): {1000 * median:.1f} ms", flush=True)
    return {"median_ms": round(1000 * median, 2), "runs": runs, "n_models": m}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes (CPU, seconds)")
    parser.add_argument("--n-clips", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--out", default="results/gpu_check.json")
    args = parser.parse_args()
    import torch

    from speakerrpl.frontends import get_frontend

    if args.dry_run:
        torch.set_num_threads(1)
    k, models, epochs = (4, [1, 3], 1) if args.dry_run else (40, [1, 30], None)
    n_clips, batch = (8, 4) if args.dry_run else (args.n_clips, args.batch)
    print(f"device {args.device}{' (dry run)' if args.dry_run else ''}", flush=True)
    fits = fit_times(args.device, k, models, epochs)
    est = fits.pop("identifier")
    frontend = get_frontend("campplus", device=args.device, backend="torch")
    with tempfile.TemporaryDirectory() as work:
        paths = write_clips(Path(work), n_clips)
        extract = extraction(frontend, paths, batch, args.device)
        latency = identify_latency(frontend, est, paths[0], args.device, 3 if args.dry_run else 20)
    write_json(
        args.out,
        {
            "machine": machine_info(args.device),
            "dry_run": args.dry_run,
            "fit": fits,
            "extraction": extract,
            "identify": latency,
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
