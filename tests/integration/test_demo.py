"""``examples/demo.py`` end to end on the tiny corpus (TTS + CAM++: minutes, so ``slow``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_tiny_end_to_end_and_rerun_uses_caches(tmp_path):
    data, results, docs = tmp_path / "data", tmp_path / "results", tmp_path / "docs" / "results.md"
    cmd = [sys.executable, str(ROOT / "examples" / "demo.py"), "--size", "tiny"]
    cmd += ["--data", str(data), "--results", str(results), "--docs", str(docs)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "Identifying 7 test clips" in first.stdout
    assert "$ speakerrpl corpus build" in first.stdout
    data_json = json.loads((results / "results.json").read_text())
    assert data_json["protocol"]["n_folds"] == 2 and "rpl_v2_fusion_sel" in data_json["rows"]
    assert data_json["ablation"]
    assert "do not edit" in docs.read_text() and any((docs.parent / "figures").glob("det_*.png"))
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "cached in" in again.stdout and "$ speakerrpl corpus build" not in again.stdout
    assert "loaded the fitted identifier" in again.stdout
