"""EER (%) of each stored study configuration by K and condition (mean over folds)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from speakerrpl import metrics

root = Path(sys.argv[1])
conds = ("clean", "babble20", "noise20", "babble10", "babble5")
for d in sorted(p for p in root.iterdir() if p.is_dir()):
    by_k: dict[int, list[list[float]]] = {}
    fits = sorted(d.glob("k*-f*.npz"))
    for f in fits:
        a = np.load(f)
        k = int(a["enroll_y"].max()) + 1
        if k < 2:
            continue
        row = []
        for sel in ("sel", "all"):
            if f"known|clean|{sel}" not in a:
                sel = "sel"
            for c in conds:
                kn, un = a[f"known|{c}|{sel}"][:, :k], a[f"unknown|{c}|{sel}"][:, :k]
                s, lab = metrics.identification_trials(kn, a["known_y"], un)
                row.append(100 * metrics.eer(s, lab))
        by_k.setdefault(k, []).append([*row, float(a["fit_s"])])
    for k, rows in sorted(by_k.items()):
        m = np.mean(rows, axis=0)
        sel = " ".join(f"{v:5.2f}" for v in m[:5])
        alls = " ".join(f"{v:5.2f}" for v in m[5:10])
        print(
            f"{d.name[:16]:16s} K={k:3d} sel: {sel} | all: {alls} | fit {m[10]:.1f}s n={len(rows)}"
        )
