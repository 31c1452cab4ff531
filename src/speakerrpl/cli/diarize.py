"""``speakerrpl diarize``: who spoke when, named from a registry or anonymous.

Thin layer over :class:`speakerrpl.diarization.Diarizer`. With ``--registry`` the registry's
committed model names the speakers (read-only, loaded as ``speakerrpl identify`` does); an
empty registry, or none, gives anonymous ``SPEAKER_xx`` labels only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _model_and_frontend(args: argparse.Namespace) -> tuple[Any, Any]:
    """The registry's committed model (or None when empty) and its frontend, on ``--device``."""
    from speakerrpl.cli.registry import _engine
    from speakerrpl.errors import RegistryError
    from speakerrpl.frontends import get_frontend

    if not Path(args.registry).is_file():
        raise RegistryError(f"registry {args.registry!r} does not exist")
    engine = _engine(args)
    try:
        model = engine.model()
    except RegistryError:
        print(f"speakerrpl diarize: registry {args.registry} is empty; labels are anonymous",
              file=sys.stderr)  # fmt: skip
        model = None
    if args.device == "cpu":
        return model, engine.frontend
    return model, get_frontend(engine.settings.frontend, device=args.device)


def _run(args: argparse.Namespace) -> int:
    from speakerrpl.diarization import Diarizer, to_json, to_rttm
    from speakerrpl.runtime import resolve_device

    resolve_device(args.device)  # a bad or absent device is an error before any work
    model, frontend = (None, None)
    if args.registry:
        model, frontend = _model_and_frontend(args)
    diarizer = Diarizer(frontend=frontend, device=args.device, num_threads=args.threads)
    results, rttm = [], []
    for path in args.files:
        result = diarizer.run(path, identifier=model)
        rttm.append(to_rttm(result.segments, Path(path).stem))
        results.append(to_json(result.segments, str(path), result.duration))
        if model is not None:
            results[-1]["model_version"] = model.version
    if args.rttm:
        Path(args.rttm).write_text("".join(rttm), encoding="utf-8")
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for res in results:
            if not res["segments"]:
                print(f"{res['file']}\t(no speech found)")
            for seg in res["segments"]:
                score = "" if seg["score"] is None else f"\tscore={seg['score']:.3f}"
                print(f"{res['file']}\t{seg['start']:.2f}\t{seg['end']:.2f}\t{seg['label']}{score}")
    return 0


def register(subparsers: Any) -> None:
    """Add the ``diarize`` subcommand."""
    p = subparsers.add_parser("diarize", help="who spoke when: enrolled names or SPEAKER_xx")
    p.add_argument("files", nargs="+", metavar="AUDIO", help="recordings to diarize")
    p.add_argument("--registry", default=None, help="speaker registry (SQLite) naming speakers")
    p.add_argument("--rttm", default=None, metavar="OUT.rttm", help="also write RTTM here")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--device", default="cpu",
                   help="device of the embedding stage: cpu (default), cuda or cuda:N")  # fmt: skip
    p.add_argument("--threads", type=int, default=None, help="torch threads for the embeddings")
    p.set_defaults(func=_run)
