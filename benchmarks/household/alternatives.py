"""Calibration approaches the shipped stranger tails were compared with, on stored study fits.

Both run on the scores a fit decides on (``|final`` in ``study.py``'s files) and compare with
the threshold the fit deployed from the measured table (``table``):

1. **Leave-one-speaker-out (LOSO) tails from the enrollment itself.** Each enrolled target in
   turn plays a stranger to the other K - 1: its enrollment clips' scores against them are
   in-domain stranger trials. For cosine these are exact without refitting (the other
   targets' centroids do not contain the clips). For a trained model (``--refit``) the
   identifier is refitted K times, each time without one target, and that target's clips
   are scored by the K - 1 model. A normal fitted to those trials (mean, std) gives the
   threshold for K targets at ``--far`` (``loso``); ``stricter`` is the higher of it and the
   table's threshold. K = 1 has no other target and is skipped.
2. **Logistic calibration of the best score to a probability.** Per K, ``P(the best target is
   the speaker | best score s) = sigmoid(a s + b)``, fitted on the development fits' tests
   (every condition; a misnamed target counts as wrong), then applied to the report fits:
   expected calibration error (10 equal-width bins), mean log loss, and strangers accepted /
   targets missed where ``P >= 1 - far`` (the reading a user would give "99 % sure").

Each line: mean ± std over folds of strangers accepted (FA, clean-channel tests and the worst
condition of each fold) and targets missed or misnamed (FR, clean and music).

Run:  PYTHONPATH=src python benchmarks/household/alternatives.py \
          --dev /tmp/i12c/devplus/cosine_wccn-d226c11a \
          --report /tmp/i12c/report/cosine_wccn-d226c11a
      (``--refit default`` with the default's fits: a trained model's LOSO refits)
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
from publish import operating_point  # type: ignore[import-not-found]
from study import (  # type: ignore[import-not-found]
    CONFIGS,
    DEMO,
    SEEDS,
    protocol_for,
    with_extra_voices,
)

from speakerrpl.data.condition_ids import CONDITIONS
from speakerrpl.embeddings import EmbeddingSet
from speakerrpl.frontends.base import torch_threads
from speakerrpl.identifier import OpenSetSpeakerIdentifier
from speakerrpl.identifier.calibration import StrangerTail

CONDS = ("clean", *CONDITIONS)
Fit = dict[str, np.ndarray]


def load(directory: Path) -> dict[tuple[int, int], Fit]:
    """``{(K, fold): arrays}`` of one study configuration directory."""
    out = {}
    for path in sorted(directory.glob("k*-f*.npz")):
        k, f = map(int, re.findall(r"\d+", path.stem))
        with np.load(path, allow_pickle=False) as data:
            out[(k, f)] = {key: data[key] for key in data.files}
    return out


def loso_trials_cosine(a: Fit) -> np.ndarray:
    """Every enrollment clip's scores against the *other* targets."""
    scores, owner = a["enroll|final"].astype(np.float64), a["enroll_y"]
    return scores[np.arange(scores.shape[1])[None, :] != owner[:, None]]


def loso_trials_refit(
    params: dict, enroll_x: np.ndarray, enroll_y: np.ndarray, pool: EmbeddingSet, seed: int
) -> np.ndarray:
    """Refit without each target in turn; that target's clips scored by the K - 1 model."""
    trials = []
    for held_out in np.unique(enroll_y):
        rest = enroll_y != held_out
        est = OpenSetSpeakerIdentifier(**params, random_state=seed)
        est.fit(enroll_x[rest], enroll_y[rest], pool=(pool.embeddings, pool.speakers))
        trials.append(est.decision_function(enroll_x[~rest]).ravel())
    return np.concatenate(trials)


def loso_threshold(trials: np.ndarray, k: int, far: float) -> float:
    tail = StrangerTail.from_table({k: (float(trials.mean()), float(trials.std(ddof=1)))})
    return tail.score_threshold(far, k)


def at_threshold(a: Fit, thr: float) -> dict[str, float]:
    """FA / FR % per condition (``publish.operating_point``) and the worst condition's FA."""
    out: dict[str, float] = {}
    for c in CONDS:
        out[f"fa_{c}"], out[f"fr_{c}"] = operating_point(a, c, thr)
    out["fa_worst"] = max(out[f"fa_{c}"] for c in CONDS)
    return out


def best_score_labels(a: Fit) -> tuple[np.ndarray, np.ndarray]:
    """Every test's best score and whether accepting it names the right person."""
    scores, labels = [], []
    for c in CONDS:
        known, unknown = a[f"known|{c}|final"], a[f"unknown|{c}|final"]
        scores += [known.max(1), unknown.max(1)]
        labels += [known.argmax(1) == a["known_y"], np.zeros(len(unknown), bool)]
    return np.concatenate(scores).astype(np.float64), np.concatenate(labels).astype(np.float64)


def fit_logistic(s: np.ndarray, y: np.ndarray, steps: int = 50) -> tuple[float, float]:
    """``(a, b)`` maximising the likelihood of ``y ~ sigmoid(a s + b)`` (Newton steps)."""
    x = np.c_[s, np.ones_like(s)]
    w = np.zeros(2)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -50, 50)))
        hessian = x.T @ (x * (p * (1 - p))[:, None]) + 1e-9 * np.eye(2)
        w -= np.linalg.solve(hessian, x.T @ (p - y))
    return float(w[0]), float(w[1])


