"""The metadata files of a built corpus: ``voices.csv`` and ``utt2cond``."""

from __future__ import annotations

import csv
from pathlib import Path

from speakerrpl.errors import CorpusLayoutError

__all__ = ["VOICE_FIELDS", "read_utt2cond", "read_voices"]

VOICE_FIELDS = ("speaker", "engine", "voice", "language", "gender", "pool")


def read_voices(source: str | Path) -> dict[str, dict[str, str]]:
    """Read a voices table: speaker -> its row.

    Args:
        source: a corpus dir (its ``voices.csv`` is read) or the path of the CSV file itself.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "voices.csv").write_text("speaker,engine,voice,language,gender,pool\\n"
        ...                                   "a,flite,slt,en,F,eval\\n")
        >>> read_voices(d)["a"]["engine"]
        'flite'
    """
    path = Path(source)
    if path.is_dir():
        path = path / "voices.csv"
    if not path.is_file():
        raise CorpusLayoutError(f"{path} is missing (expected voices.csv or a corpus dir with one)")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not set(VOICE_FIELDS) <= set(rows[0]):
        raise CorpusLayoutError(f"{path} must have the columns {', '.join(VOICE_FIELDS)}")
    return {row["speaker"]: row for row in rows}


def read_utt2cond(data_dir: str | Path) -> dict[str, str]:
    """Read ``utt2cond`` (utterance -> condition); utterances without one are ``clean``.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "utt2cond").write_text("u1 clean\\nu1__crop crop\\n")
        >>> read_utt2cond(d)["u1__crop"]
        'crop'
    """
    path = Path(data_dir) / "utt2cond"
    if not path.is_file():
        return {}
    pairs = [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line]
    if any(len(p) != 2 for p in pairs):
        raise CorpusLayoutError(f"{path}: expected '<utt> <condition>' lines")
    return dict((p[0], p[1]) for p in pairs)
