from pathlib import Path

import pytest

from speakerrpl.data.kaldi import Utterance, read_data_dir, write_data_dir
from speakerrpl.errors import CorpusLayoutError


def test_round_trip_keeps_ids_paths_and_speakers(tmp_path: Path) -> None:
    wav = tmp_path / "audio" / "a1.wav"
    wav.parent.mkdir()
    wav.write_bytes(b"")
    outside = tmp_path.parent / "elsewhere.wav"
    utts = [Utterance("b-1", outside, "b"), Utterance("a-1", wav, "a"), Utterance("a-2", wav, "a")]
    write_data_dir(tmp_path, utts)
    assert (tmp_path / "wav.scp").read_text().splitlines()[0] == "a-1 audio/a1.wav"
    assert (tmp_path / "spk2utt").read_text() == "a a-1 a-2\nb b-1\n"
    back = read_data_dir(tmp_path)
    assert [(u.utt_id, u.speaker) for u in back] == [("a-1", "a"), ("a-2", "a"), ("b-1", "b")]
    assert back[0].path.resolve() == wav.resolve()
    assert back[2].path == outside.resolve()


@pytest.mark.parametrize(
    ("wav_scp", "utt2spk", "message"),
    [
        (None, "a a\n", "missing wav.scp"),
        ("a x.wav\n", None, "missing utt2spk"),
        ("a x.wav\nb y.wav\n", "a s\n", "no speaker"),
        ("a x.wav\na y.wav\n", "a s\n", "duplicate key"),
        ("a sox x.wav - |\n", "a s\n", "piped command"),
        ("a\n", "a s\n", "expected '<key> <value>'"),
    ],
)
def test_malformed_dirs_name_the_problem(
    tmp_path: Path, wav_scp: str | None, utt2spk: str | None, message: str
) -> None:
    if wav_scp is not None:
        (tmp_path / "wav.scp").write_text(wav_scp)
    if utt2spk is not None:
        (tmp_path / "utt2spk").write_text(utt2spk)
    with pytest.raises(CorpusLayoutError, match=message):
        read_data_dir(tmp_path)