def probability_threshold(a: float, b: float, p: float) -> float:
    """The best score at which ``sigmoid(a s + b)`` reaches ``p`` (``a > 0``)."""
    if a <= 0:
        raise ValueError(f"the logistic fit does not rise with the score (a = {a})")
    return (np.log(p / (1 - p)) - b) / a


def calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: mean |accuracy - confidence| over equal-width bins."""
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = sum(
        np.sum(which == b) * abs(float(y[which == b].mean() - p[which == b].mean()))
        for b in range(bins)
        if np.any(which == b)
    )
    return float(total / len(p))


def logistic_rows(dev: dict, report: dict, far: float) -> dict[int, dict[str, float]]:
    rows = {}
    for k in sorted({k for k, _ in report}):
        dev_fits = [a for (kk, _), a in dev.items() if kk == k]
        if not dev_fits:
            continue
        s, y = map(np.concatenate, zip(*map(best_score_labels, dev_fits), strict=True))
        a_, b_ = fit_logistic(s, y)
        per_fold = []
        for (kk, _), a in sorted(report.items()):
            if kk != k:
                continue
            rs, ry = best_score_labels(a)
            p = 1 / (1 + np.exp(-(a_ * rs + b_)))
            eps = 1e-12
            loss = -float(np.mean(ry * np.log(p + eps) + (1 - ry) * np.log(1 - p + eps)))
            per_fold.append(
                {"ece": 100 * calibration_error(p, ry), "log_loss": loss}
                | at_threshold(a, probability_threshold(a_, b_, 1 - far))
            )
        rows[k] = {key: float(np.mean([r[key] for r in per_fold])) for key in per_fold[0]} | {
            f"{key}_std": float(np.std([r[key] for r in per_fold])) for key in per_fold[0]
        }
    return rows


def summary(per_fold: list[dict[str, float]]) -> str:
    def cell(key: str) -> str:
        v = [r[key] for r in per_fold]
        return f"{np.mean(v):.1f} ± {np.std(v):.1f}"

    return (
        f"FA clean {cell('fa_clean')}  worst {cell('fa_worst')}  "
        f"FR clean {cell('fr_clean')}  music {cell('fr_music')}"
    )


def refit_trials(config: str, half: str, extra: Path) -> dict[tuple[int, int], np.ndarray]:
    """LOSO trials of ``config`` refitted on each stored fold of ``half`` (5 folds per K)."""
    emb = EmbeddingSet.load(DEMO / "eval.npz")
    if half == "devplus":
        emb = with_extra_voices(emb, EmbeddingSet.load(extra))
    pool = EmbeddingSet.load(DEMO / "pool.npz")
    index = {u: i for i, u in enumerate(emb.utt_ids.tolist())}
    out = {}
    with torch_threads(1):
        for k in (2, 4, 8, 20):
            seed = SEEDS[half] + k
            for f, fold in enumerate(protocol_for(emb, half, k, 5, seed).folds):
                ids = [u for t in fold.targets for u in fold.enroll[t]]
                y = np.asarray(
                    [fold.targets.index(t) for t in fold.targets for _ in fold.enroll[t]]
                )
                x = emb.embeddings[[index[u] for u in ids]]
                out[(k, f)] = loso_trials_refit(CONFIGS[config], x, y, pool, seed + 1000 * k + f)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dev", type=Path, required=True, help="development fits of one config")
    ap.add_argument("--report", type=Path, required=True, help="report fits of the same config")
    ap.add_argument("--far", type=float, default=0.01)
    ap.add_argument("--refit", default=None, help="study config to refit for LOSO (trained)")
    ap.add_argument("--extra-voices", type=Path, default=Path("/tmp/i13corpus/full/eval.npz"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    dev, report = load(args.dev), load(args.report)
    result: dict[str, dict] = {"loso": {}, "logistic": {}}
    for name, fits, half in (("dev", dev, "devplus"), ("report", report, "report")):
        refits = refit_trials(args.refit, half, args.extra_voices) if args.refit else {}
        for k in sorted({k for k, _ in fits if k > 1}):
            rows: dict[str, list[dict[str, float]]] = {"table": [], "loso": [], "stricter": []}
            for (kk, f), a in sorted(fits.items()):
                if kk != k:
                    continue
                trials = refits[(k, f)] if args.refit else loso_trials_cosine(a)
                table = float(a["threshold"])
                loso = loso_threshold(trials, k, args.far)
                for rule, thr in (("table", table), ("loso", loso), ("stricter", max(table, loso))):
                    rows[rule].append(at_threshold(a, thr))
            for rule, per_fold in rows.items():
                print(f"{name:6s} K={k:3d} {rule:8s} {summary(per_fold)}", flush=True)
                result["loso"].setdefault(name, {}).setdefault(rule, {})[k] = per_fold
    for k, row in logistic_rows(dev, report, args.far).items():
        print(
            f"report K={k:3d} logistic ECE {row['ece']:.1f} ± {row['ece_std']:.1f} %  "
            f"log loss {row['log_loss']:.3f}  at P >= {1 - args.far:g}: "
            f"FA clean {row['fa_clean']:.1f} ± {row['fa_clean_std']:.1f}  "
            f"worst {row['fa_worst']:.1f}  FR clean {row['fr_clean']:.1f}  "
            f"music {row['fr_music']:.1f}"
        )
        result["logistic"][k] = row
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
