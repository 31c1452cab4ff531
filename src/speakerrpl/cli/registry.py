"""``speakerrpl enroll | identify | speakers | threshold``: the speaker registry from the shell.

Thin layer over :class:`speakerrpl.service.engine.SpeakerEngine`; engine settings come from the
``SPEAKERRPL_*`` environment variables (see :class:`~speakerrpl.service.settings.ServiceSettings`).
Only ``enroll`` creates a registry; the other commands refuse a missing ``--registry`` file, and
``identify`` / ``speakers list`` work on a read-only one.
"""

from __future__ import annotations

import argparse
import importlib
import json
from typing import Any

__all__ = ["register"]


def _engine(args: argparse.Namespace, create: bool = False) -> Any:
    """The engine of ``--registry``; only ``enroll`` (``create=True``) makes a new registry."""
    from speakerrpl.service.engine import SpeakerEngine
    from speakerrpl.service.settings import ServiceSettings, apply_torch_threads

    settings = ServiceSettings.from_env().with_overrides(
        frontend=getattr(args, "frontend", None),
        keep_audio=True if getattr(args, "keep_audio", False) else None,
    )
    apply_torch_threads(settings)
    return SpeakerEngine(args.registry, settings, create=create)


def _load(paths: list[str], max_seconds: float) -> list[Any]:
    from speakerrpl.audio import load_audio

    return [load_audio(p, max_duration=max_seconds) for p in paths]


def _enroll(args: argparse.Namespace) -> int:
    from speakerrpl.service.registry import validate_speaker_name

    name = validate_speaker_name(args.name)
    engine = _engine(args, create=True)
    waves = _load(args.files, engine.settings.max_clip_seconds)
    out = engine.enroll(name, waves, sources=[str(p) for p in args.files])
    n = {s["name"]: s["n_enrollments"] for s in engine.speakers()}[name]
    dup = f"; {out['duplicates']} clip(s) already enrolled" if out.get("duplicates") else ""
    print(
        f"enrolled {name!r}: {n} clip(s){dup}; {len(out['speakers'])} speaker(s); "
        f"model v{out['model_version']} ({out['kind']}) refit in {out['refit_seconds']:.2f} s"
        f" ({out.get('update', 'cold')}"
        + (", with channel copies)" if out.get("enrollment_copies") else ")")
    )
    for warning in out.get("warnings", []):
        if warning["code"] != "duplicate":  # duplicates are counted above
            print(f"warning: {warning['message']}")
    return 0


def _identify(args: argparse.Namespace) -> int:
    from speakerrpl.cli.batch import run_batch
    from speakerrpl.cli.stream import run_stream

    if args.stream:
        return run_stream(_engine(args), args.files, args)
    return int(run_batch(_engine(args), args.files, out=args.out, as_json=args.json))


def _speakers(args: argparse.Namespace) -> int:
    engine = _engine(args)
    if args.action == "remove":
        if not args.name:
            raise SystemExit("speakerrpl speakers remove: error: give the NAME to remove")
        out = engine.remove(args.name)
        print(f"removed {args.name!r}; {len(out['speakers'])} speaker(s) left, "
              f"model v{out['model_version']} ({out['kind']}, {out.get('update', 'cold')} "
              f"refit in {out['refit_seconds']:.2f} s)")  # fmt: skip
        if out.get("refit") == "failed":
            print(f"warning: the refit failed ({out['refit_error']}); identification uses the "
                  f"{out['identification']} until `speakerrpl speakers refit` works")  # fmt: skip
        return 0
    if args.action == "refit":
        out = engine.refit()
        print(f"refit: {len(out['speakers'])} speaker(s), model v{out['model_version']} "
              f"({out['kind']}) in {out['refit_seconds']:.2f} s")  # fmt: skip
        return 0
    rows = engine.speakers()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['name']}\t{row['n_enrollments']} clip(s)")
    if not rows:
        print("(no speakers enrolled)")
    return 0


def _threshold(args: argparse.Namespace) -> int:
    engine = _engine(args)
    out = engine.recalibrate(far=args.far, threshold=args.value)
    thr = engine.model().threshold
    print(f"threshold {thr:.4f} (model v{out['model_version']}, {out['kind']})")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--registry", required=True, help="speaker registry file (SQLite)")


def register(subparsers: Any) -> None:
    """Add the ``enroll``, ``identify``, ``speakers`` and ``threshold`` subcommands."""
    p = subparsers.add_parser("enroll", help="add or extend a speaker and refit")
    _common(p)
    p.add_argument("--name", required=True, help="speaker name (letters, digits, _ - . space)")
    p.add_argument("--frontend", default=None, help="embedding frontend (first enrollment)")
    p.add_argument("--keep-audio", action="store_true", help="also store the audio (biometric!)")
    p.add_argument("files", nargs="+", help="enrollment audio files")
    p.set_defaults(func=_enroll)

    p = subparsers.add_parser("identify", help="name the speaker of each clip or <unknown>")
    _common(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--out", default=None, help="write the rows to a .csv or .json file")
    p.add_argument("files", nargs="+", help="audio files or folders of them to identify")
    importlib.import_module("speakerrpl.cli.stream").add_stream_arguments(p)
    p.set_defaults(func=_identify)

    p = subparsers.add_parser("speakers", help="list, remove or refit enrolled speakers")
    _common(p)
    p.add_argument("action", choices=["list", "remove", "refit"],
                   help="refit: rebuild the model from the stored enrollments (after a failed "
                   "refit or a corrupt stored model)")  # fmt: skip
    p.add_argument("name", nargs="?", help="speaker to remove")
    p.add_argument("--json", action="store_true", help="print JSON (list)")
    p.set_defaults(func=_speakers)

    p = subparsers.add_parser("threshold", help="recalibrate the acceptance threshold")
    _common(p)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--far", type=float, help="target false-acceptance rate, e.g. 0.01")
    g.add_argument("--value", type=float, help="pin a fixed threshold instead")
    p.set_defaults(func=_threshold)
