"""``speakerrpl diarize`` end to end on real recordings: table, RTTM, JSON, registry, errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from service_support import run_cli

from speakerrpl.diarization import read_rttm

pytest.importorskip("onnxruntime")
pytest_plugins = ("service_support", "diarize_support")


def test_anonymous_rttm_and_table(
    tmp_path: Path, dialogue: tuple[Path, list], capsys: pytest.CaptureFixture[str]
) -> None:
    path, ref = dialogue
    rttm = tmp_path / "out.rttm"
    code, out, _ = run_cli(capsys, "diarize", path, "--rttm", rttm, "--threads", "1")
    assert code == 0
    turns = read_rttm(rttm)["dialogue"]
    assert turns and all(label.startswith("SPEAKER_") for *_, label in turns)
    for line in rttm.read_text().splitlines():
        fields = line.split()
        assert len(fields) == 10 and fields[:3] == ["SPEAKER", "dialogue", "1"]
        assert fields[5:7] == ["<NA>", "<NA>"] and fields[8:] == ["<NA>", "<NA>"]
    rows = [line.split("\t") for line in out.splitlines()]
    assert len(rows) == len(turns) and all(r[0] == str(path) for r in rows)
    assert turns[-1][1] <= ref[-1][1] + 0.5


def test_registry_names_speakers_read_only(
    tmp_path: Path,
    dialogue: tuple[Path, list],
    base_registry: Path,
    cli_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from service_support import copy_registry

    reg = copy_registry(base_registry, tmp_path / "r.db")
    before = hashlib.sha256(reg.read_bytes()).hexdigest()
    path, _ = dialogue
    code, out, _ = run_cli(capsys, "diarize", path, path, "--registry", reg, "--json")
    assert code == 0
    results = json.loads(out)
    assert len(results) == 2 and results[0]["segments"] == results[1]["segments"]
    labels = set(results[0]["speakers"])
    assert {"alice", "bob"} <= labels
    assert labels - {"alice", "bob"} and all(
        lab.startswith("SPEAKER_") for lab in labels - {"alice", "bob"}
    )
    assert results[0]["model_version"] >= 1
    named = [s for s in results[0]["segments"] if s["label"] == "alice"]
    assert all(isinstance(s["score"], float) for s in named)
    assert hashlib.sha256(reg.read_bytes()).hexdigest() == before


def test_errors_are_one_line_and_exit_2(
    tmp_path: Path, dialogue: tuple[Path, list], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....not a wave")
    code, _, err = run_cli(capsys, "diarize", bad)
    assert code == 2 and err.count("\n") == 1 and "not a readable audio file" in err
    code, _, err = run_cli(capsys, "diarize", dialogue[0], "--registry", tmp_path / "none.db")
    assert code == 2 and "does not exist" in err
    assert not (tmp_path / "none.db").exists()
    code, _, err = run_cli(capsys, "diarize", dialogue[0], "--device", "tpu")
    assert code == 2 and err.count("\n") == 1 and "expected device" in err


def test_silence_prints_no_speech(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np
    import soundfile as sf

    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(3 * 16000, np.float32), 16000)
    code, out, _ = run_cli(capsys, "diarize", quiet, "--json")
    assert code == 0 and json.loads(out)[0]["segments"] == []
    code, out, _ = run_cli(capsys, "diarize", quiet)
    assert "(no speech found)" in out
