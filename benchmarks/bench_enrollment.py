"""Enrollment scaling: time and peak memory of a full SpeakerRPL v2 fit against K targets.

Each K runs in a fresh subprocess (so ``ru_maxrss`` is that fit's own peak memory, torch
included): K synthetic Gaussian voices of dim 192 with 3-6 utterances each are enrolled with
a pool of K + 80 synthetic voices (40 unknown classes, one anchor per target, 20 calibration
voices): class extension, 30 adapters, eigenvalue-variance selection and threshold
calibration, i.e. ``OpenSetSpeakerIdentifier().fit`` with the chosen recipe. The training
part is timed separately; when ``--epochs`` is below the recipe's, the table also gives the
projected time of the full epoch count (training time is linear in epochs).

Usage:
    python benchmarks/bench_enrollment.py [--device cpu|cuda] [--quick] [--ks 5 20 40]
        [--batch-size 16] [--epochs 75] [--train-epochs N] [--timeout 900]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from _common import (
    base_parser,
    gaussian_voices,
    machine_info,
    peak_rss_mb,
    print_table,
    run_child,
    set_threads,
    write_json,
)

FULL_KS = [5, 20, 40, 100, 500, 1000]
QUICK_KS = [5, 20, 40]


def child(k: int, batch_size: int, epochs: int, train_epochs: int, device: str) -> dict[str, Any]:
    """One fit in this process; returns times and peak memory."""
    import numpy as np

    import speakerrpl.identifier as ident

    targets = gaussian_voices(k, (3, 6), 192, seed=k, prefix="spk")
    pool = gaussian_voices(k + 80, (6, 6), 192, seed=10_000 + k, prefix="voice")
    rss_before = peak_rss_mb()
    timing = {"train_s": 0.0}
    original = ident.train_ensemble

    def timed_train(*args: Any, **kwargs: Any) -> list[float]:
        start = time.perf_counter()
        out = original(*args, **kwargs)
        timing["train_s"] += time.perf_counter() - start
        return out

    ident.train_ensemble = timed_train
    clf = ident.OpenSetSpeakerIdentifier(epochs=train_epochs, batch_size=batch_size, device=device)
    start = time.perf_counter()
    clf.fit(targets.x, targets.y.tolist(), pool=(pool.x, pool.y))
    fit_s = time.perf_counter() - start
    rest = fit_s - timing["train_s"]
    projected = rest + timing["train_s"] * epochs / train_epochs
    return {
        "K": k,
        "n_enroll": int(targets.x.shape[0]),
        "n_train_classes": len(clf.training_classes_),
        "batch": batch_size or "full",
        "epochs_run": train_epochs,
        "fit_s": fit_s,
        "train_s": timing["train_s"],
        "other_s": rest,
        f"fit_{epochs}ep_s": projected,
        "s_per_target": projected / k,
        "members_kept": int(np.asarray(clf.members_).size),
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> int:
    parser = base_parser(__doc__ or "", "results/bench_enrollment.json")
    parser.add_argument("--ks", type=int, nargs="*", default=None)
    parser.add_argument("--batch-size", type=int, default=16, help="0 = full batch")
    parser.add_argument("--epochs", type=int, default=75, help="the recipe's epochs")
    parser.add_argument(
        "--train-epochs", type=int, default=None, help="epochs actually run (default: --epochs)"
    )
    parser.add_argument("--max-full-k", type=int, default=100, help="larger K run 5 epochs")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per K")
    parser.add_argument("--child", type=int, default=None, help=argparse_hidden())
    args = parser.parse_args()
    set_threads(args.threads)
    if args.child is not None:
        train_epochs = args.train_epochs or args.epochs
        print(
            json.dumps(child(args.child, args.batch_size, args.epochs, train_epochs, args.device))
        )
        return 0
    ks = args.ks or (QUICK_KS if args.quick else FULL_KS)
    rows = []
    for k in ks:
        epochs = args.train_epochs or (args.epochs if k <= args.max_full_k else 5)
        forwarded = ["--child", str(k), "--batch-size", str(args.batch_size)]
        forwarded += ["--epochs", str(args.epochs), "--train-epochs", str(epochs)]
        forwarded += ["--device", args.device, "--threads", str(args.threads)]
        row = {"K": k} | run_child(Path(__file__), forwarded, args.timeout)
        rows.append(row)
        print_table([row], list(row))
        sys.stdout.flush()
    result = {"machine": machine_info(args.device), "args": vars(args), "rows": rows}
    print(f"wrote {write_json(args.out, result)}")
    return 0


def argparse_hidden() -> str:
    """Help text that hides the internal ``--child`` flag."""
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    raise SystemExit(main())
