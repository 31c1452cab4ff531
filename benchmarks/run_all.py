"""Run every benchmark script in ``benchmarks/`` (what ``make bench`` runs; not a test).

Each ``bench_*.py`` runs in its own process, in name order, then ``gpu_check.sh`` (its
``--dry-run`` on a CPU); ``--quick`` and ``--device`` are
passed on to the scripts whose ``--help`` lists them. Each writes its JSON under ``results/``.

Usage:
    python benchmarks/run_all.py [--quick] [--device cpu|cuda] [--only ensemble enrollment]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def scripts(only: list[str] | None) -> list[Path]:
    """The benchmark scripts to run, optionally only those whose name contains a word of ``only``.

    Example:
        >>> [p.name for p in scripts(["ensemble"])]
        ['bench_ensemble.py']
    """
    found = sorted(HERE.glob("bench_*.py"))
    return [p for p in found if not only or any(word in p.stem for word in only)]


def supported_flags(script: Path) -> str:
    """The script's ``--help`` text (to see which shared flags it takes)."""
    done = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, check=False
    )
    return done.stdout


def command(script: Path, quick: bool, device: str) -> list[str]:
    """The command line for one script, with the shared flags it understands."""
    helptext = supported_flags(script)
    cmd = [sys.executable, str(script)]
    if quick and "--quick" in helptext:
        cmd.append("--quick")
    if device != "cpu" and "--device" in helptext:
        cmd += ["--device", device]
    return cmd


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", nargs="*", default=None, help="words of script names")
    args = parser.parse_args()
    failed = []
    for script in scripts(args.only):
        cmd = command(script, args.quick, args.device)
        print(f"\n=== {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        if subprocess.run(cmd, check=False).returncode != 0:
            failed.append(script.name)
        print(f"=== {script.name}: {time.perf_counter() - start:.0f} s", flush=True)
    # the GPU check: on a CPU its dry run (tiny sizes), so the GPU path keeps working
    gpu_cmd = ["bash", str(HERE / "gpu_check.sh")] + (["--dry-run"] if args.device == "cpu" else [])
    print(f"\n=== {' '.join(gpu_cmd[1:])}", flush=True)
    env = {**os.environ, "PY": sys.executable}  # the same interpreter as the other scripts
    if subprocess.run(gpu_cmd, check=False, env=env).returncode != 0:
        failed.append("gpu_check.sh")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
