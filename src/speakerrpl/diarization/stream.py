"""Reading a recording as consecutive 16 kHz mono chunks (bounded memory for long files)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from speakerrpl.errors import AudioNonFiniteError, AudioReadError, AudioTooShortError

__all__ = ["audio_chunks", "audio_duration"]

SAMPLE_RATE = 16_000


def _open(path: Path) -> Any:
    import soundfile as sf

    if not path.is_file():
        what = "is a directory, not" if path.is_dir() else "does not exist; expected"
        raise AudioReadError(f"{path}: {what} an audio file")
    try:
        return sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioReadError(f"{path}: not a readable audio file ({exc})") from exc


def audio_duration(path: str | Path) -> float:
    """Duration in seconds from the file header (nothing is decoded).

    Raises:
        AudioReadError: missing or unreadable file.
        AudioTooShortError: the file holds no samples.
    """
    with _open(Path(path)) as handle:
        if handle.frames <= 0:
            raise AudioTooShortError(f"{path}: the audio is empty (0 samples)")
        return float(handle.frames / handle.samplerate)


def audio_chunks(path: str | Path, chunk_seconds: float = 60.0) -> Iterator[np.ndarray]:
    """Yield the file as 16 kHz mono float32 chunks of about ``chunk_seconds``.

    Channels are averaged and other rates resampled with a streaming soxr resampler, so the
    concatenated chunks equal the whole file converted at once (up to resampler edge effects).

    Raises:
        AudioReadError: missing or unreadable file.
        AudioTooShortError: the file holds no samples.
        AudioNonFiniteError: a chunk holds NaN or infinite samples.
    """
    import soxr

    path = Path(path)
    audio_duration(path)
    with _open(path) as handle:
        rate = int(handle.samplerate)
        resampler = None if rate == SAMPLE_RATE else soxr.ResampleStream(rate, SAMPLE_RATE, 1)
        block = max(1, int(chunk_seconds * rate))
        while True:
            data = handle.read(block, dtype="float32", always_2d=True)
            last = len(data) < block
            mono = data.mean(axis=1, dtype=np.float32) if len(data) else np.zeros(0, np.float32)
            if not np.isfinite(mono).all():
                raise AudioNonFiniteError(f"{path}: holds NaN or infinite samples")
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=last)
            if mono.size:
                yield np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False)
            if last:
                return
