"""Measure the tables of ``speakerrpl.identifier.tails`` on development fits of ``study.py``.

1. **Stranger tails**, per configuration and household size K: for every test condition, a
   normal (m, sd) matched to the 90 % / 99 % quantiles of the raw fused scores of every
   (stranger utterance, enrolled target) trial, its mean raised where it would accept more
   than ``--far`` of that condition's strangers in sample; the table keeps the *heaviest*
   condition's tail (the one giving the highest threshold at ``--far``), so the requested rate
   holds in every condition, not only on average (strangers heard on the clean channel score
   highest).
2. **Blend weights** of an adapter configuration with cosine: the weight in 0, 0.1, ..., 1 with
   the lowest EER averaged over the conditions (mean over folds), each score standardised by
   its tail of step 1 (:class:`speakerrpl.identifier.blend.CosineBlend`).
3. The blended score's own tail, as in step 1; then, per configuration and K, the mean EER
   over the conditions and strangers accepted / targets missed per condition at ``--far`` with
   every table (in sample unless ``--apply-to`` names other fits; ``--guard`` adds the
   identifier's pool guard).

Run:  PYTHONPATH=src python benchmarks/household/tables.py /tmp/i12s/dev \
          --blend softmax_f30 [--apply-to /tmp/i12s/report] [--cosine cosine_wccn] \
          [--cosine-suffix -multi]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from speakerrpl.data.condition_ids import CONDITIONS
from speakerrpl.identifier.blend import CosineBlend
from speakerrpl.identifier.calibration import StrangerTail, fit_normal_tail, threshold_for_far
from speakerrpl.metrics import eer, identification_trials

CONDS = ("clean", *CONDITIONS)
WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))
Fit = dict[str, np.ndarray]


def _load(path: Path) -> Fit:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def load_fits(root: Path) -> dict[str, dict[str, Fit]]:
    """``{config name: {fit file name: arrays}}`` of every study directory under ``root``."""
    return {
        d.name.rsplit("-", 1)[0]: {f.name: _load(f) for f in sorted(d.glob("k*-f*.npz"))}
        for d in sorted(root.iterdir())
        if d.is_dir()
    }


def n_targets(a: Fit) -> int:
    return int(a["enroll_y"].max()) + 1


def target_scores(a: Fit, key: str) -> np.ndarray:
    return a[f"{key}|sel"][:, : n_targets(a)].astype(np.float64)


Scorer = dict[str, np.ndarray]  # set key -> (N, K) scores of one fit


def scorer(a: Fit) -> Scorer:
    keys = [f"{r}|{c}" for r in ("known", "unknown") for c in CONDS] + ["pool_free"]
    return {key: target_scores(a, key) for key in keys} | {"known_y": a["known_y"]}


def blended(cos: Fit, ad: Fit, blend: CosineBlend) -> Scorer:
    scores = {k: v for k, v in scorer(cos).items() if k != "known_y"}
    out = {k: blend.combine(v, target_scores(ad, k)) for k, v in scores.items()}
    return out | {"known_y": cos["known_y"]}


def heaviest_tail(scorers: list[Scorer], k: int, far: float) -> tuple[float, float]:
    """The tail of the condition whose tail gives the highest threshold at ``far``.

    Each condition's normal is matched to the 90 % / 99 % quantiles of its per-target trials;
    where its threshold at ``far`` would accept more than ``far`` of that condition's
    strangers (their best score over the K targets, in sample), its mean is raised until it
    does not: at large K the threshold lies far beyond the 99 % quantile, where the normal
    underestimates the fused scores' upper tail (K = 50: 2.8 % accepted in sample without it).
    """
    best: tuple[float, tuple[float, float]] | None = None
    for c in CONDS:
        tail = fit_normal_tail(np.concatenate([s[f"unknown|{c}"].ravel() for s in scorers]))
        thr = StrangerTail.from_table({k: tail}).score_threshold(far, k)
        best_scores = np.concatenate([s[f"unknown|{c}"].max(axis=1) for s in scorers])
        needed = float(np.quantile(best_scores, 1.0 - far))
        if thr < needed:
            tail, thr = (tail[0] + needed - thr, tail[1]), needed
        if best is None or thr > best[0]:
            best = (thr, tail)
    assert best is not None
    return best[1]


def condition_eers(s: Scorer) -> np.ndarray:
    """EER % of each condition's identification trials."""
    trials = [
        identification_trials(s[f"known|{c}"], s["known_y"], s[f"unknown|{c}"]) for c in CONDS
    ]
    return np.asarray([100 * eer(scores, labels) for scores, labels in trials])


