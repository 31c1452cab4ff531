"""Fit the stranger score tail of each configuration per household size K (development fits).

For each stored configuration and K: a normal (m, sd) matched to the 90 % / 99 % quantiles of
the raw fused scores of every (stranger utterance, target) trial over clean, babble20 and
noise20; then strangers accepted / targets missed at target_far with that K-aware threshold.

Run: python benchmarks/household/tails.py /tmp/i12study/dev [--apply-to /tmp/i12study/report]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from speakerrpl.identifier.calibration import StrangerTail, fit_normal_tail

CONDS = ("clean", "babble20", "noise20")


def fit(dirpath: Path) -> dict[int, tuple[float, float]]:
    by_k: dict[int, list[np.ndarray]] = {}
    for f in sorted(dirpath.glob("k*-f*.npz")):
        a = np.load(f)
        k = int(a["enroll_y"].max()) + 1
        for c in CONDS:
            by_k.setdefault(k, []).append(a[f"unknown|{c}|sel"][:, :k].ravel())
    return {k: fit_normal_tail(np.concatenate(v)) for k, v in sorted(by_k.items())}


def evaluate(dirpath: Path, table: dict[int, tuple[float, float]], far: float) -> dict:
    tail = StrangerTail.from_table(table)
    out: dict[int, list] = {}
    for f in sorted(dirpath.glob("k*-f*.npz")):
        a = np.load(f)
        k = int(a["enroll_y"].max()) + 1
        thr = tail.score_threshold(far, k)
        row = []
        for c in (*CONDS, "babble10"):
            su = a[f"unknown|{c}|sel"][:, :k].max(1)
            kn = a[f"known|{c}|sel"][:, :k]
            fr = np.mean((kn.argmax(1) != a["known_y"]) | (kn.max(1) < thr))
            row += [float(np.mean(su >= thr)), float(fr)]
        out.setdefault(k, []).append(row)
    return {k: np.mean(v, axis=0).tolist() for k, v in sorted(out.items())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dev", type=Path)
    ap.add_argument("--apply-to", type=Path, default=None)
    ap.add_argument("--far", type=float, default=0.01)
    args = ap.parse_args()
    tables = {}
    for d in sorted(p for p in args.dev.iterdir() if p.is_dir()):
        table = fit(d)
        tables[d.name] = {str(k): [round(v, 4) for v in p] for k, p in table.items()}
        target = (args.apply_to / d.name) if args.apply_to else d
        if not target.is_dir():
            continue
        for k, m in evaluate(target, table, args.far).items():
            m = [100 * v for v in m]
            print(
                f"{d.name[:16]:16s} K={k:3d} tail {table.get(k, ('-', '-'))} | "
                + " | ".join(
                    f"{c} FA {m[2 * i]:4.1f} FR {m[2 * i + 1]:4.1f}"
                    for i, c in enumerate((*CONDS, "babble10"))
                )
            )
    print(json.dumps(tables))


if __name__ == "__main__":
    main()
