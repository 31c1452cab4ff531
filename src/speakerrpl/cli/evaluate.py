"""``speakerrpl evaluate``: every method x split of a protocol -> results.json/.md + figures."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys

from speakerrpl.errors import InvalidInputError
from speakerrpl.nn.methods import METHODS

_BASELINES = tuple(METHODS)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand."""
    parser = subparsers.add_parser(
        "evaluate",
        help="run the paper tables (all methods x splits) over a protocol",
        description=(
            "Fit every method on every split of PROTO.json (enrollment embeddings + synthetic "
            "pool) and score the split's known and unknown test utterances; the shipped default "
            "(OpenSetSpeakerIdentifier()) is always one more row. Writes "
            "results.json, results.md and figures/ to --out. Finished (method, split) fits are "
            "stored in --out/units and skipped when re-run with the same inputs."
        ),
    )
    parser.add_argument("--embeddings", required=True, help="embeddings .npz of the corpus")
    parser.add_argument("--pool", required=True, help="synthetic negative-pool embeddings .npz")
    parser.add_argument("--protocol", required=True, help="protocol JSON (speakerrpl protocol)")
    parser.add_argument("--out", required=True, help="results directory")
    parser.add_argument(
        "--cohort",
        default=None,
        help="embeddings .npz of other voices (none of the protocol's) that the AS-norm rows "
        "normalise against (default: the pool's voices)",
    )
    parser.add_argument(
        "--methods",
        default=",".join(_BASELINES),
        help=f"comma-separated methods (default all: {','.join(_BASELINES)})",
    )
    parser.add_argument("--models", type=int, default=30, help="v2 ensemble size M (default 30)")
    parser.add_argument(
        "--seeds", type=int, default=3, help="seeds of each single-adapter baseline (default 3)"
    )
    parser.add_argument(
        "--selection-r", type=int, default=None, help="members dropped per criterion (M // 3)"
    )
    parser.add_argument("--ablation", action="store_true", help="also run the v2 ablations")
    parser.add_argument(
        "--conditions", default=None, help="comma-separated test conditions (default: all)"
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="training epochs (default: the identifier's)"
    )
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--seed", type=int, default=0, help="base random seed (default 0)")
    parser.add_argument(
        "--identifier-params",
        default=None,
        help="extra identifier settings as JSON, e.g. '{\"n_unknown\": 20}'",
    )
    parser.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    parser.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="one Ray task per method x split (needs speakerrpl[ray]); ADDRESS, else local",
    )
    parser.add_argument(
        "--markdown",
        default=None,
        help="also publish the report to this .md (figures copied beside it), e.g. docs/results.md",
    )
    parser.set_defaults(func=run)


def _split(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _identifier_params(args: argparse.Namespace) -> dict[str, object]:
    params: dict[str, object] = {}
    if args.identifier_params:
        try:
            params = json.loads(args.identifier_params)
        except ValueError as exc:
            raise InvalidInputError(f"--identifier-params is not JSON: {exc}") from exc
        if not isinstance(params, dict):
            raise InvalidInputError("--identifier-params must be a JSON object")
    if args.epochs is not None:
        params["epochs"] = args.epochs
    if args.device != "cpu":
        params["device"] = args.device
    return params


def _command(args: argparse.Namespace) -> str:
    """The equivalent command line, for the report."""
    parts = ["speakerrpl", "evaluate"]
    for name in ("embeddings", "pool", "protocol", "out", "methods", "models", "seeds"):
        parts += [f"--{name}", str(getattr(args, name))]
    optional = {
        "--cohort": args.cohort,
        "--selection-r": args.selection_r,
        "--conditions": args.conditions,
        "--epochs": args.epochs,
        "--identifier-params": args.identifier_params,
        "--markdown": args.markdown,
    }
    for flag, value in optional.items():
        if value is not None:
            parts += [flag, str(value)]
    if args.device != "cpu":
        parts += ["--device", args.device]
    if args.seed != 0:
        parts += ["--seed", str(args.seed)]
    parts += [flag for flag, on in (("--ablation", args.ablation),) if on]
    return shlex.join(parts)


class _OncePerMessage(logging.Filter):
    """Let each distinct log message through once (fits repeat the same warnings)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[str, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def run(args: argparse.Namespace) -> int:
    """Run the evaluation, print the main table and where the report is."""
    from pathlib import Path

    from speakerrpl.evaluation.experiments import EvalConfig, run_evaluation
    from speakerrpl.evaluation.report import publish_markdown, render_summary

    config = EvalConfig(
        methods=_split(args.methods) or (),
        n_models=args.models,
        n_seeds=args.seeds,
        selection_r=args.selection_r,
        ablation=args.ablation,
        default_row=True,  # the shipped OpenSetSpeakerIdentifier() is always a row
        conditions=_split(args.conditions),
        random_state=args.seed,
        identifier_params=_identifier_params(args),
    )
    runner = None
    if args.ray:
        from speakerrpl.evaluation.ray_runner import ray_unit_runner

        runner = ray_unit_runner(args.ray, gpus_per_task=1.0 if args.device != "cpu" else 0.0)
    once, handlers = _OncePerMessage(), list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(once)
    try:
        results = run_evaluation(
            args.embeddings,
            args.pool,
            args.protocol,
            args.out,
            config,
            progress=sys.stderr.isatty(),
            command=_command(args),
            figures=not args.no_figures,
            runner=runner,
            cohort=args.cohort,
        )
    finally:  # in-process callers keep their logging as it was
        for handler in handlers:
            handler.removeFilter(once)
    out = Path(args.out)
    print(render_summary(results))
    print(f"report: {out / 'results.md'}  data: {out / 'results.json'}  figures: {out / 'figures'}")
    if args.markdown:
        print(f"published: {publish_markdown(out, args.markdown)}")
    return 0
