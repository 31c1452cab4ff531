"""The corpus's std goal for the default as the service enrolls: with enrollment copies.

``speakerrpl evaluate`` fits the library default on the enrollment embeddings alone. The
service and ``speakerrpl enroll`` also pass every enrollment clip through seven degraded
channels and fit with ``copies=`` (:mod:`speakerrpl.synth.enrollment_copies`). This refits
the default of an ``evaluate`` run's report protocol that way, draw by draw with the same seeds
(``random_state + draw``) and the same metric code
(:func:`speakerrpl.evaluation.units.compute_metrics`), and prints, per condition, plain
cosine's EER (from that run's ``results.json``), the default's with copies, the gap and the
larger std over the report folds (a fold of several households counts as their mean), as
``std_goal.py`` does; then the same against plain cosine enrolled with the same copies (as
extra clips), the baseline with the same enrollment budget. ``--check N`` also refits the
first N draws without copies and prints the largest EER difference from the run's own default
(0 means the same code path).

The copies are made from the corpus audio of every enrollment clip the protocol uses, babble
of the service's own talkers, and embedded with CAM++ once (cached in ``--out``).

Run (from benchmarks/household; K = 4: about 14 minutes on 2 cores):
      PYTHONPATH=../../src python copies_std_goal.py /tmp/i13corpus/full/eval-g10-k4 \
          --corpus /tmp/i13corpus/full --out /tmp/i13corpus/full/copies-g10-k4 --check 3
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from outside_protocol import enrollment_copy_embeddings  # type: ignore[import-not-found]
from std_goal import COSINE_ROW, DEFAULT_ROW, fold_eers  # type: ignore[import-not-found]

from speakerrpl.evaluation.units import compute_metrics, load_inputs
from speakerrpl.frontends.base import torch_threads
from speakerrpl.identifier import OpenSetSpeakerIdentifier
from speakerrpl.synth.enrollment_copies import CHANNELS


def copy_embeddings(corpus: Path, utts: list[str], cache: Path) -> dict[str, np.ndarray]:
    """utt -> (7, D) CAM++ embeddings of its channel copies (made once, then read)."""
    if not cache.is_file():
        with torch_threads(2):
            made = enrollment_copy_embeddings(corpus / "corpus" / "eval", utts)
        np.savez(cache, utts=np.asarray(utts), copies=np.stack([made[u] for u in utts]))
    with np.load(cache) as data:
        return dict(zip(data["utts"].tolist(), data["copies"], strict=True))


#: the same-budget reference: plain cosine (the run's cosine row) enrolled with the copies too
PLAIN_COSINE = {"method": "cosine", "channel_compensation": False}


def draw_eers(
    inputs, f: int, seed: int, copies: dict[str, np.ndarray] | None, params: dict | None = None
) -> dict[str, float]:
    """condition -> EER % of the default (or of ``params``) fitted on draw ``f``, with
    ``copies`` when given: through ``fit(copies=)`` for the default, as extra enrollment
    clips for ``params`` (plain cosine takes no ``copies=``)."""
    fold = inputs.protocol.folds[f]
    targets = list(fold.targets)
    enroll = [u for t in targets for u in fold.enroll[t]]
    x, y = inputs.rows_of(enroll, "clean"), [t for t in targets for _ in fold.enroll[t]]
    extra = {}
    if copies is not None:
        given = (np.concatenate([copies[u] for u in enroll]), [t for t in y for _ in CHANNELS])
        if params is None:
            extra["copies"] = given
        else:
            x, y = np.concatenate([x, given[0]]), [*y, *given[1]]
    est = OpenSetSpeakerIdentifier(frontend="campplus", random_state=seed, **(params or {}))
    est.fit(x, y, pool=(inputs.pool.embeddings, inputs.pool.speakers), **extra)
    col = {name: k for k, name in enumerate(est.classes_)}
    spk = inputs.embeddings.speakers[[inputs.index[u] for u in fold.test_known]]
    labels = np.array([col[s] for s in spk.tolist()], dtype=np.int64)
    out = {}
    for cond in inputs.conditions:
        known = est.decision_function(inputs.rows_of(fold.test_known, cond))
        unknown = est.decision_function(inputs.rows_of(fold.test_unknown, cond))
        out[cond] = 100 * compute_metrics(known, labels, unknown)["eer"]
    return out


def _goal(reference: np.ndarray, default: np.ndarray) -> tuple[float, float, bool]:
    """(gap, larger std, std < gap / 2) of two methods' fold EERs."""
    gap = float(reference.mean() - default.mean())
    std = max(float(reference.std()), float(default.std()))
    return gap, std, std < gap / 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run", type=Path, help="an evaluate output folder (results.json)")
    ap.add_argument("--corpus", type=Path, required=True, help="the corpus build it embedded")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--check", type=int, default=0, help="draws refitted without copies")
    args = ap.parse_args()
    results = json.loads((args.run / "results.json").read_text())
    base_seed = int(results["config"]["random_state"])
    inputs = load_inputs(results["embeddings"]["path"], results["pool"]["path"],
                         results["protocol"]["path"])  # fmt: skip
    folds = inputs.protocol.folds
    utts = sorted({u for fold in folds for t in fold.targets for u in fold.enroll[t]})
    args.out.mkdir(parents=True, exist_ok=True)
    copies = copy_embeddings(args.corpus, utts, args.out / "copies.npz")
    own = results["results"]
    with torch_threads(1):
        worst = 0.0
        for f in range(args.check):
            plain = draw_eers(inputs, f, base_seed + f, None)
            for cond, value in plain.items():
                worst = max(worst, abs(value - 100 * own[cond][DEFAULT_ROW]["per_draw"][f]["eer"]))
        if args.check:
            print(f"check: {args.check} draws refitted without copies differ from the run's "
                  f"default by at most {worst:.4f} EER points")  # fmt: skip
        rows = [draw_eers(inputs, f, base_seed + f, copies) for f in range(len(folds))]
        cos_rows = [draw_eers(inputs, f, base_seed + f, copies, PLAIN_COSINE)
                    for f in range(len(folds))]  # fmt: skip
    per_fold = int(results["protocol"].get("draws_per_fold", 1))
    cos = fold_eers(results, COSINE_ROW)
    plain_default = fold_eers(results, DEFAULT_ROW)
    hardest = sorted(cos, key=lambda c: -cos[c].mean())[:3]
    print(f"{results['protocol']['path']}: {len(folds) // per_fold} folds of {per_fold} draws")
    print("| condition | cosine | default (clean enrollment) | default + copies | gap | "
          "max std | std < gap / 2 | cosine + copies | same-budget gap | max std | "
          "std < gap / 2 |")  # fmt: skip
    print("|---" * 11 + "|")
    summary = {}
    for cond in cos:
        mine = np.asarray([r[cond] for r in rows]).reshape(-1, per_fold).mean(axis=1)
        same = np.asarray([r[cond] for r in cos_rows]).reshape(-1, per_fold).mean(axis=1)
        (g0, s0, m0), (g1, s1, m1) = [_goal(ref, mine) for ref in (cos[cond], same)]
        summary[cond] = {"cosine": cos[cond].tolist(), "cosine_copies": same.tolist(),
                         "copies": mine.tolist(), "gap": g0, "std": s0, "met": m0,
                         "same_budget_gap": g1, "same_budget_std": s1,
                         "same_budget_met": m1}  # fmt: skip
        name = f"`{cond}`" + (" (hardest)" if cond in hardest else "")
        print(f"| {name} | {cos[cond].mean():.2f} ± {cos[cond].std():.2f} | "
              f"{plain_default[cond].mean():.2f} ± {plain_default[cond].std():.2f} | "
              f"{mine.mean():.2f} ± {mine.std():.2f} | {g0:+.2f} | {s0:.2f} | "
              f"{'met' if m0 else '-'} | {same.mean():.2f} ± {same.std():.2f} | {g1:+.2f} | "
              f"{s1:.2f} | {'met' if m1 else '-'} |")  # fmt: skip
    for key, what in (("met", "against cosine"), ("same_budget_met", "against cosine + copies")):
        met = [c for c in summary if summary[c][key]]
        print(f"{what}: met in {len(met)} of {len(summary)}; of the three hardest: "
              f"{', '.join(c for c in hardest if c in met) or 'none'}")  # fmt: skip
    (args.out / "std_goal.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
