"""The corpus's std goal, read from ``speakerrpl evaluate`` reports.

For each ``results.json`` (one deployment's report folds), per condition: plain cosine's and
the default identifier's mean EER, the gap (cosine minus default), the larger of the two
methods' std over the report folds (a fold of several households counts as their mean, as the
report does), and whether that std is below half the gap. The three hardest conditions
(highest cosine EER) are marked.

Run:  python benchmarks/household/std_goal.py full/eval-g10-k4/results.json \
          full/eval-g10-k8/results.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

DEFAULT_ROW, COSINE_ROW = "default", "cosine"


def fold_eers(results: dict, row: str) -> dict[str, np.ndarray]:
    """condition -> (folds,) EER % of one row."""
    return {
        cond: 100 * np.asarray([s["eer"] for s in rows[row]["per_split"]])
        for cond, rows in results["results"].items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("results", type=Path, nargs="+", help="results.json of speakerrpl evaluate")
    args = ap.parse_args()
    for path in args.results:
        results = json.loads(path.read_text())
        proto = results["protocol"]
        cos, dflt = fold_eers(results, COSINE_ROW), fold_eers(results, DEFAULT_ROW)
        hardest = sorted(cos, key=lambda c: -cos[c].mean())[:3]
        draws = proto.get("draws_per_fold", 1)
        print(f"\n{proto['path']}: {proto['n_folds']} folds of {draws} "
              f"draw{'s' if draws > 1 else ''}, K = {proto['n_targets'][0]}")  # fmt: skip
        print("| condition | cosine | default | gap | max std | std < gap / 2 |")
        print("|---|---|---|---|---|---|")
        for cond in cos:
            gap = float(cos[cond].mean() - dflt[cond].mean())
            std = max(float(cos[cond].std()), float(dflt[cond].std()))
            name = f"`{cond}`" + (" (hardest)" if cond in hardest else "")
            print(f"| {name} | {cos[cond].mean():.2f} ± {cos[cond].std():.2f} | "
                  f"{dflt[cond].mean():.2f} ± {dflt[cond].std():.2f} | {gap:+.2f} | {std:.2f} | "
                  f"{'met' if std < gap / 2 else '-'} |")  # fmt: skip
        met = [c for c in cos if max(cos[c].std(), dflt[c].std()) < (cos[c] - dflt[c]).mean() / 2]
        print(f"met in {len(met)} of {len(cos)}; of the three hardest: "
              f"{', '.join(c for c in hardest if c in met) or 'none'}")  # fmt: skip


if __name__ == "__main__":
    main()
