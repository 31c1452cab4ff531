"""``speakerrpl identify --stream FILE``: replay files in real-time chunks through
:class:`speakerrpl.streaming.StreamingIdentifier` and print each decision as it is made."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_stream_arguments", "run_stream"]


def add_stream_arguments(p: argparse.ArgumentParser) -> None:
    """The ``--stream`` options of ``speakerrpl identify``."""
    p.add_argument("--stream", action="store_true",
                   help="replay each file in real-time chunks, print each decision")  # fmt: skip
    p.add_argument("--chunk-ms", type=float, default=100.0, help="stream chunk length (ms)")
    p.add_argument("--min-speech", type=float, default=1.5,
                   help="seconds of speech before the first decision (default 1.5)")  # fmt: skip
    p.add_argument("--update-every", type=float, default=0.5,
                   help="seconds of more speech between updated decisions (0: none)")  # fmt: skip
    p.add_argument("--no-realtime", action="store_true", help="replay as fast as possible")


def _line(file: str, d: Any, final: bool) -> str:
    what = "final" if final else f"decision {d.index}"
    return (f"{file}\t{what}\tt={d.stream_seconds:.2f}s\tspeech={d.speech_seconds:.2f}s\t"
            f"{d.speaker}\tconfidence={d.confidence:.4f}\tthreshold={d.decision.threshold:.4f}\t"
            f"compute={d.compute_seconds * 1000:.0f}ms")  # fmt: skip


def run_stream(engine: Any, paths: Sequence[str | Path], args: argparse.Namespace) -> int:
    """Stream every file; returns 0 (1 when a file had too little speech for any decision)."""
    from speakerrpl.audio import load_audio
    from speakerrpl.errors import InvalidInputError
    from speakerrpl.streaming import StreamingIdentifier

    if not args.chunk_ms > 0:
        raise InvalidInputError(f"--chunk-ms must be > 0, got {args.chunk_ms}")
    sid = StreamingIdentifier(engine.model(), engine.frontend, min_speech=args.min_speech,
                              update_every=args.update_every)  # fmt: skip
    step = max(1, int(args.chunk_ms * 16))
    code = 0
    for path in paths:
        wave = load_audio(path, min_duration=0, max_duration=engine.settings.max_clip_seconds)
        sid.reset()
        start = time.monotonic()
        for i in range(0, wave.size, step):
            if not args.no_realtime:
                time.sleep(max(0.0, start + i / 16000 - time.monotonic()))
            made = len(sid.decisions)
            sid.feed(wave[i : i + step])
            for d in sid.decisions[made:]:
                print(_line(str(path), d, False), flush=True)
        last = sid.finish() or sid.decision
        if last is None:
            print(f"{path}\tno decision: {sid.speech_seconds:.2f} s of speech, "
                  f"{args.min_speech:g} s needed")  # fmt: skip
            code = 1
        elif args.json:
            print(json.dumps({"file": str(path), **last.decision.to_dict(),
                              "speech_seconds": last.speech_seconds,
                              "decisions": len(sid.decisions)}))  # fmt: skip
        else:
            print(_line(str(path), last, True), flush=True)
    return code
