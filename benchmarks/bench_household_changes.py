"""Household changes (issue 16): a warm ``update`` after adding / removing a person vs a cold fit.

Two parts, each printing a table and writing JSON:

``timing`` (default): K synthetic Gaussian voices of dim 192 (3-6 utterances each, as
``bench_enrollment.py``) and a pool of K + 80 voices. Per K: a cold ``fit`` on the K people,
and ``update`` to the K people from a cold fit on K - 1 (*add*) and on K + 1 (*remove*); each
timed ``--runs`` times in one process after a warm-up fit (so torch's first-use imports are in
no figure), median reported.

``accuracy``: per fold of each protocol (``--protocols``, development folds over the demo
corpus), three identifiers for the fold's K targets: *cold* (``fit``), *add* (cold fit on the
first K - 1 targets, then ``update`` adding the last one) and *remove* (cold fit on the K targets
plus one of the fold's unknown speakers, enrolled from 3 clean clips not among the tests, then
``update`` removing them). For each: EER per test condition, FA / FR at the deployed threshold
over every condition, the new person's recall (named correctly at the threshold) and the removed
person's acceptance (their test clips accepted as anyone), mean +- std over folds, and the
paired cost of each change (``add - cold``, ``remove - cold``: mean +- std of the per-fold
differences; EER, FA, FR and recall in percentage points).

Usage:
    python benchmarks/bench_household_changes.py [--ks 10 100] [--runs 3] [--method softmax]
    python benchmarks/bench_household_changes.py --part accuracy \\
        --protocols /tmp/i16fast/protocols/household-k8-e3-dev.json [--embeddings E --pool P]
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import base_parser, gaussian_voices, machine_info, print_table, set_threads, write_json

DEMO = Path("data/demo")  # built by `make demo`
QUICK_KS, FULL_KS = [10], [10, 100]


def _identifier(method: str, **extra: Any) -> Any:
    from speakerrpl.identifier import OpenSetSpeakerIdentifier

    return OpenSetSpeakerIdentifier(method=method, **extra)


def _timed(call: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = call()
    return time.perf_counter() - start, out


def timing_row(k: int, method: str, runs: int) -> dict[str, Any]:
    """Median seconds of a cold fit and of warm add / remove updates to K people."""
    voices = gaussian_voices(k + 1, (3, 6), 192, seed=k, prefix="spk")
    voices_pool = gaussian_voices(k + 80, (6, 6), 192, seed=10_000 + k, prefix="voice")
    pool = (voices_pool.x, voices_pool.y)
    extra = voices.y == f"spk{k:05d}"
    x, y = voices.x[~extra], voices.y[~extra].tolist()
    last = np.asarray(y) == f"spk{k - 1:05d}"
    times: dict[str, list[float]] = {"cold": [], "add": [], "remove": []}
    modes = set()
    for _ in range(runs):
        times["cold"].append(_timed(lambda: _identifier(method).fit(x, y, pool=pool))[0])
        small = _identifier(method).fit(x[~last], np.asarray(y)[~last].tolist(), pool=pool)
        seconds, small = _timed(lambda s=small: s.update(x, y, pool=pool))
        times["add"].append(seconds)
        modes.add(small.update_mode_)
        big = _identifier(method).fit(voices.x, voices.y.tolist(), pool=pool)
        seconds, big = _timed(lambda b=big: b.update(x, y, pool=pool))
        times["remove"].append(seconds)
        modes.add(big.update_mode_)
    row: dict[str, Any] = {"K": k, "method": method, "runs": runs, "modes": sorted(modes)}
    for name, values in times.items():
        row[f"{name}_s"] = statistics.median(values)
        row[f"{name}_all"] = values
    row["add_speedup"] = row["cold_s"] / row["add_s"]
    row["remove_speedup"] = row["cold_s"] / row["remove_s"]
    return row


def _fold_sets(inputs: Any, fold: Any) -> dict[str, Any]:
    """Enrollment, extra (removed) person and test rows of one fold."""
    targets = list(fold.targets)
    ids = [u for t in targets for u in fold.enroll[t]]
    labels = [t for t in targets for _ in fold.enroll[t]]
    emb = inputs.embeddings
    spk_of = dict(zip(emb.utt_ids.tolist(), emb.speakers.tolist(), strict=True))
    gone = spk_of[fold.test_unknown[0]]
    tests = set(fold.test_unknown)
    spare = sorted(u for u, s in spk_of.items() if s == gone and "__" not in u and u not in tests)
    if len(spare) < 3:
        raise SystemExit(f"unknown speaker {gone} has {len(spare)} spare clean clips, need 3")
    return {
        "targets": targets,
        "x": inputs.rows_of(ids, "clean"),
        "y": labels,
        "x_gone": inputs.rows_of(spare[:3], "clean"),
        "gone": gone,
        "known_spk": [spk_of[u] for u in fold.test_known],
        "unknown_spk": [spk_of[u] for u in fold.test_unknown],
    }


def _scenario_metrics(clf: Any, inputs: Any, fold: Any, sets: dict[str, Any]) -> dict[str, float]:
    from speakerrpl.evaluation.units import compute_metrics, deployed_accepts

    col = {c: i for i, c in enumerate(clf.classes_)}
    labels = np.asarray([col[s] for s in sets["known_spk"]])
    new = np.asarray(sets["known_spk"]) == sets["targets"][-1]
    gone = np.asarray(sets["unknown_spk"]) == sets["gone"]
    out: dict[str, float] = {}
    known_all, unknown_all, new_hits, gone_acc, known_ok, unknown_ok = [], [], [], [], [], []
    for cond in inputs.conditions:
        xk = inputs.rows_of(fold.test_known, cond)
        xu = inputs.rows_of(fold.test_unknown, cond)
        sk, su = clf.decision_function(xk), clf.decision_function(xu)
        out[f"eer_{cond}"] = compute_metrics(sk, labels, su)["eer"]
        known_all.append(sk)
        unknown_all.append(su)
        known_ok.append(deployed_accepts(clf, xk, sk))
        unknown_ok.append(deployed_accepts(clf, xu, su))
        ok = (sk.argmax(axis=1) == labels) & known_ok[-1]
        new_hits.append(ok[new])
        gone_acc.append(unknown_ok[-1][gone])
    pooled = compute_metrics(
        np.concatenate(known_all), np.tile(labels, len(known_all)), np.concatenate(unknown_all),
        clf.settings.target_far, (np.concatenate(known_ok), np.concatenate(unknown_ok)),
    )  # fmt: skip
    out["eer_mean"] = float(np.mean([out[f"eer_{c}"] for c in inputs.conditions]))
    out.update(fa=pooled["fa"], fr=pooled["fr"])
    out["new_recall"] = float(np.concatenate(new_hits).mean())
    out["gone_accepted"] = float(np.concatenate(gone_acc).mean())
    return out


def _fold_runs(
    sets: dict[str, Any], args: Any, seed: int, pool: Any, frontend: str
) -> dict[str, tuple[Any, float]]:
    """The cold, add and remove identifiers of one fold with the seconds each change took."""
    x, y = sets["x"], sets["y"]
    first = np.asarray(y) != sets["targets"][-1]
    steps = {} if args.steps is None else {"steps": args.steps}

    def make(xs: np.ndarray, ys: list[str]) -> Any:
        clf = _identifier(args.method, frontend=frontend, random_state=seed)
        return clf.fit(xs, ys, pool=pool)

    start = time.perf_counter()
    runs = {"cold": (make(x, y), time.perf_counter() - start)}
    small = make(x[first], np.asarray(y)[first].tolist())
    start = time.perf_counter()
    runs["add"] = (small.update(x, y, pool=pool, **steps), time.perf_counter() - start)
    big = make(np.concatenate([x, sets["x_gone"]]), y + [sets["gone"]] * 3)
    start = time.perf_counter()
    runs["remove"] = (big.update(x, y, pool=pool, **steps), time.perf_counter() - start)
    return runs


def accuracy_rows(protocol: str, args: Any) -> list[dict[str, Any]]:
    """Cold / add / remove metrics of every fold of one protocol, mean and std over folds."""
    from speakerrpl.evaluation.units import load_inputs

    inputs = load_inputs(args.embeddings, args.pool, protocol)
    pool = (inputs.pool.embeddings, inputs.pool.speakers)
    frontend = inputs.embeddings.frontend
    per: dict[str, list[dict[str, float]]] = {"cold": [], "add": [], "remove": []}
    for index, fold in enumerate(inputs.protocol.folds):
        sets = _fold_sets(inputs, fold)
        runs = _fold_runs(sets, args, index, pool, frontend)
        for name, (clf, secs) in runs.items():
            metrics = _scenario_metrics(clf, inputs, fold, sets)
            per[name].append({**metrics, "seconds": secs, "warm": clf.update_mode_ == "warm"})
    rows = []
    for name, folds in per.items():
        row: dict[str, Any] = {"protocol": Path(protocol).stem, "change": name, "folds": len(folds)}
        for key in folds[0]:
            values = [float(f[key]) for f in folds]
            row[key] = float(np.mean(values))
            row[f"{key}_std"] = float(np.std(values))
        row["per_fold"] = folds
        rows.append(row)
    for name in ("add", "remove"):  # paired by fold: the change's cost against a cold fit
        row = {"protocol": Path(protocol).stem, "change": f"{name} - cold", "folds": len(folds)}
        for key in per["cold"][0]:
            diffs = [
                float(w[key]) - float(c[key]) for w, c in zip(per[name], per["cold"], strict=True)
            ]
            row[key], row[f"{key}_std"] = float(np.mean(diffs)), float(np.std(diffs))
        rows.append(row)
    return rows


def _pm(rows: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """Rows for printing: ``mean +- std`` strings (EER/FA/FR in %)."""
    out = []
    for r in rows:
        shown = {"protocol": r["protocol"], "change": r["change"]}
        for k in keys:
            scale = 1.0 if k == "seconds" else 100.0
            shown[k] = f"{scale * r[k]:.2f} +- {scale * r[k + '_std']:.2f}"
        out.append(shown)
    return out


def main() -> int:
    parser = base_parser(__doc__ or "", "results/bench_household_changes.json")
    parser.add_argument("--part", choices=("timing", "accuracy"), default="timing")
    parser.add_argument("--ks", type=int, nargs="*", default=None, help="timing: household sizes")
    parser.add_argument("--method", default="softmax", help="identifier method (default softmax)")
    parser.add_argument("--steps", type=int, default=None, help="warm steps (default WARM_STEPS)")
    parser.add_argument("--protocols", nargs="*", default=[], help="accuracy: protocol JSONs")
    parser.add_argument("--embeddings", default=str(DEMO / "eval.npz"))
    parser.add_argument("--pool", default=str(DEMO / "pool.npz"))
    args = parser.parse_args()
    set_threads(args.threads)
    result: dict[str, Any] = {"machine": machine_info(args.device), "args": vars(args)}
    if args.part == "timing":
        _identifier(args.method, n_models=2).fit(*_warm_up_data())  # first-use imports
        rows = [timing_row(k, args.method, args.runs or 3) for k in args.ks or (
            QUICK_KS if args.quick else FULL_KS)]  # fmt: skip
        print_table(rows, ["K", "method", "cold_s", "add_s", "remove_s", "add_speedup",
                           "remove_speedup", "modes"])  # fmt: skip
    else:
        if not args.protocols:
            raise SystemExit("--part accuracy needs --protocols")
        rows = [row for p in args.protocols for row in accuracy_rows(p, args)]
        conds = [k.removeprefix("eer_") for k in rows[0] if k.startswith("eer_") and
                 not k.endswith("_std") and k != "eer_mean"]  # fmt: skip
        keys = ["eer_mean", *[f"eer_{c}" for c in conds], "fa", "fr", "new_recall"]
        print_table(_pm(rows, [*keys, "gone_accepted", "seconds"]), ["protocol", "change", *keys,
                    "gone_accepted", "seconds"])  # fmt: skip
    result["rows"] = rows
    print(f"wrote {write_json(args.out, result)}")
    return 0


def _warm_up_data() -> tuple[np.ndarray, list[str]]:
    v = gaussian_voices(3, (3, 3), 192, seed=1, prefix="w")
    return v.x, v.y.tolist()


if __name__ == "__main__":
    raise SystemExit(main())
