"""Loaders of real corpora, each on a tiny fake copy in the published layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speakerrpl.data.loaders import (
    load_3dspeaker,
    load_esd,
    load_kaldi,
    load_voxceleb1,
    load_voxceleb2,
)
from speakerrpl.data.protocols import validate_protocol
from speakerrpl.errors import CorpusLayoutError


def _wav(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".m4a":  # the loader only lists files; no AAC encoder needed
        path.write_bytes(b"\x00\x00\x00\x18ftypM4A ")
    else:
        sf.write(path, np.zeros(160, dtype=np.float32), 16000)
    return str(path)


def _vox1(root: Path) -> None:
    trials = []
    for s in range(3):  # trial-list (Vox1-O-like) speakers: two videos, three files each
        spk = f"id1027{s}"
        files = [f"{spk}/vid{v}/{n:05d}.wav" for v in "AB" for n in range(1, 4)]
        for f in files:
            _wav(root / "wav" / f)
        trials += [f"1 {files[0]} {files[4]}", f"0 {files[1]} id1027{(s + 1) % 3}/vidA/00002.wav"]
        trials += [f"1 {f} {files[0]}" for f in files[1:]]
    for s in range(2):  # dev speakers: the unknowns
        for n in range(1, 3):
            _wav(root / "wav" / f"id1100{s}" / "vidX" / f"{n:05d}.wav")
    (root / "veri_test2.txt").write_text("\n".join(trials) + "\n")


def test_voxceleb1_vox1o_like(tmp_path: Path) -> None:
    _vox1(tmp_path)
    corpus = load_voxceleb1(tmp_path, n_enroll=2, n_folds=3, seed=1)
    validate_protocol(corpus.protocol, corpus.speakers())
    for fold in corpus.protocol.folds:
        assert fold.targets == ["id10270", "id10271", "id10272"]
        assert {corpus.speakers()[u] for u in fold.test_unknown} == {"id11000", "id11001"}
        for target, enrolled in fold.enroll.items():
            videos = {u.split("-")[1] for u in enrolled}
            tests = [u for u in fold.test_known if u.startswith(target)]
            assert len(videos) == 1 and len(enrolled) == 2
            assert videos.isdisjoint(u.split("-")[1] for u in tests)  # other session
            assert len(tests) == 3


def test_voxceleb1_missing_trial_file(tmp_path: Path) -> None:
    _vox1(tmp_path)
    (tmp_path / "veri_test2.txt").unlink()
    with pytest.raises(CorpusLayoutError, match=r"veri_test2.txt"):
        load_voxceleb1(tmp_path)
    with pytest.raises(CorpusLayoutError, match=r"ROOT/wav/<speaker id>"):
        load_voxceleb1(tmp_path / "nowhere")


def test_voxceleb1_malformed_trial_line(tmp_path: Path) -> None:
    _vox1(tmp_path)
    (tmp_path / "veri_test2.txt").write_text("1 only-two-fields\n")
    with pytest.raises(CorpusLayoutError, match="malformed trial"):
        load_voxceleb1(tmp_path)


def test_voxceleb2_watchlist(tmp_path: Path) -> None:
    for s in range(6):
        for n in range(4):
            _wav(tmp_path / "wav" / f"id0{s:04d}" / f"v{n % 2}" / f"{n:05d}.wav")
    corpus = load_voxceleb2(tmp_path, n_targets=2, n_enroll=2, n_folds=3)
    validate_protocol(corpus.protocol, corpus.speakers())
    fold = corpus.protocol.folds[0]
    assert len(fold.targets) == 2
    assert len({corpus.speakers()[u] for u in fold.test_unknown}) == 4
    with pytest.raises(CorpusLayoutError, match="VoxCeleb2 test"):
        load_voxceleb2(tmp_path / "empty")


def test_esd_enrolls_on_neutral_only(tmp_path: Path) -> None:
    for s in (1, 2, 11, 12):
        for emotion in ("Neutral", "Angry", "Happy", "Sad", "Surprise"):
            for n in range(3):
                spk = f"{s:04d}"
                _wav(tmp_path / spk / emotion / f"{spk}_{n:06d}.wav")
        (tmp_path / f"{s:04d}" / f"{s:04d}.txt").write_text("transcripts\n")
    corpus = load_esd(tmp_path, n_targets=2, n_enroll=3, n_folds=2)
    validate_protocol(corpus.protocol, corpus.speakers())
    for fold in corpus.protocol.folds:
        assert all("Neutral" in u for us in fold.enroll.values() for u in us)
        emotions = {u.split("-")[1] for u in fold.test_known}
        assert emotions == {"Angry", "Happy", "Sad", "Surprise"}  # all 3 neutral enrolled


def test_esd_unexpected_folder(tmp_path: Path) -> None:
    _wav(tmp_path / "0001" / "Bored" / "0001_000001.wav")
    with pytest.raises(CorpusLayoutError, match="Neutral"):
        load_esd(tmp_path)


def test_3dspeaker_subset(tmp_path: Path) -> None:
    trials = []
    for s in range(4):
        spk = f"3d{s:03d}"
        for n in range(3):
            _wav(tmp_path / "test" / "wav" / spk / "phone" / f"{n}.wav")
            _wav(tmp_path / "test" / "wav" / spk / "array" / f"{n}.wav")
            trials.append(f"{spk}/phone/{n}.wav {spk}/array/{n}.wav target")
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "trials_cross_device").write_text("\n".join(trials) + "\n")
    corpus = load_3dspeaker(tmp_path, n_targets=2, n_enroll=2, n_folds=2)
    validate_protocol(corpus.protocol, corpus.speakers())
    fold = corpus.protocol.folds[0]
    assert all("phone" in u for us in fold.enroll.values() for u in us)
    assert all("array" in u for u in fold.test_known + fold.test_unknown)
    with pytest.raises(CorpusLayoutError, match="trials_cross_distance"):
        load_3dspeaker(tmp_path, subset="cross_distance")


def test_kaldi_dir(tmp_path: Path) -> None:
    lines = [
        (f"s{s}-{n}", _wav(tmp_path / f"s{s}-{n}.wav"), f"s{s}") for s in range(4) for n in range(3)
    ]
    (tmp_path / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p, _ in lines))
    (tmp_path / "utt2spk").write_text("".join(f"{u} {s}\n" for u, _, s in lines))
    corpus = load_kaldi(tmp_path, n_targets=2, n_enroll=1, n_unknowns=2, n_folds=2)
    validate_protocol(corpus.protocol, corpus.speakers())
    assert len(corpus.utterances) == 12
    (tmp_path / "utt2spk").unlink()
    with pytest.raises(CorpusLayoutError, match="utt2spk"):
        load_kaldi(tmp_path, n_targets=2, n_enroll=1, n_unknowns=2)


def test_voxceleb2_published_m4a_is_refused_with_a_conversion_hint(tmp_path: Path) -> None:
    """libsndfile cannot decode AAC: the loader says so instead of listing undecodable files."""
    for s in range(6):
        for n in range(4):
            _wav(tmp_path / "aac" / f"id0{s:04d}" / f"v{n % 2}" / f"{n:05d}.m4a")
    with pytest.raises(CorpusLayoutError, match=r"\.m4a audio cannot be decoded.*ffmpeg"):
        load_voxceleb2(tmp_path)
