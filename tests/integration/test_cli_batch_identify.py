"""``speakerrpl identify FOLDER --out`` with CAM++ on a registry of two real people."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from service_support import copy_registry

from speakerrpl.cli import main

pytest_plugins = ("service_support",)  # the shared fixtures


def test_folder_to_csv_with_one_unreadable_clip(
    tmp_path: Path, base_registry: Path, clips: dict, capsys: pytest.CaptureFixture
) -> None:
    import torch

    registry = copy_registry(base_registry, tmp_path / "reg.db")
    folder = tmp_path / "inbox"
    folder.mkdir()
    for name in ("alice_test", "bob_test"):
        for i, p in enumerate(clips[name]):
            shutil.copy(p, folder / f"{name}{i}.wav")
    (folder / "broken.wav").write_bytes(b"RIFF" + b"\x00" * 40)
    out = tmp_path / "results.csv"
    threads = torch.get_num_threads()
    try:
        code = main(["identify", "--registry", str(registry), str(folder), "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert code == 1 and "1 clip(s) could not be read" in capsys.readouterr().out
    with out.open() as f:
        rows = {Path(r["file"]).stem: r for r in csv.DictReader(f)}
    assert rows["broken"]["speaker"] == "" and rows["broken"]["error"].startswith("Audio")
    assert rows["alice_test0"]["speaker"] == "alice"
    assert [rows[f"bob_test{i}"]["speaker"] for i in range(2)] == ["bob", "bob"]
    assert all(r["error"] == "" for k, r in rows.items() if k != "broken")
