"""Batch identification (``speakerrpl identify DIR --out``): one row per clip, bad clips in rows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speakerrpl.cli.batch import collect_files, identify_files, run_batch
from speakerrpl.errors import InvalidInputError, RegistryError
from speakerrpl.service.engine import SpeakerEngine
from speakerrpl.service.settings import ServiceSettings
from toy_audio import ToneFrontend, tone


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> SpeakerEngine:
    settings = ServiceSettings(min_enroll_speech=0)  # tones are not speech
    eng = SpeakerEngine(tmp_path_factory.mktemp("batch") / "reg.db", settings,
                        frontend=ToneFrontend())  # fmt: skip
    eng.enroll("alice", [tone(300), tone(305)])
    return eng


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """alice, a stranger, a corrupt file, a silent one and a non-audio file, in nested folders."""
    (tmp_path / "clips" / "more").mkdir(parents=True)
    sf.write(tmp_path / "clips" / "a_alice.wav", tone(300), 16000)
    sf.write(tmp_path / "clips" / "more" / "b_stranger.flac", tone(2500, rate=22050), 22050)
    (tmp_path / "clips" / "c_corrupt.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    sf.write(tmp_path / "clips" / "d_silent.wav", np.zeros(16000, dtype=np.float32), 16000)
    (tmp_path / "clips" / "e_phone.m4a").write_bytes(b"\x00" * 64)  # a type libsndfile lacks
    (tmp_path / "clips" / "notes.txt").write_text("not audio")
    return tmp_path / "clips"


def test_folder_rows_report_bad_clips_without_aborting(engine: SpeakerEngine, folder: Path) -> None:
    files = collect_files([folder, folder / "missing.wav"])
    names = [f.name for f in files]
    assert names == ["a_alice.wav", "c_corrupt.wav", "d_silent.wav", "e_phone.m4a",
                     "b_stranger.flac", "missing.wav"]  # fmt: skip
    rows = {Path(r["file"]).name: r for r in identify_files(engine, files, batch=2)}
    assert rows["a_alice.wav"]["speaker"] == "alice" and rows["a_alice.wav"]["error"] is None
    assert rows["b_stranger.flac"]["speaker"] == "<unknown>"
    assert rows["a_alice.wav"]["confidence"] >= rows["a_alice.wav"]["threshold"]
    bad_rows = (("c_corrupt.wav", "AudioReadError"), ("d_silent.wav", "AudioTooShortError"),
                ("missing.wav", "AudioReadError"), ("e_phone.m4a", "AudioReadError"))  # fmt: skip
    for bad, what in bad_rows:
        assert rows[bad]["speaker"] is None and rows[bad]["error"].startswith(what), rows[bad]
    assert "ffmpeg" in rows["e_phone.m4a"]["error"]


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_out_file_and_exit_code(
    engine: SpeakerEngine, folder: Path, tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / f"results{suffix}"
    assert run_batch(engine, [folder], out=out) == 1  # some clips could not be read
    assert "5 row(s)" in capsys.readouterr().out
    if suffix == ".json":
        rows = json.loads(out.read_text())
    else:
        with out.open() as f:
            rows = list(csv.DictReader(f))
    assert [r["speaker"] or "" for r in rows] == ["alice", "", "", "", "<unknown>"]
    assert list(rows[0]) == ["file", "speaker", "confidence", "threshold", "error"]
    good = folder / "a_alice.wav"
    assert run_batch(engine, [good], out=out) == 0


def test_tab_lines_and_errors(engine: SpeakerEngine, folder: Path, capsys) -> None:
    assert run_batch(engine, [folder / "a_alice.wav", folder / "c_corrupt.wav"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t")[1] == "alice" and "threshold=" in lines[0]
    assert lines[1].split("\t")[1] == "-" and "error: AudioReadError" in lines[1]
    with pytest.raises(InvalidInputError, match=r"\.csv or \.json"):
        run_batch(engine, [folder], out=folder / "x.txt")


def test_empty_registry_fails_the_whole_call(tmp_path: Path, folder: Path) -> None:
    empty = SpeakerEngine(tmp_path / "empty.db", ServiceSettings(), frontend=ToneFrontend())
    with pytest.raises(RegistryError, match="no speakers"):
        identify_files(empty, collect_files([folder]))
