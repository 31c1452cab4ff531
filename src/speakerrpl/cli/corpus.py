"""``speakerrpl corpus``: build the offline synthetic corpus and print its cosine baseline."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``corpus`` subcommand (``build``, ``baseline``)."""
    parser = subparsers.add_parser(
        "corpus",
        help="build the offline multi-voice speech corpus",
        description="Synthesise the offline corpus (DIR/eval, DIR/pool) and score it.",
    )
    sub = parser.add_subparsers(dest="corpus_command", metavar="ACTION")
    sub.required = True
    build = sub.add_parser(
        "build",
        help="synthesise DIR/eval and DIR/pool, then print the cosine baseline per condition",
    )
    build.add_argument("--out", required=True, help="output directory")
    build.add_argument(
        "--size", default="demo", choices=["demo", "full", "tiny"], help="default demo"
    )
    build.add_argument("--seed", type=int, default=0, help="default 0")
    build.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    build.add_argument(
        "--kokoro", type=int, default=0, help="extra Kokoro-82M pool voices (slow; default 0)"
    )
    build.add_argument(
        "--condition-tests",
        type=int,
        default=None,
        metavar="N",
        help="test-condition copies of the last N clean utterances of each eval voice "
        "(default: 3 of 8 for demo, 6 of 11 for full, 1 of 4 for tiny; 0: none)",
    )
    build.add_argument("--frontend", default="campplus", help="frontend of the baseline")
    build.add_argument("--no-baseline", action="store_true", help="skip the cosine baseline")
    build.set_defaults(func=run_build)
    base = sub.add_parser("baseline", help="cosine baseline per condition of embedded DIR/eval")
    base.add_argument("--embeddings", required=True, help=".npz of DIR/eval (speakerrpl embed)")
    base.add_argument("--data", default=None, help="DIR/eval, for voices.csv stratification")
    base.add_argument("--seed", type=int, default=0, help="default 0")
    base.add_argument(
        "--deployments",
        default="",
        help="also score these deployments' report folds: comma-separated stems "
        "(e.g. household-k4-e3,office-k20-e3) or 'all'",
    )
    base.add_argument("--role", default="report", choices=["dev", "report"], help="folds")
    base.set_defaults(func=run_baseline)
    dup = sub.add_parser(
        "duplicates", help="near-duplicate voices: centroid cosine of clean utterances"
    )
    dup.add_argument("--embeddings", required=True, help=".npz of DIR/eval")
    dup.add_argument("--pool", default=None, help=".npz of DIR/pool: eval-to-pool pairs too")
    dup.add_argument("--threshold", type=float, default=0.8, help="cosine (default 0.8)")
    dup.set_defaults(func=run_duplicates)


def _print_baseline(results: dict[str, dict[str, float]]) -> None:
    print(f"{'condition':<10} {'cosine EER %':>12} {'closed-set ACC %':>16}")
    for condition, row in results.items():
        print(f"{condition:<10} {100 * row['eer']:>12.2f} {100 * row['accuracy']:>16.2f}")


def run_build(args: argparse.Namespace) -> int:
    """Build, report the counts and time, then embed DIR/eval and print the baseline."""
    from pathlib import Path

    from speakerrpl.evaluation.baseline import embed_and_score_corpus
    from speakerrpl.synth.corpus import build_corpus

    info = build_corpus(
        args.out,
        size=args.size,
        seed=args.seed,
        jobs=args.jobs,
        kokoro=args.kokoro,
        n_condition_tests=args.condition_tests,
    )
    print(
        f"built {args.out}: {info['eval_voices']:.0f} eval voices "
        f"({info['eval_utterances']:.0f} clean utterances + {info['condition_copies']:.0f} "
        f"test-condition copies of {info['condition_tests']:.0f} test utterances), "
        f"{info['pool_voices']:.0f} pool voices "
        f"in {info['total_s']:.1f} s (synthesis {info['synthesis_s']:.1f} s)"
    )
    if args.no_baseline:
        return 0
    print(f"embedding with {args.frontend} for the cosine baseline ...", flush=True)
    results, failed = embed_and_score_corpus(
        Path(args.out) / "eval",
        args.frontend,
        seed=args.seed,
        jobs=args.jobs,
        progress=sys.stderr.isatty(),
    )
    if failed:
        print(f"speakerrpl corpus: {failed} utterance(s) could not be embedded", file=sys.stderr)
    print(
        f"cosine baseline ({args.frontend}; centroids of 3 clean enrollment utterances, "
        "20 targets (at most half the voices), every other voice unknown, the conditioned "
        "test utterances of each voice, 5 folds):"
    )
    _print_baseline(results)
    return 0


def _print_deployments(
    results: dict[str, dict[str, dict[str, float]]], role: str, draws: dict[str, int]
) -> None:
    stems = list(results)
    grouped = sorted({f"{draws[s]} per {s.split('-')[0]} fold" for s in stems})
    print(
        f"\ncosine EER % (mean +- std over the {role} folds; a fold's EER is the mean over its "
        f"draws: {', '.join(grouped)}) per deployment:"
    )
    print(f"{'condition':<10} " + " ".join(f"{s:>16}" for s in stems))
    for condition in next(iter(results.values()), {}):
        cells = [results[s][condition] for s in stems]
        row = " ".join(f"{100 * c['eer']:>8.2f} +- {100 * c['eer_std']:<5.2f}" for c in cells)
        print(f"{condition:<10} {row}")


def run_baseline(args: argparse.Namespace) -> int:
    """Print the cosine baseline of an embedded corpus (and of deployments, if asked)."""
    from speakerrpl.data.corpus_files import read_voices
    from speakerrpl.data.deployments import DEPLOYMENTS
    from speakerrpl.embeddings import EmbeddingSet
    from speakerrpl.errors import InvalidInputError
    from speakerrpl.evaluation.baseline import corpus_baseline, deployment_baseline

    voices = read_voices(args.data) if args.data else None
    embeddings = EmbeddingSet.load(args.embeddings)
    _print_baseline(corpus_baseline(embeddings, voices, seed=args.seed))
    if not args.deployments:
        return 0
    wanted = [s for s in args.deployments.split(",") if s]
    chosen = [d for d in DEPLOYMENTS if args.deployments == "all" or d.stem in wanted]
    if not chosen or (args.deployments != "all" and len(chosen) != len(wanted)):
        raise InvalidInputError(
            f"--deployments: expected 'all' or stems among {', '.join(d.stem for d in DEPLOYMENTS)}"
        )
    results = deployment_baseline(
        embeddings, voices, deployments=chosen, role=args.role, seed=args.seed
    )
    _print_deployments(results, args.role, {d.stem: d.draws_per_fold for d in chosen})
    return 0


def run_duplicates(args: argparse.Namespace) -> int:
    """Print voice pairs at or above the centroid-cosine threshold."""
    from speakerrpl.embeddings import EmbeddingSet
    from speakerrpl.evaluation.baseline import near_duplicates

    emb = EmbeddingSet.load(args.embeddings)
    sets: list[tuple[str, EmbeddingSet | None]] = [("eval-eval", None)]
    if args.pool:
        sets.append(("eval-pool", EmbeddingSet.load(args.pool)))
    for label, other in sets:
        pairs = near_duplicates(emb, other, threshold=args.threshold)
        print(f"{label}: {len(pairs)} pair(s) with centroid cosine >= {args.threshold}")
        for a, b, cos in pairs:
            print(f"  {a:<32} {b:<32} {cos:.3f}")
    return 0
