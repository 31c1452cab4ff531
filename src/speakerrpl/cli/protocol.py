"""``speakerrpl protocol``: make and check seeded few-shot open-set protocols."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``protocol`` subcommand (``make``, ``suite``, ``check``)."""
    parser = subparsers.add_parser(
        "protocol",
        help="make or check few-shot open-set protocols (JSON with a content hash)",
        description="Seeded few-shot open-set folds over the clean utterances of a corpus.",
    )
    sub = parser.add_subparsers(dest="protocol_command", metavar="ACTION")
    sub.required = True
    make = sub.add_parser("make", help="draw folds and write them as JSON")
    source = make.add_mutually_exclusive_group(required=True)
    source.add_argument("--embeddings", help="embeddings .npz (utt_ids, speakers)")
    source.add_argument("--data", help="Kaldi data dir (e.g. DIR/eval of the corpus)")
    make.add_argument("--voices", default=None, help="voices.csv for stratification")
    make.add_argument("--targets", type=int, required=True, help="K targets per fold")
    make.add_argument("--enroll", type=int, required=True, help="enrollment utterances each")
    make.add_argument("--unknowns", type=int, required=True, help="unknown speakers per fold")
    make.add_argument("--folds", type=int, default=5, help="default 5")
    make.add_argument("--seed", type=int, default=0, help="default 0")
    make.add_argument(
        "--conditions",
        default="auto",
        help="'auto' (clean + every condition complete over the conditioned utterances; "
        "default), 'all', or comma-separated names; with condition copies in the input and a "
        "condition other than clean, tests are the utterances that have copies and enrollment "
        "comes from the other clean ones",
    )
    make.add_argument(
        "--exclude", default="", help="comma-separated speakers never used (e.g. pool voices)"
    )
    make.add_argument("--out", required=True, help="output .json")
    make.set_defaults(func=run_make)
    suite = sub.add_parser(
        "suite",
        help="household (K 2/4/8, 1-5 clips) and office (K 20/50) protocols, dev + report folds",
    )
    source = suite.add_mutually_exclusive_group(required=True)
    source.add_argument("--embeddings", help="embeddings .npz (utt_ids, speakers)")
    source.add_argument("--data", help="Kaldi data dir (e.g. DIR/eval of the corpus)")
    suite.add_argument("--voices", default=None, help="voices.csv for stratification")
    suite.add_argument(
        "--only", default="", help="comma-separated stems, e.g. household-k4-e3 (default: all)"
    )
    suite.add_argument("--seed", type=int, default=0, help="default 0")
    suite.add_argument("--dev-folds", type=int, default=None, help="override the dev folds")
    suite.add_argument("--report-folds", type=int, default=None, help="override the report folds")
    suite.add_argument(
        "--draws-per-fold",
        type=int,
        default=None,
        help="override the draws per fold (default: 10 households per household fold, "
        "one office per office fold; a fold's metrics are the mean over its draws)",
    )
    suite.add_argument("--conditions", default="auto", help="as for make (default auto)")
    suite.add_argument("--out", required=True, help="output directory of <stem>-<role>.json")
    suite.set_defaults(func=run_suite)
    check = sub.add_parser("check", help="validate a protocol against embeddings or a corpus")
    check.add_argument("protocol", help="protocol .json")
    group = check.add_mutually_exclusive_group(required=True)
    group.add_argument("--embeddings", help="embeddings .npz")
    group.add_argument("--data", help="Kaldi data dir")
    check.set_defaults(func=run_check)


