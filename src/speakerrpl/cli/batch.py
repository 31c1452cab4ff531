"""Batch identification for ``speakerrpl identify``: folders of clips, one row per clip.

A clip that cannot be read (missing, not audio, too short, too long) is reported in its own row
with the error and does not stop the others. Rows go to the terminal, or to ``--out`` as CSV or
JSON (chosen by the suffix). Decisions come from :func:`speakerrpl.decisions.decision_of`.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from speakerrpl.audio import AUDIO_SUFFIXES, UNREADABLE_SUFFIXES
from speakerrpl.decisions import decision_of
from speakerrpl.errors import InvalidInputError, SpeakerRPLError

__all__ = [
    "COLUMNS",
    "collect_files",
    "identify_files",
    "run_batch",
    "write_rows",
]

logger = logging.getLogger(__name__)

COLUMNS = ("file", "speaker", "confidence", "threshold", "error")
_BATCH = 16  # clips embedded per call: bounded memory, CAM++ batches them


def collect_files(paths: Sequence[str | Path]) -> list[Path]:
    """Expand folders to the audio files under them (sorted); files are kept as given.

    Folders contribute every file of :data:`speakerrpl.audio.AUDIO_SUFFIXES`, and those of
    ``UNREADABLE_SUFFIXES`` too (their rows then say how to convert them). A path that does
    not exist is kept, so that its row reports the error.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()); (d / "b.wav").touch(); (d / "a.txt").touch()
        >>> [p.name for p in collect_files([d, d / "missing.flac"])]
        ['b.wav', 'missing.flac']
    """
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            wanted = set(AUDIO_SUFFIXES) | set(UNREADABLE_SUFFIXES)
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in wanted)
            if not found:
                logger.warning("%s holds no audio files (%s)", path, ", ".join(AUDIO_SUFFIXES))
            out.extend(found)
        else:
            out.append(path)
    return out


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _error_row(path: Path, exc: Exception) -> dict[str, Any]:
    return {"file": str(path), "speaker": None, "confidence": None, "threshold": None,
            "error": f"{type(exc).__name__}: {exc}"}  # fmt: skip


def _decide(engine: Any, batch: Sequence[tuple[Path, Any]]) -> list[dict[str, Any]]:
    """Identify a batch of loaded clips; if the batch fails, clip by clip."""
    try:
        results = engine.identify([w for _, w in batch])
    except SpeakerRPLError:
        if len(batch) == 1:
            raise
        return [row for item in batch for row in _decide_one(engine, item)]
    rows = []
    for (path, _), res in zip(batch, results, strict=True):
        rows.append({"file": str(path), **decision_of(res).to_dict(), "error": None})
    return rows


def _decide_one(engine: Any, item: tuple[Path, Any]) -> list[dict[str, Any]]:
    try:
        return _decide(engine, [item])
    except SpeakerRPLError as exc:
        return [_error_row(item[0], exc)]


def identify_files(engine: Any, files: Sequence[Path], batch: int = _BATCH) -> list[dict[str, Any]]:
    """One row per file: ``file``, ``speaker``, ``confidence``, ``threshold``, ``error``.

    Args:
        engine: a :class:`~speakerrpl.service.engine.SpeakerEngine` (``identify``, ``model``,
            ``settings.max_clip_seconds``).
        files: audio files (see :func:`collect_files`).
        batch: clips loaded and embedded at once.

    Raises:
        RegistryError: nothing is enrolled (checked before any audio is read).
    """
    from speakerrpl.audio import load_audio

    engine.model()  # an empty registry fails the whole call, before any decoding
    cap = engine.settings.max_clip_seconds
    rows: list[dict[str, Any]] = []
    for chunk in _batches(list(files), batch):
        loaded, failed = [], {}
        for path in chunk:
            try:
                loaded.append((path, load_audio(path, max_duration=cap)))
            except SpeakerRPLError as exc:
                failed[path] = _error_row(path, exc)
        decided = {Path(r["file"]): r for r in (_decide(engine, loaded) if loaded else [])}
        rows.extend(failed.get(p) or decided[p] for p in chunk)
    return rows


def _check_out(out: str | Path) -> str:
    suffix = Path(out).suffix.lower()
    if suffix not in (".csv", ".json"):
        raise InvalidInputError(f"--out must end in .csv or .json, got {str(out)!r}")
    return suffix


def write_rows(rows: Sequence[dict[str, Any]], out: str | Path) -> Path:
    """Write rows as ``.csv`` or ``.json`` (by the suffix of ``out``); returns the path."""
    path = Path(out)
    suffix = _check_out(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".json":
        path.write_text(json.dumps(list(rows), indent=2) + "\n")
        return path
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
    return path


def run_batch(
    engine: Any, paths: Sequence[str | Path], out: str | Path | None = None, as_json: bool = False
) -> int:
    """``speakerrpl identify``: rows to ``out``, as JSON, or as tab-separated lines.

    Returns the exit code: 0 when every clip was identified, 1 when some could not be read
    (their rows say why).
    """
    if out is not None:
        _check_out(out)
    rows = identify_files(engine, collect_files(paths))
    failed = sum(r["error"] is not None for r in rows)
    if out is not None:
        write_rows(rows, out)
        print(f"wrote {len(rows)} row(s) to {out}; {failed} clip(s) could not be read")
    elif as_json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            if r["error"] is None:
                print(f"{r['file']}\t{r['speaker']}\tconfidence={r['confidence']:.4f}\t"
                      f"threshold={r['threshold']:.4f}")  # fmt: skip
            else:
                print(f"{r['file']}\t-\terror: {r['error']}")
    return 1 if failed else 0
