"""Split noise of household comparisons: one household per report fold against several.

The corpus goal "std of EER over report folds below half the gap between cosine and the
default" fails for households of 4 because households differ far more than methods do. This
draws ``--households`` x ``--group`` report households of a deployment (the first 10 are the
suite's report folds when ``--voices`` is the corpus's voices.csv), evaluates them with
``speakerrpl evaluate`` (cosine on raw embeddings and the default), and prints per condition
the gap (cosine minus default, mean EER over all households), the larger of the two methods'
std over single households, and the same std when a report fold is ``--group`` households
whose EERs are averaged.

Run:  PYTHONPATH=src python benchmarks/household/households_per_fold.py \
          --corpus /tmp/i13corpus/full --out /tmp/i13corpus/full/eval-k4e3-x50
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from speakerrpl.data.corpus_files import read_voices
from speakerrpl.data.deployments import Deployment, deployment_protocol
from speakerrpl.data.protocols import save_protocol
from speakerrpl.embeddings import EmbeddingSet

DEFAULT_ROW, COSINE_ROW = "default", "cosine"


def per_household_eers(results: dict, method: str) -> dict[str, np.ndarray]:
    """condition -> (folds,) EER % of one results.json row."""
    return {
        cond: 100 * np.asarray([s["eer"] for s in rows[method]["per_split"]])
        for cond, rows in results["results"].items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", type=Path, required=True, help="a corpus build (eval.npz)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--enroll", type=int, default=3)
    ap.add_argument("--households", type=int, default=10, help="report folds after grouping")
    ap.add_argument("--group", type=int, default=5, help="households per grouped fold")
    args = ap.parse_args()
    emb = EmbeddingSet.load(args.corpus / "eval.npz")
    voices = read_voices(args.corpus / "corpus" / "eval" / "voices.csv")
    n = args.households * args.group
    deployment = Deployment("household", args.k, args.enroll, report_folds=n)
    protocol = deployment_protocol(
        emb.utt_ids.tolist(), emb.speakers.tolist(), deployment, "report", voices=voices
    )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{deployment.stem}-report-x{n}.json"
    save_protocol(protocol, path)
    results_path = args.out / "results.json"
    if not results_path.is_file():
        subprocess.run(
            [sys.executable, "-m", "speakerrpl", "evaluate", "--embeddings",
             str(args.corpus / "eval.npz"), "--pool", str(args.corpus / "pool.npz"),
             "--protocol", str(path), "--out", str(args.out), "--methods", "cosine",
             "--models", "30", "--no-figures"],
            check=True,
        )  # fmt: skip
    results = json.loads(results_path.read_text())
    cos, dflt = per_household_eers(results, COSINE_ROW), per_household_eers(results, DEFAULT_ROW)
    print(f"{n} households of {args.k}; grouped: {args.households} folds of {args.group}")
    print("| condition | gap | max std, 1 household per fold | met | "
          f"max std, {args.group} per fold | met |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    met_single = met_grouped = 0
    for cond in cos:
        gap = float(cos[cond].mean() - dflt[cond].mean())
        single = max(float(cos[cond].std()), float(dflt[cond].std()))
        grouped = max(
            float(x.reshape(args.households, args.group).mean(axis=1).std())
            for x in (cos[cond], dflt[cond])
        )
        ok_single, ok_grouped = single < gap / 2, grouped < gap / 2
        met_single += ok_single
        met_grouped += ok_grouped
        print(f"| `{cond}` | {gap:+.2f} | {single:.2f} | {'met' if ok_single else '-'} | "
              f"{grouped:.2f} | {'met' if ok_grouped else '-'} |")  # fmt: skip
    print(f"met: {met_single} of {len(cos)} (1 per fold), {met_grouped} of {len(cos)} grouped")


if __name__ == "__main__":
    main()
