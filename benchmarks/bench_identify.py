"""Identification speed: fused scoring throughput, end-to-end clip latency, batched extraction.

Part ``scoring``: a 30-member SpeakerRPL v2 identifier enrolled on K = 20 speakers (demo CAM++
embeddings when present; the number of training epochs does not change scoring cost, so it
trains only ``--fit-epochs``) maps embeddings to decisions (``predict``: member logits,
fusion of the kept members, threshold) for batches of 1 and 1000.

Part ``e2e``: one 3 s clip as a WAV file -> decision (decode + resample, fbank, CAM++, fused
scoring), with the torch CAM++ frontend and its onnxruntime export, one thread.

Part ``throughput``: batched extraction of ``--n-clips`` 3 s files: decoding in ``--workers``
parallel processes, the fbank either there too (``--features workers``, kaldi-native-fbank)
or batched next to the network (``--features device``, torch), the CAM++ network in batches
of ``--batch`` on ``--device`` (bf16 autocast with ``--bf16`` on CUDA). Reported as audio
seconds per wall second.

Usage:
    python benchmarks/bench_identify.py [--device cpu|cuda] [--quick]
        [--parts scoring e2e throughput]
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    base_parser,
    demo_data,
    gaussian_voices,
    machine_info,
    print_table,
    set_threads,
    split_targets,
    sync,
    time_runs,
    write_json,
)

from speakerrpl.identifier import OpenSetSpeakerIdentifier

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
CLIP_S = 3.0


def fitted_identifier(fit_epochs: int, device: str) -> OpenSetSpeakerIdentifier:
    """A 30-member v2 identifier on 20 targets (few epochs: scoring cost is the same)."""
    demo = demo_data()
    if demo is None:
        voices, pool = (
            gaussian_voices(40, (6, 8), 192, 0, "s"),
            gaussian_voices(80, (6, 6), 192, 1, "v"),
        )
    else:
        voices, pool = demo
    enroll, _, _ = split_targets(voices, 20, 4, 0)
    clf = OpenSetSpeakerIdentifier(epochs=fit_epochs, device=device)
    return clf.fit(enroll.x, enroll.y.tolist(), pool=(pool.x, pool.y))


def scoring(args: Any, clf: OpenSetSpeakerIdentifier) -> list[dict[str, Any]]:
    """Median ``predict`` time for batches of 1 and 1000 embeddings."""
    rng = np.random.default_rng(0)
    rows = []
    for batch, runs in ((1, 20 if args.quick else 200), (1000, 3 if args.quick else 20)):
        x = rng.normal(size=(batch, clf.dim_)).astype(np.float32)
        t = time_runs(partial(clf.predict, x), runs, warmup=3)
        rows.append(
            {
                "batch": batch,
                "members_kept": int(clf.members_.size),
                "median_ms": 1000 * t["median_s"],
                "ms_per_utt": 1000 * t["median_s"] / batch,
                "cpu_ms_per_utt": 1000 * t["cpu_median_s"] / batch,
                "utt_per_s": batch / t["median_s"],
            }
        )
    print_table(rows, list(rows[0]))
    return rows


def speech_clip(seconds: float) -> np.ndarray:
    """Real speech (pocketsphinx's LibriVox recordings) when installed, else noise."""
    from speakerrpl.audio import load_audio

    files = sorted(LIBRIVOX.glob("*.wav"))
    if files:
        wave = np.concatenate([load_audio(f) for f in files])
    else:
        wave = np.random.default_rng(0).uniform(-0.2, 0.2, int(seconds * 16000))
    return wave[: int(seconds * 16000)].astype(np.float32)


def _frontends(workdir: Path, threads: int) -> dict[str, Any]:
    from speakerrpl.frontends import get_frontend
    from speakerrpl.frontends.onnx_model import export_campplus_onnx

    out = {"campplus (torch)": get_frontend("campplus", num_threads=threads)}
    path = export_campplus_onnx(workdir / "campplus.onnx")
    out["campplus (onnxruntime)"] = get_frontend("onnx", model_path=path, num_threads=threads)
    return out


def e2e(args: Any, clf: OpenSetSpeakerIdentifier, workdir: Path) -> list[dict[str, Any]]:
    """Latency of one 3 s WAV file -> decision, split into decode / embed / score."""
    import soundfile as sf

    from speakerrpl.audio import load_audio

    path = workdir / "clip.wav"
    sf.write(path, speech_clip(CLIP_S), 16000)
    runs = 5 if args.quick else 20
    rows = []
    for name, frontend in _frontends(workdir, args.threads or 1).items():
        wave = load_audio(path)
        emb = frontend.embed([wave])
        decode = time_runs(lambda: load_audio(path), runs, warmup=2)
        embed = time_runs(partial(frontend.embed, [wave]), runs, warmup=2)
        score = time_runs(partial(clf.predict, emb), runs, warmup=2)
        total = time_runs(partial(_decide, clf, frontend, path), runs, warmup=2)
        rows.append(
            {
                "frontend": name,
                "decode_ms": 1000 * decode["median_s"],
                "embed_ms": 1000 * embed["median_s"],
                "score_ms": 1000 * score["median_s"],
                "total_ms": 1000 * total["median_s"],
                "total_min_ms": 1000 * total["min_s"],
                "total_cpu_ms": 1000 * total["cpu_median_s"],
            }
        )
    print_table(rows, list(rows[0]))
    return rows


def _decide(clf: OpenSetSpeakerIdentifier, frontend: Any, path: Path) -> np.ndarray:
    """Audio file -> decision, the end-to-end path."""
    from speakerrpl.audio import load_audio

    return clf.predict(frontend.embed([load_audio(path)]))


def _features(path: str) -> np.ndarray:
    """Worker: decode one file and compute its CAM++ fbank."""
    from speakerrpl.audio import load_audio
    from speakerrpl.frontends.fbank import compute_fbank

    return compute_fbank(load_audio(path))


def _decode(path: str) -> np.ndarray:
    """Worker: decode one file (features are computed on the device)."""
    from speakerrpl.audio import load_audio

    return load_audio(path)


def throughput(args: Any, workdir: Path) -> list[dict[str, Any]]:
    """Batched extraction: parallel decoding, features in the workers or on the device."""
    import soundfile as sf
    import torch

    from speakerrpl.frontends import get_frontend

    clip = speech_clip(CLIP_S)
    paths = []
    for i in range(args.n_clips):
        paths.append(str(workdir / f"t{i}.flac"))
        sf.write(paths[-1], np.roll(clip, 997 * i), 16000)
    frontend: Any = get_frontend("campplus", device=args.device, batch_size=args.batch)
    on_device = args.features == "device"
    work = _decode if on_device else _features
    network = frontend.embed_equal_length if on_device else frontend.embed_features
    dtype = torch.bfloat16 if args.bf16 else None
    with ProcessPoolExecutor(args.workers) as pool:
        warm = list(pool.map(work, paths[: max(2, args.workers)]))  # start the workers
        network(np.stack(warm[:2]))
        sync(args.device)
        start = time.perf_counter()
        inputs = np.stack(list(pool.map(work, paths, chunksize=8)))
        workers_s = time.perf_counter() - start
        with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
            for s in range(0, len(inputs), args.batch):
                network(inputs[s : s + args.batch])
        sync(args.device)
        total_s = time.perf_counter() - start
    audio_s = CLIP_S * args.n_clips
    row = {
        "device": args.device,
        "features": args.features,
        "clips": args.n_clips,
        "batch": args.batch,
        "workers": args.workers,
        "bf16": bool(args.bf16),
        "workers_s": workers_s,
        "device_s": total_s - workers_s,
        "x_realtime": audio_s / total_s,
        "device_x_realtime": audio_s / (total_s - workers_s),
    }
    print_table([row], list(row))
    return [row]


def main() -> int:
    parser = base_parser(__doc__ or "", "results/bench_identify.json")
    parser.add_argument("--parts", nargs="*", default=["scoring", "e2e", "throughput"])
    parser.add_argument("--fit-epochs", type=int, default=3)
    parser.add_argument("--n-clips", type=int, default=None)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    parser.add_argument(
        "--features",
        choices=("workers", "device"),
        default="workers",
        help="throughput: fbank in the decoding workers (numpy) or batched on --device (torch)",
    )
    args = parser.parse_args()
    set_threads(args.threads)
    args.n_clips = args.n_clips or (32 if args.quick else 256)
    result: dict[str, Any] = {"machine": machine_info(args.device), "args": vars(args)}
    with tempfile.TemporaryDirectory() as tmp:
        if {"scoring", "e2e"} & set(args.parts):
            clf = fitted_identifier(args.fit_epochs, args.device)
        if "scoring" in args.parts:
            result["scoring"] = scoring(args, clf)
        if "e2e" in args.parts:
            result["e2e"] = e2e(args, clf, Path(tmp))
        if "throughput" in args.parts:
            result["throughput"] = throughput(args, Path(tmp))
    print(f"wrote {write_json(args.out, result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
