"""The ``speakerrpl`` command: thin subcommands over the Python API.

Each subcommand lives in its own module of this package and exposes
``register(subparsers) -> None``, which adds its parser and sets ``func`` (a callable taking the
parsed ``argparse.Namespace`` and returning an exit code). Heavy imports happen inside ``func``,
so ``speakerrpl --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from speakerrpl import __version__
from speakerrpl.errors import SpeakerRPLError

# One entry per subcommand module of this package, in the order shown by --help.
COMMAND_MODULES: tuple[str, ...] = (
    "embed",
    "frontends",
    "registry",
    "serve",
    "wyoming",
    "evaluate",
    "corpus",
    "protocol",
    "diarize",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="speakerrpl",
        description="Few-shot open-set speaker identification (SpeakerRPL v2).",
    )
    parser.add_argument("--version", action="version", version=f"speakerrpl {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"speakerrpl.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; library errors become one line on stderr and exit code 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except SpeakerRPLError as exc:
        print(f"speakerrpl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"speakerrpl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