def _ids_and_speakers(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    if args.embeddings:
        from speakerrpl.embeddings import EmbeddingSet

        emb = EmbeddingSet.load(args.embeddings)
        return emb.utt_ids.tolist(), emb.speakers.tolist()
    from speakerrpl.data.kaldi import read_data_dir

    utts = read_data_dir(args.data)
    return [u.utt_id for u in utts], [u.speaker for u in utts]


def run_make(args: argparse.Namespace) -> int:
    """Draw the folds, save them, print a summary."""
    from pathlib import Path

    from speakerrpl.data.corpus_files import read_voices
    from speakerrpl.data.protocols import make_corpus_protocol, save_protocol

    ids, speakers = _ids_and_speakers(args)
    voices_path = args.voices or (
        str(Path(args.data) / "voices.csv")
        if args.data and (Path(args.data) / "voices.csv").is_file()
        else None
    )
    voices = read_voices(voices_path) if voices_path else None
    protocol = make_corpus_protocol(
        ids,
        speakers,
        n_targets=args.targets,
        n_enroll=args.enroll,
        n_unknowns=args.unknowns,
        n_folds=args.folds,
        seed=args.seed,
        voices=voices,
        conditions=args.conditions,
        exclude_speakers={s for s in args.exclude.split(",") if s},
    )
    digest = save_protocol(protocol, args.out)
    fold = protocol.folds[0]
    print(
        f"wrote {args.out}: {len(protocol.folds)} folds x {len(fold.targets)} targets "
        f"({len(fold.test_known)} known / {len(fold.test_unknown)} unknown test utterances in "
        f"fold 0), conditions {','.join(protocol.conditions)}, hash {digest[:12]}"
    )
    return 0


def _voices(args: argparse.Namespace) -> dict[str, dict[str, str]] | None:
    from pathlib import Path

    from speakerrpl.data.corpus_files import read_voices

    voices_path = args.voices or (
        str(Path(args.data) / "voices.csv")
        if args.data and (Path(args.data) / "voices.csv").is_file()
        else None
    )
    return read_voices(Path(voices_path).parent) if voices_path else None


def run_suite(args: argparse.Namespace) -> int:
    """Draw every deployment's dev and report folds and write them to ``--out``."""
    from dataclasses import replace

    from speakerrpl.data.deployments import DEPLOYMENTS, make_suite, save_suite
    from speakerrpl.errors import InvalidInputError

    wanted = [s for s in args.only.split(",") if s]
    deployments = [d for d in DEPLOYMENTS if not wanted or d.stem in wanted]
    unknown = set(wanted) - {d.stem for d in DEPLOYMENTS}
    if unknown:
        raise InvalidInputError(
            f"unknown deployments {sorted(unknown)}; expected among "
            f"{', '.join(d.stem for d in DEPLOYMENTS)}"
        )
    overrides = {
        "dev_folds": args.dev_folds,
        "report_folds": args.report_folds,
        "draws_per_fold": args.draws_per_fold,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if any(v < 1 for v in overrides.values()):
        raise InvalidInputError(
            f"--dev-folds, --report-folds and --draws-per-fold must be >= 1, got {overrides}"
        )
    deployments = [replace(d, **overrides) for d in deployments]
    ids, speakers = _ids_and_speakers(args)
    suite = make_suite(
        ids, speakers, deployments=deployments, seed=args.seed, voices=_voices(args),
        conditions=args.conditions,
    )  # fmt: skip
    hashes = save_suite(suite, args.out)
    for key, protocol in suite.items():
        fold = protocol.folds[0]
        draws = protocol.params["draws_per_fold"]
        print(
            f"{args.out}/{key}.json: {len(protocol.folds) // draws} folds of {draws} "
            f"draw{'s' if draws > 1 else ''}, "
            f"{len(fold.targets)} targets, {len(fold.test_unknown)} unknown tests in draw 0, "
            f"hash {hashes[key][:12]}"
        )
    return 0


def run_check(args: argparse.Namespace) -> int:
    """Load the protocol and validate it; errors exit 2 through the dispatcher."""
    from speakerrpl.data.protocols import load_protocol

    ids, speakers = _ids_and_speakers(args)
    protocol = load_protocol(args.protocol, dict(zip(ids, speakers, strict=True)))
    print(f"{args.protocol}: valid ({len(protocol.folds)} folds)")
    return 0
