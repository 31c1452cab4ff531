"""``speakerrpl embed`` and ``speakerrpl frontends`` end to end (in-process CLI)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speakerrpl.cli import main
from speakerrpl.embeddings import EmbeddingSet


def bad_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.wav"
    if kind == "unreadable":
        path.write_text("definitely not audio")
    elif kind == "empty":
        sf.write(path, np.zeros(0), 16000)
    elif kind == "short":
        sf.write(path, np.full(3200, 0.3), 16000)
    elif kind == "nonfinite":
        sf.write(path, np.full(16000, np.inf, dtype=np.float32), 16000, subtype="FLOAT")
    elif kind == "long":
        sf.write(path, np.random.default_rng(0).uniform(-0.2, 0.2, 3 * 8000), 8000)
    return path


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("missing", "does not exist"),
        ("unreadable", "AudioReadError"),
        ("empty", "AudioTooShortError"),
        ("short", "AudioTooShortError"),
        ("nonfinite", "AudioNonFiniteError"),
        ("long", "AudioTooLongError"),
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, error: str
) -> None:
    path = bad_file(tmp_path, kind)
    code = main(
        [
            "embed",
            str(path),
            "--out",
            str(tmp_path / "out.npz"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--max-duration",
            "2",
            "--threads",
            "1",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and error in err and "Traceback" not in err
    assert not (tmp_path / "out.npz").exists()


def test_embed_folder_of_mixed_formats_and_rates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pocketsphinx_speakers: dict[str, list[Path]]
) -> None:
    root = tmp_path / "audio"
    formats = [(".wav", 16000, "PCM_16"), (".flac", 44100, "PCM_24"), (".ogg", 22050, "VORBIS")]
    for speaker, files in pocketsphinx_speakers.items():
        (root / speaker).mkdir(parents=True)
        for index, source in enumerate(files[:3]):
            wave, rate = sf.read(source)
            suffix, new_rate, subtype = formats[index]
            resampled = np.interp(
                np.arange(int(len(wave) * new_rate / rate)) * rate / new_rate,
                np.arange(len(wave)),
                wave,
            )
            stereo = np.stack([resampled, resampled], axis=1) if index == 1 else resampled
            sf.write(root / speaker / f"{source.stem}{suffix}", stereo, new_rate, subtype=subtype)
    shutil.copy(bad_file(tmp_path, "unreadable"), root / "cards" / "broken.wav")
    out = tmp_path / "emb.npz"
    args = ["embed", str(root), "--out", str(out), "--cache-dir", str(tmp_path / "c")]
    code = main([*args, "--threads", "1"])
    captured = capsys.readouterr()
    assert code == 1  # one file failed; the rest were written
    assert "cards-broken" in captured.err and "AudioReadError" in captured.err
    assert "6 embeddings of dim 192" in captured.out
    emb = EmbeddingSet.load(out)
    assert emb.embeddings.shape == (6, 192) and emb.frontend == "campplus"
    assert sorted(set(emb.speakers.tolist())) == ["cards", "librivox"]
    unit = emb.embeddings / np.linalg.norm(emb.embeddings, axis=1, keepdims=True)
    sims = unit @ unit.T
    same = emb.speakers[:, None] == emb.speakers[None, :]
    assert sims[same & ~np.eye(6, dtype=bool)].min() > sims[~same].max()


def test_frontends_command_lists_all(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frontends"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["NAME", "DIM", "AVAILABLE"]
    names = {line.split()[0] for line in lines[1:]}
    assert names == {"campplus", "resemblyzer", "onnx", "wavlm"}
    campplus = next(line for line in lines if line.startswith("campplus"))
    assert campplus.split()[1:3] == ["192", "yes"]


def test_unknown_frontend_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["embed", str(tmp_path), "--frontend", "nope", "--out", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "valid names" in err and len(err.strip().splitlines()) == 1
