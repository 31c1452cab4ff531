"""The fair comparison and the ablation on the *report* half of the demo corpus.

Draws K-target protocols over the report speakers only (disjoint from the development half
every choice was made on), then runs the standard evaluation (``run_evaluation``, the code
path of ``speakerrpl evaluate``): every method fused at M = 30 and single, AS-norm cosine, the
default, the operating point; with ``--ablation`` also the v2 ablations.

Run:  PYTHONPATH=src python benchmarks/household/fair_tables.py --k 20 --folds 5 --ablation
"""

from __future__ import annotations

import argparse
from pathlib import Path

from study import DEMO, development_voices, protocol_for  # type: ignore[import-not-found]

from speakerrpl.data.protocols import save_protocol
from speakerrpl.embeddings import EmbeddingSet
from speakerrpl.evaluation import experiments
from speakerrpl.evaluation.experiments import EvalConfig, run_evaluation
from speakerrpl.frontends.base import torch_threads

OUT = Path("/tmp/i12r")
#: the ablations run here (the shared machine's budget): the parts of v2 issue 12 questions
KEPT_ABLATIONS = (
    "v2 without LogitNorm",
    "v2 with unit-sphere centre points + tau = 0.04",
    "v2 with the radius trained without momentum",
    "v2 with per-sample normalisation (LayerNorm)",
    "v2 with all three repairs (sphere + tau 0.04 + plain radius)",
    "v2 fusion without selection",
    "v2 selection keeping high-variance models",
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--ablation", action="store_true")
    ap.add_argument("--methods", nargs="+", default=["cosine", "softmax", "rpl_v1", "rpl_v2"])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument(
        "--cohort-voices",
        type=Path,
        default=None,
        metavar="FULL_EVAL_NPZ",
        help="AS-norm rows normalise against the development voices (the demo development half "
        "plus the voices only this --size full build's embeddings have; clean clips), none of "
        "them a report voice; default: the pool's voices",
    )
    args = ap.parse_args()
    for name in [n for n in experiments.ABLATIONS if n not in KEPT_ABLATIONS]:
        del experiments.ABLATIONS[name]
    emb = EmbeddingSet.load(DEMO / "eval.npz")
    proto = protocol_for(emb, "report", args.k, args.folds, 200 + args.k)
    out = args.out / f"k{args.k:03d}"
    out.mkdir(parents=True, exist_ok=True)
    save_protocol(proto, out / "protocol.json")
    cohort = None
    if args.cohort_voices:
        cohort = out / "cohort.npz"
        development_voices(emb, EmbeddingSet.load(args.cohort_voices)).save(cohort)
    config = EvalConfig(
        methods=tuple(args.methods), n_models=30, n_seeds=3, ablation=args.ablation,
        default_row=True,
    )  # fmt: skip
    command = f"PYTHONPATH=src python benchmarks/household/fair_tables.py --k {args.k} " + (
        f"--folds {args.folds}" + (" --ablation" if args.ablation else "")
    )
    if args.cohort_voices:
        command += f" --cohort-voices {args.cohort_voices}"
    with torch_threads(1):
        run_evaluation(
            DEMO / "eval.npz", DEMO / "pool.npz", out / "protocol.json", out, config,
            command=command, cohort=cohort,
        )  # fmt: skip
    print(out / "results.md")


if __name__ == "__main__":
    main()
