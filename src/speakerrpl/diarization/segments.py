"""The result type of diarization and its standard outputs: RTTM lines and JSON."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from speakerrpl.errors import DataError

__all__ = ["Segment", "read_rttm", "to_json", "to_rttm"]


class Segment(NamedTuple):
    """One speaker turn: ``start``/``end`` in seconds, ``label`` and the naming ``score``.

    ``label`` is an enrolled name, or ``SPEAKER_01``, ``SPEAKER_02``, ... for speakers the
    identifier rejected (or every speaker, without an identifier). ``score`` is the identifier's
    score of the speaker's cluster for its best enrolled name (``nan`` without an identifier).
    """

    start: float
    end: float
    label: str
    score: float

    @property
    def duration(self) -> float:
        """``end - start`` in seconds."""
        return self.end - self.start


_SAFE = re.compile(r"\s+")


def _token(text: str) -> str:
    """RTTM fields are whitespace-separated: spaces inside a name become underscores."""
    return _SAFE.sub("_", text.strip()) or "<NA>"


def to_rttm(segments: Iterable[Segment], file_id: str) -> str:
    """RTTM text, one ``SPEAKER <file> 1 <start> <dur> <NA> <NA> <label> <NA> <NA>`` per turn.

    Example:
        >>> print(to_rttm([Segment(0.5, 2.25, "alice", 0.9)], "talk"), end="")
        SPEAKER talk 1 0.500 1.750 <NA> <NA> alice <NA> <NA>
    """
    lines = [
        f"SPEAKER {_token(file_id)} 1 {s.start:.3f} {s.end - s.start:.3f} <NA> <NA> "
        f"{_token(s.label)} <NA> <NA>\n"
        for s in segments
    ]
    return "".join(lines)


def read_rttm(path: str | Path) -> dict[str, list[tuple[float, float, str]]]:
    """Read an RTTM file into ``{file_id: [(start, end, label), ...]}`` (SPEAKER lines only).

    Raises:
        DataError: a SPEAKER line has fewer than 8 fields or non-numeric times.
    """
    out: dict[str, list[tuple[float, float, str]]] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields or fields[0] != "SPEAKER":
            continue
        try:
            start, duration = float(fields[3]), float(fields[4])
            label = fields[7]
        except (IndexError, ValueError) as exc:
            raise DataError(f"{path}:{number}: not an RTTM SPEAKER line: {line!r}") from exc
        out.setdefault(fields[1], []).append((start, start + duration, label))
    return out


def to_json(segments: Sequence[Segment], file_id: str, duration: float) -> dict[str, Any]:
    """A JSON-ready summary: file, duration, speakers (name -> seconds) and the turns.

    Example:
        >>> to_json([Segment(0.0, 1.0, "SPEAKER_01", float("nan"))], "a.wav", 2.0)["speakers"]
        {'SPEAKER_01': 1.0}
    """
    speakers: dict[str, float] = {}
    for s in segments:
        speakers[s.label] = round(speakers.get(s.label, 0.0) + s.end - s.start, 3)
    return {
        "file": file_id,
        "duration": round(float(duration), 3),
        "speakers": speakers,
        "segments": [
            {
                "start": round(s.start, 3),
                "end": round(s.end, 3),
                "label": s.label,
                "score": None if not math.isfinite(s.score) else round(float(s.score), 4),
            }
            for s in segments
        ],
    }
