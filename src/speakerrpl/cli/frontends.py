"""``speakerrpl frontends``: list the embedding frontends, their dim and availability."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``frontends`` subcommand."""
    parser = subparsers.add_parser(
        "frontends",
        help="list speaker-embedding frontends",
        description="List every registered frontend with its dimension and availability.",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print one line per frontend."""
    from speakerrpl.frontends import list_frontends

    rows = [
        (
            info.name,
            str(info.dim) if info.dim is not None else "model",
            "yes" if info.available else "no",
            info.reason or info.description,
        )
        for info in list_frontends()
    ]
    header = ("NAME", "DIM", "AVAILABLE", "NOTES")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
            + "  "
            + row[3]
        )
    return 0
