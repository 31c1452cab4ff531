"""``benchmarks/gpu_check.sh --dry-run`` (what ``make bench`` runs) completes and reports every
figure the GPU check prints, so the GPU path cannot rot between the runs that have a GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_dry_run_reports_every_figure() -> None:
    env = {**os.environ, "PY": sys.executable}
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run"],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    for needle in ("fit rpl_v2 K=4 M=1", "fit rpl_v2 K=4 M=3", "x real time", "identify latency"):
        assert needle in done.stdout
    report = json.loads((ROOT / "results" / "gpu_check_dry_run.json").read_text())
    assert report["dry_run"] and report["extraction"]["clips"] == 8
    assert set(report["fit"]["fit_s"]) == {"1", "3"}
    assert report["identify"]["median_ms"] > 0
