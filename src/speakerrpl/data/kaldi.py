"""Kaldi-style data directories: ``wav.scp``, ``utt2spk`` and ``spk2utt``.

Only the subset speakerrpl needs: ``wav.scp`` lines map an utterance id to a file path (piped
commands are rejected with a clear error); relative paths are resolved against the data dir.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from speakerrpl.errors import CorpusLayoutError


@dataclass(frozen=True)
class Utterance:
    """One utterance of a data dir: its id, audio file and speaker."""

    utt_id: str
    path: Path
    speaker: str


def _read_table(path: Path) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        key, _, value = line.strip().partition(" ")
        value = value.strip()
        if not value:
            raise CorpusLayoutError(f"{path}:{number}: expected '<key> <value>', got {line!r}")
        if key in seen:
            raise CorpusLayoutError(f"{path}:{number}: duplicate key {key!r}")
        seen.add(key)
        rows.append((key, value))
    return rows


def read_data_dir(data_dir: str | Path) -> list[Utterance]:
    """Read a Kaldi data dir (``wav.scp`` + ``utt2spk``) into utterances, in ``wav.scp`` order.

    Raises:
        CorpusLayoutError: a file is missing, malformed, uses a piped command, or the two
            files disagree on the utterance ids.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "wav.scp").write_text("a-1 a1.wav\\n")
        >>> _ = (d / "utt2spk").write_text("a-1 a\\n")
        >>> [(u.utt_id, u.path.name, u.speaker) for u in read_data_dir(d)]
        [('a-1', 'a1.wav', 'a')]
    """
    data_dir = Path(data_dir)
    wav_scp, utt2spk = data_dir / "wav.scp", data_dir / "utt2spk"
    for required in (wav_scp, utt2spk):
        if not required.is_file():
            raise CorpusLayoutError(
                f"{data_dir} is not a Kaldi data dir: missing {required.name} "
                "(expected wav.scp with '<utt> <path>' and utt2spk with '<utt> <speaker>' lines)"
            )
    wavs = _read_table(wav_scp)
    speakers = dict(_read_table(utt2spk))
    missing = [utt for utt, _ in wavs if utt not in speakers]
    if missing:
        raise CorpusLayoutError(
            f"{utt2spk} has no speaker for {len(missing)} utterance(s) of wav.scp, "
            f"e.g. {missing[0]!r}"
        )
    utterances = []
    for utt, location in wavs:
        if location.endswith("|"):
            raise CorpusLayoutError(
                f"{wav_scp}: utterance {utt!r} uses a piped command; only file paths are supported"
            )
        path = Path(location)
        utterances.append(
            Utterance(utt, path if path.is_absolute() else data_dir / path, speakers[utt])
        )
    return utterances


def write_data_dir(data_dir: str | Path, utterances: Iterable[Utterance]) -> None:
    """Write ``wav.scp``, ``utt2spk`` and ``spk2utt`` (sorted by utterance id) into ``data_dir``.

    Paths inside ``data_dir`` are written relative to it, so the directory can be moved.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    rows = sorted(utterances, key=lambda u: u.utt_id)
    ids = [u.utt_id for u in rows]
    if len(set(ids)) != len(ids):
        raise CorpusLayoutError("utterance ids must be unique")
    for u in rows:
        if any(ch.isspace() for ch in u.utt_id + u.speaker) or not u.utt_id or not u.speaker:
            raise CorpusLayoutError(f"ids may not be empty or contain spaces: {u.utt_id!r}")
    root = data_dir.resolve()

    def location(path: Path) -> str:
        resolved = path.resolve()
        return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(resolved)

    by_speaker: dict[str, list[str]] = {}
    for u in rows:
        by_speaker.setdefault(u.speaker, []).append(u.utt_id)
    (data_dir / "wav.scp").write_text("".join(f"{u.utt_id} {location(u.path)}\n" for u in rows))
    (data_dir / "utt2spk").write_text("".join(f"{u.utt_id} {u.speaker}\n" for u in rows))
    (data_dir / "spk2utt").write_text(
        "".join(f"{spk} {' '.join(utts)}\n" for spk, utts in sorted(by_speaker.items()))
    )
