"""Split noise of household comparisons: one household per report fold against several.

The corpus goal "std of EER over report folds below half the gap between cosine and the
default" fails for households of 4 because households differ far more than methods do. This
draws ``--draws`` households of a deployment from the ``--role`` fold stream (the same draws,
in order, as the suite's protocol of that role), evaluates them with ``speakerrpl evaluate``
(cosine on raw embeddings and the default), and prints per condition the gap (cosine minus
default, mean EER over all households) and, for each ``--groups`` size G, the larger of the
two methods' std over folds of G consecutive households whose EERs are averaged. Used on
development draws to choose ``deployments.HOUSEHOLDS_PER_FOLD``.

Run (from benchmarks/household, like its other scripts):
      PYTHONPATH=../../src python households_per_fold.py --role dev \
          --corpus /tmp/i13corpus/full --out /tmp/i13corpus/full/eval-k4e3-dev-x100
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from std_goal import COSINE_ROW, DEFAULT_ROW, fold_eers  # type: ignore[import-not-found]

from speakerrpl.data.corpus_files import read_voices
from speakerrpl.data.deployments import Deployment, deployment_protocol
from speakerrpl.data.protocols import save_protocol
from speakerrpl.embeddings import EmbeddingSet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", type=Path, required=True, help="a corpus build (eval.npz)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--enroll", type=int, default=3)
    ap.add_argument("--draws", type=int, default=100, help="households drawn in all")
    ap.add_argument(
        "--groups", type=int, nargs="+", default=[1, 2, 5, 10], help="households per fold"
    )
    ap.add_argument("--role", choices=("dev", "report"), default="report", help="fold stream")
    args = ap.parse_args()
    if any(args.draws % g for g in args.groups):
        ap.error(f"every --groups value must divide --draws {args.draws}")
    emb = EmbeddingSet.load(args.corpus / "eval.npz")
    voices = read_voices(args.corpus / "corpus" / "eval" / "voices.csv")
    n = args.draws
    deployment = Deployment("household", args.k, args.enroll, dev_folds=n, report_folds=n)
    protocol = deployment_protocol(
        emb.utt_ids.tolist(), emb.speakers.tolist(), deployment, args.role, voices=voices
    )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{deployment.stem}-{args.role}-x{n}.json"
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
    # one draw per fold here, so a fold's EER is one household's
    cos, dflt = fold_eers(results, COSINE_ROW), fold_eers(results, DEFAULT_ROW)
    print(f"{n} {args.role} households of {args.k}; cosine EER, gap cosine - default, and the "
          "larger std of the two over folds of G households (* where std < gap / 2)")  # fmt: skip
    print("| condition | cosine | default | gap | " + " | ".join(f"G = {g}" for g in args.groups)
          + " |")  # fmt: skip
    print("|---|---|---|---|" + "---|" * len(args.groups))
    met = dict.fromkeys(args.groups, 0)
    for cond in cos:
        gap = float(cos[cond].mean() - dflt[cond].mean())
        cells = []
        for g in args.groups:
            std = max(float(x.reshape(-1, g).mean(axis=1).std()) for x in (cos[cond], dflt[cond]))
            met[g] += std < gap / 2
            cells.append(f"{std:.2f}{' *' if std < gap / 2 else ''}")
        print(f"| `{cond}` | {cos[cond].mean():.2f} | {dflt[cond].mean():.2f} | {gap:+.2f} | "
              + " | ".join(cells) + " |")  # fmt: skip
    print("| conditions met | | | | " + " | ".join(f"{met[g]} of {len(cos)}" for g in args.groups)
          + " |")  # fmt: skip


if __name__ == "__main__":
    main()
