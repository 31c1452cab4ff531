"""Compare score normalisations and threshold rules offline on stored study fits.

For every fit (configuration, K, fold) saved by ``study.py`` this computes normalised target
scores (none, Z = target side against held-out pool voices, T = test side against the cohort,
S = mean of both), fits a stranger tail model per configuration on the *development* fits, and
reports strangers accepted (FA) and targets missed or misnamed (FR) at ``target_far``.

Run:  python benchmarks/household/rules.py /tmp/i12study/dev [--apply-to /tmp/i12study/report]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from statistics import NormalDist

import numpy as np

NORMS = ("raw", "z", "t", "s")
_N = NormalDist()


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def normalise(a: dict[str, np.ndarray], key: str, norm: str, sel: str = "sel") -> np.ndarray:
    """(N, K) normalised target scores of the stored set ``key``."""
    k = int(a["enroll_y"].max()) + 1
    full = a[f"{key}|{sel}"]
    s = full[:, :k].astype(np.float64)
    if norm == "raw":
        return s
    cal = a[f"pool_free|{sel}"][:, :k].astype(np.float64)
    zn = (s - cal.mean(0)) / np.maximum(cal.std(0), 1e-9)
    if f"{key}|cohort" in a:  # cosine: scores against the cohort voices' centroids
        coh = a[f"{key}|cohort"].astype(np.float64)
    else:
        coh = full[:, k:].astype(np.float64)
    tn = (s - coh.mean(1, keepdims=True)) / np.maximum(coh.std(1, keepdims=True), 1e-9)
    return {"z": zn, "t": tn, "s": 0.5 * (zn + tn)}[norm]


def chosen(a: dict[str, np.ndarray], key: str, norm: str, sel: str = "sel") -> np.ndarray:
    """Normalised score of the raw-argmax target of each row."""
    raw = a[f"{key}|{sel}"][:, : int(a["enroll_y"].max()) + 1]
    ns = normalise(a, key, norm, sel)
    return ns[np.arange(len(ns)), raw.argmax(1)]


def fit_tail(trials: np.ndarray) -> tuple[float, float]:
    """Normal (m, sd) matched to the 90 % and 99 % quantiles of stranger trial scores."""
    q90, q99 = np.quantile(trials, [0.9, 0.99])
    z90, z99 = _N.inv_cdf(0.9), _N.inv_cdf(0.99)
    sd = (q99 - q90) / (z99 - z90)
    return float(q90 - z90 * sd), float(sd)


def threshold(tail: tuple[float, float], far: float, k: int) -> float:
    """Normalised threshold accepting ``far`` of strangers in a K-target household."""
    p = 1.0 - (1.0 - far) ** (1.0 / k)
    return tail[0] + tail[1] * _N.inv_cdf(1.0 - p)


def operating_point(
    a: dict[str, np.ndarray], cond: str, norm: str, thr: float, sel: str = "sel"
) -> tuple[float, float]:
    """(FA, FR) at normalised threshold ``thr``."""
    su = chosen(a, f"unknown|{cond}", norm, sel)
    k = int(a["enroll_y"].max()) + 1
    raw = a[f"known|{cond}|{sel}"][:, :k]
    sk = chosen(a, f"known|{cond}", norm, sel)
    fr = np.mean((raw.argmax(1) != a["known_y"]) | (sk < thr))
    return float(np.mean(su >= thr)), float(fr)


def stranger_trials(fits: list[dict[str, np.ndarray]], norm: str, sel: str) -> np.ndarray:
    """Every (stranger utterance, target) normalised score over clean + babble20 + noise20."""
    out = []
    for a in fits:
        for cond in ("clean", "babble20", "noise20"):
            out.append(normalise(a, f"unknown|{cond}", norm, sel).ravel())
    return np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dev", type=Path)
    ap.add_argument("--apply-to", type=Path, default=None)
    ap.add_argument("--far", type=float, default=0.01)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    tails: dict[str, dict[str, list[float]]] = {}
    report: dict[str, object] = {}
    for d in sorted(p for p in args.dev.iterdir() if p.is_dir()):
        dev_fits = {f.stem: _load(f) for f in sorted(d.glob("k*-f*.npz"))}
        tails[d.name] = {}
        for norm in NORMS:
            tail = fit_tail(stranger_trials(list(dev_fits.values()), norm, "sel"))
            tails[d.name][norm] = list(tail)
            target = args.apply_to / d.name if args.apply_to else d
            fits = {f.stem: _load(f) for f in sorted(target.glob("k*-f*.npz"))}
            by_k: dict[int, list[tuple[float, ...]]] = {}
            for _name, a in fits.items():
                k = int(a["enroll_y"].max()) + 1
                thr = threshold(tail, args.far, k)
                row = []
                for cond in ("clean", "babble20", "noise20"):
                    row += operating_point(a, cond, norm, thr)
                old_fa = np.mean(a["unknown|clean|sel"][:, :k].max(1) >= float(a["threshold"]))
                by_k.setdefault(k, []).append((*row, float(old_fa)))
            for k, rows in sorted(by_k.items()):
                m = np.mean(rows, axis=0) * 100
                report[f"{d.name}|{norm}|{k}"] = m.tolist()
                print(
                    f"{d.name[:14]:14s} {norm:3s} K={k:3d} clean FA {m[0]:5.1f} FR {m[1]:5.1f} | "
                    f"b20 FA {m[2]:5.1f} FR {m[3]:5.1f} | n20 FA {m[4]:5.1f} FR {m[5]:5.1f} | "
                    f"old-rule clean FA {m[6]:5.1f}"
                )
    print(json.dumps(tails, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"tails": tails, "report": report}, indent=1))


if __name__ == "__main__":
    main()
