"""Enrollment scaling: time and peak memory of a full SpeakerRPL v2 fit against K targets.

Each fit runs in a fresh subprocess (so ``ru_maxrss`` is that fit's own peak memory, torch
included): K synthetic Gaussian voices of dim 192 with 3-6 utterances each are enrolled with
a pool of K + 80 synthetic voices (40 unknown classes, one anchor per target, 20 calibration
voices): class extension, 30 adapters, eigenvalue-variance selection and threshold
calibration, i.e. ``OpenSetSpeakerIdentifier().fit`` with the library's default recipe or the
published one (``--recipe``). The training part is timed separately. Where a full fit would
take too long (K above ``--max-full-k``) only ``--short-epochs`` epochs run and the full fit
is projected: measured non-training time + training time x (recipe epochs / epochs run);
training time is linear in epochs.

Usage:
    python benchmarks/bench_enrollment.py [--device cpu|cuda] [--quick] [--ks 5 20 40]
        [--recipe default|published] [--runs 3] [--max-full-k 500] [--short-epochs 3]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import replace
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


def child(k: int, recipe: str, short_epochs: int | None, device: str) -> dict[str, Any]:
    """One fit in this process; returns times and peak memory."""
    import numpy as np

    import speakerrpl.identifier.estimator as ident
    from speakerrpl.identifier.settings import PUBLISHED_TRAINING, IdentifierSettings

    targets = gaussian_voices(k, (3, 6), 192, seed=k, prefix="spk")
    pool = gaussian_voices(k + 80, (6, 6), 192, seed=10_000 + k, prefix="voice")
    settings = IdentifierSettings(device=device)
    if recipe == "published":
        settings = replace(settings, **PUBLISHED_TRAINING)
    run = settings if short_epochs is None else replace(settings, epochs=short_epochs, min_steps=0)
    rss_before = peak_rss_mb()
    timing = {"train_s": 0.0, "rows": 0}
    original = ident.train_ensemble

    def timed_train(*args: Any, **kwargs: Any) -> list[float]:
        start = time.perf_counter()
        out = original(*args, **kwargs)
        timing["train_s"] += time.perf_counter() - start
        timing["rows"] = int(args[1].shape[0])
        return out

    ident.train_ensemble = timed_train
    clf = ident.OpenSetSpeakerIdentifier(run)
    start = time.perf_counter()
    clf.fit(targets.x, targets.y.tolist(), pool=(pool.x, pool.y))
    fit_s = time.perf_counter() - start
    rows = int(timing["rows"])
    epochs_full = settings.train_settings().epochs_for(rows)
    epochs_run = run.train_settings().epochs_for(rows)
    rest = fit_s - timing["train_s"]
    return {
        "n_enroll": int(targets.x.shape[0]),
        "n_train_rows": rows,
        "n_train_classes": len(clf.training_classes_),
        "epochs_run": epochs_run,
        "epochs_full": epochs_full,
        "fit_s": fit_s,
        "train_s": timing["train_s"],
        "other_s": rest,
        "full_fit_s": rest + timing["train_s"] * epochs_full / epochs_run,
        "members_kept": int(np.asarray(clf.members_).size),
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak_rss_mb(),
    }


def measure(k: int, args: Any, short: bool) -> dict[str, Any]:
    """Median over ``--runs`` fresh-process fits of one K (errors reported, not raised)."""
    runs = args.runs or (3 if k <= 100 else 1)
    forwarded = ["--child", str(k), "--recipe", args.recipe, "--device", args.device]
    forwarded += ["--threads", str(args.threads)]
    if short:
        forwarded += ["--short-epochs", str(args.short_epochs)]
    results = [run_child(Path(__file__), forwarded, args.timeout) for _ in range(runs)]
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        return {"K": k, "error": errors[0]}
    row: dict[str, Any] = {"K": k, "recipe": args.recipe, "runs": runs, "projected": short}
    for key, value in results[0].items():
        if key in ("fit_s", "train_s", "other_s", "full_fit_s"):
            row[key] = statistics.median(r[key] for r in results)
            row[f"{key}_all"] = [r[key] for r in results]
        elif key == "peak_rss_mb":
            row[key] = max(r[key] for r in results)
        else:
            row[key] = value
    row["s_per_target"] = row["full_fit_s"] / k
    return row


def main() -> int:
    parser = base_parser(__doc__ or "", "results/bench_enrollment.json")
    parser.add_argument("--ks", type=int, nargs="*", default=None)
    parser.add_argument("--recipe", choices=("default", "published"), default="default")
    parser.add_argument("--max-full-k", type=int, default=500, help="larger K: short fits")
    parser.add_argument("--short-epochs", type=int, default=None, help="epochs of a short fit (3)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per fit")
    parser.add_argument("--child", type=int, default=None, help=argparse_hidden())
    args = parser.parse_args()
    set_threads(args.threads)
    if args.child is not None:
        print(json.dumps(child(args.child, args.recipe, args.short_epochs, args.device)))
        return 0
    args.short_epochs = args.short_epochs or 3
    ks = args.ks or (QUICK_KS if args.quick else FULL_KS)
    rows = []
    columns = ["K", "n_train_rows", "n_train_classes", "epochs_run", "epochs_full", "fit_s"]
    columns += ["full_fit_s", "s_per_target", "other_s", "peak_rss_mb"]
    for k in ks:
        rows.append(measure(k, args, short=k > args.max_full_k))
        print_table(rows[-1:], columns if "error" not in rows[-1] else list(rows[-1]))
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
