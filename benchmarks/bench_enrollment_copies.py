"""What multi-condition enrollment costs a real enrollment: copies made, embedded, refit.

Enrolls the two real people of Debian's pocketsphinx-testdata (4 clips each) into a fresh
registry through :class:`~speakerrpl.service.engine.SpeakerEngine` with CAM++, the default
identifier and the default pool, once with ``enrollment_copies`` on and once off; ``--runs``
times each (a fresh registry per run, the first run's pool and babble talkers cached before any
timing). Per setting: the median wall time of each enrollment call, of making the channel copies
of one clip (:func:`speakerrpl.synth.enrollment_copies.enrollment_copies`) and of embedding
them, and the model's ``enrollment_copies``.

Usage:  python benchmarks/bench_enrollment_copies.py [--runs 3] [--threads 1]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import base_parser, machine_info, print_table, set_threads, write_json

PS_DATA = Path("/usr/share/pocketsphinx/test/data")


def people() -> dict[str, list[Path]]:
    cards = sorted((PS_DATA / "cards").glob("*.wav"))[:4]
    books = sorted((PS_DATA / "librivox").glob("*.wav"))[:4]
    if len(cards) < 4 or len(books) < 4:
        raise SystemExit("needs pocketsphinx-testdata: run scripts/install_system_deps.sh")
    return {"alice": cards, "bob": books}


def enroll_once(copies: bool, clips: dict[str, list[Any]]) -> dict[str, Any]:
    from speakerrpl.service.engine import SpeakerEngine
    from speakerrpl.service.settings import ServiceSettings

    with tempfile.TemporaryDirectory() as tmp:
        engine = SpeakerEngine(Path(tmp) / "r.db", ServiceSettings(enrollment_copies=copies))
        row: dict[str, Any] = {"copies": copies}
        for name, waves in clips.items():
            start = time.perf_counter()
            out = engine.enroll(name, waves)
            row[f"enroll {name} s"] = time.perf_counter() - start
            row[f"refit {name} s"] = float(out["refit_seconds"])
        row["model uses copies"] = bool(out["enrollment_copies"])
    return row


def main() -> None:
    ap = base_parser(__doc__ or "", "benchmarks/results/enrollment_copies.json")
    args = ap.parse_args()
    set_threads(args.threads)
    from speakerrpl.audio import load_audio
    from speakerrpl.frontends import get_frontend
    from speakerrpl.synth.enrollment_copies import babble_talkers, enrollment_copies
    from speakerrpl.synth.pool import default_pool

    clips = {n: [load_audio(p) for p in paths] for n, paths in people().items()}
    frontend = get_frontend("campplus")
    default_pool(frontend)  # cached before any timing, as a running service has it
    talkers = babble_talkers()
    wave = clips["alice"][0]
    make, embed = [], []
    for _ in range(args.runs or 3):
        start = time.perf_counter()
        made = enrollment_copies(wave, "bench", talkers)
        make.append(time.perf_counter() - start)
        start = time.perf_counter()
        frontend.embed(made)
        embed.append(time.perf_counter() - start)
    per_clip = {"clip s": wave.size / 16000, "make 7 copies s": statistics.median(make),
                "embed 7 copies s": statistics.median(embed)}  # fmt: skip
    print_table([per_clip], list(per_clip))
    rows = []
    for copies in (False, True):
        runs = [enroll_once(copies, clips) for _ in range(args.runs or 3)]
        row = {"copies": copies, "model uses copies": runs[-1]["model uses copies"]}
        rows.append(row | {k: statistics.median(r[k] for r in runs) for k in runs[0]
                           if k.endswith(" s")})  # fmt: skip
    print_table(rows, list(rows[0]))
    write_json(args.out, {"machine": machine_info(), "per_clip": per_clip, "enrollments": rows})


if __name__ == "__main__":
    main()
