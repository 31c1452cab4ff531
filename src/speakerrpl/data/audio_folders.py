"""Audio sources for embedding: a Kaldi data dir, a folder of speaker folders, or one file."""

from __future__ import annotations

from pathlib import Path

from speakerrpl.audio import AUDIO_SUFFIXES, audio_files, check_audio_suffix
from speakerrpl.data.kaldi import Utterance, read_data_dir
from speakerrpl.errors import CorpusLayoutError

__all__ = ["discover_audio"]


def _folder_utterances(root: Path) -> list[Utterance]:
    utterances: list[Utterance] = []
    for speaker_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        files = audio_files(speaker_dir)
        stems = [p.relative_to(speaker_dir).with_suffix("").as_posix() for p in files]
        for path, stem in zip(files, stems, strict=True):
            unique = stem if stems.count(stem) == 1 else f"{stem}{path.suffix.lower()}"
            utt_id = f"{speaker_dir.name}-{unique}".replace("/", "-").replace(" ", "_")
            utterances.append(Utterance(utt_id, path, speaker_dir.name))
    return utterances


def discover_audio(source: str | Path) -> list[Utterance]:
    """The utterances of a source: a Kaldi data dir, a folder of speaker folders, or one file.

    - Kaldi data dir: has ``wav.scp`` and ``utt2spk``.
    - Speaker folders: each sub-folder is a speaker; its audio files (any of
      :data:`~speakerrpl.audio.AUDIO_SUFFIXES`, searched recursively) are its utterances, with
      ids ``<speaker>-<file stem>``.
    - A single audio file: one utterance whose id and speaker are the file stem.

    Raises:
        CorpusLayoutError: the source does not exist or fits none of these layouts.
        AudioReadError: a file is of a type that cannot be read (e.g. ``.m4a``).

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> (root / "alice").mkdir()
        >>> _ = (root / "alice" / "hello.flac").write_bytes(b"")
        >>> [(u.utt_id, u.speaker) for u in discover_audio(root)]
        [('alice-hello', 'alice')]
    """
    source = Path(source)
    if source.is_file():
        check_audio_suffix(source)
        return [Utterance(source.stem, source, source.stem)]
    if not source.is_dir():
        raise CorpusLayoutError(f"{source} does not exist")
    if (source / "wav.scp").exists():
        return read_data_dir(source)
    utterances = _folder_utterances(source)
    if not utterances:
        raise CorpusLayoutError(
            f"{source}: no audio found; expected a Kaldi data dir (wav.scp + utt2spk) or one "
            f"sub-folder per speaker holding audio files ({', '.join(AUDIO_SUFFIXES)})"
        )
    return utterances
