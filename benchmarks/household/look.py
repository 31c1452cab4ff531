"""Print where strangers' scores fall relative to the enrollment-time score sets (exploration)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

root = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/i12study/dev")
for d in sorted(root.iterdir()):
    for f in sorted(d.glob("k*-f*.npz")):
        a = np.load(f)
        y = a["enroll_y"]
        k = int(y.max()) + 1
        en = a["enroll|sel"][:, :k]
        own = en[np.arange(len(y)), y]
        cross = np.where(np.eye(k, dtype=bool)[y], -np.inf, en)
        cm = cross.max(1) if k > 1 else np.array([np.nan])
        pool = a["pool_free|sel"][:, :k].max(1)
        row = []
        for cond in ("clean", "babble20"):
            u = a[f"unknown|{cond}|sel"][:, :k].max(1)
            kn = a[f"known|{cond}|sel"][:, :k]
            ko = kn[np.arange(len(kn)), a["known_y"]]
            row.append(
                f"{cond}: unk q50/99 {np.quantile(u, 0.5):6.2f}/{np.quantile(u, 0.99):6.2f}"
                f" known q01 {np.quantile(ko, 0.01):6.2f}"
            )
        print(
            f"{d.name[:18]:18s} {f.stem} own min {own.min():6.2f} cross max {np.max(cm):6.2f} "
            f"pool q99 {np.quantile(pool, 0.99):6.2f} thr {float(a['threshold']):6.2f} | "
            + " | ".join(row)
        )