def operating_points(s: Scorer, thr: float) -> np.ndarray:
    """(FA %, FR %) per condition at ``thr``, flattened."""
    row = []
    for c in CONDS:
        known = s[f"known|{c}"]
        missed = (known.argmax(1) != s["known_y"]) | (known.max(1) < thr)
        row += [100 * float(np.mean(s[f"unknown|{c}"].max(1) >= thr)), 100 * float(missed.mean())]
    return np.asarray(row)


def by_k(fits: dict[str, Fit]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for name, a in fits.items():
        out.setdefault(n_targets(a), []).append(name)
    return dict(sorted(out.items()))


def with_cosine_from(
    fits: dict[str, dict[str, Fit]], root: Path, cosine: str, suffix: str
) -> dict[str, dict[str, Fit]]:
    """``fits`` with the ``cosine`` config's fits taken from ``<root><suffix>`` (every config
    kept to the folds that directory holds); unchanged without a suffix."""
    if not suffix:
        return fits
    other = load_fits(Path(f"{root}{suffix}"))[cosine]
    fits = {c: {n: a for n, a in f.items() if n in other} for c, f in fits.items()}
    return {**fits, cosine: other}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dev", type=Path)
    ap.add_argument("--blend", nargs="*", default=["softmax_f30"], help="adapter configs")
    ap.add_argument("--apply-to", type=Path, default=None, help="report fits to check on")
    ap.add_argument("--cosine", default="cosine", help="the cosine config blended with")
    ap.add_argument("--far", type=float, default=0.01)
    ap.add_argument("--guard", action="store_true", help="apply the pool guard when checking")
    ap.add_argument(
        "--cosine-suffix",
        default="",
        help="read the cosine config's fits from <dir><suffix> (dev and --apply-to), e.g. "
        "-multi: multi-condition enrollment for the cosine centroid only",
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    dev = with_cosine_from(load_fits(args.dev), args.dev, args.cosine, args.cosine_suffix)
    if args.cosine != "cosine":
        dev["cosine"] = dev.pop(args.cosine)
    ks = by_k(dev["cosine"])
    tails = {
        cfg: {k: heaviest_tail([scorer(fits[n]) for n in names], k, args.far)
              for k, names in by_k(fits).items()}
        for cfg, fits in dev.items()
    }  # fmt: skip
    weights: dict[str, dict[int, float]] = {}
    for ad in args.blend:
        weights[ad] = {}
        for k, names in ks.items():
            means = []
            for w in WEIGHTS:
                b = CosineBlend(w, tails["cosine"][k], tails[ad][k])
                e = [condition_eers(blended(dev["cosine"][n], dev[ad][n], b)) for n in names]
                means.append(float(np.mean(e)))
            weights[ad][k] = WEIGHTS[int(np.argmin(means))]
            print(f"{ad} K={k}: mean EER by weight " + " ".join(f"{m:.2f}" for m in means))
        blends = {k: CosineBlend(weights[ad][k], tails["cosine"][k], tails[ad][k]) for k in ks}
        tails[f"{ad}+cosine"] = {
            k: heaviest_tail([blended(dev["cosine"][n], dev[ad][n], blends[k]) for n in names],
                             k, args.far)
            for k, names in ks.items()
        }  # fmt: skip
    check = (
        with_cosine_from(load_fits(args.apply_to), args.apply_to, args.cosine, args.cosine_suffix)
        if args.apply_to
        else dev
    )
    if args.cosine in check:
        check["cosine"] = check.pop(args.cosine)
    for cfg, table in tails.items():
        tail = StrangerTail.from_table(table)
        base = cfg.split("+")[0]
        for k in ks:
            rows, eers = [], []
            for n, a in check.get(base, {}).items():
                if n_targets(a) != k:
                    continue
                s = scorer(a)
                if cfg.endswith("+cosine"):
                    b = CosineBlend(weights[base][k], tails["cosine"][k], tails[base][k])
                    s = blended(check["cosine"][n], a, b)
                thr = tail.score_threshold(args.far, k)
                if args.guard:  # the identifier's pool guard, on the fit's held-out pool voices
                    thr = max(thr, threshold_for_far(s["pool_free"].max(axis=1), args.far))
                rows.append(operating_points(s, thr))
                eers.append(float(condition_eers(s).mean()))
            if rows:
                m = np.mean(rows, axis=0)
                print(
                    f"{cfg[:22]:22s} K={k:3d} mean EER {np.mean(eers):.2f} FA/FR % "
                    + " ".join(
                        f"{c[:6]} {m[2 * i]:.1f}/{m[2 * i + 1]:.1f}" for i, c in enumerate(CONDS)
                    )
                )
    table_json = {
        c: {k: [round(v, 4) for v in t] for k, t in tk.items()} for c, tk in tails.items()
    }
    print(json.dumps({"tails": table_json, "blend_weights": weights}))
    if args.json:
        args.json.write_text(json.dumps({"tails": table_json, "blend_weights": weights}, indent=1))


if __name__ == "__main__":
    main()
