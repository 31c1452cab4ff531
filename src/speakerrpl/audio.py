"""Audio input: read, validate, downmix and resample to 16 kHz mono float32 in [-1, 1].

Every frontend consumes the waveform this module produces. Files are read with soundfile
(libsndfile) and resampled with soxr; torchaudio is not used. :data:`AUDIO_SUFFIXES` is the one
list of file types every command reads; other files are refused with a clear error
(:func:`check_audio_suffix`), and common containers libsndfile cannot decode
(:data:`UNREADABLE_SUFFIXES`, e.g. VoxCeleb2's ``.m4a``) with a hint to convert them.

Bad input raises a specific :class:`~speakerrpl.errors.AudioError` subclass:

- :class:`~speakerrpl.errors.AudioReadError`: missing, unreadable or not audio;
- :class:`~speakerrpl.errors.AudioTooShortError`: empty, or less speech than ``min_duration``;
- :class:`~speakerrpl.errors.AudioNonFiniteError`: NaN or infinite samples;
- :class:`~speakerrpl.errors.AudioTooLongError`: longer than ``max_duration``;
- :class:`~speakerrpl.errors.AudioTooLargeError`: the header announces more decoding work than
  allowed (channels, sample rate, frames x channels), refused before any decoding.

Decoding is bounded by what it produces: the header is checked first, then the file is decoded,
down-mixed and resampled in blocks of 65,536 frames, so memory is one block plus the 16 kHz mono
output, whatever the channel count or sample rate.

Speech is measured by :func:`speech_duration`, a simple energy-based activity detector (see its
docstring): it counts loud-enough frames and does not tell speech from other sounds.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speakerrpl.errors import (
    AudioNonFiniteError,
    AudioReadError,
    AudioTooLargeError,
    AudioTooLongError,
    AudioTooShortError,
    InvalidInputError,
)

logger = logging.getLogger(__name__)

__all__ = [
    "AUDIO_SUFFIXES",
    "DEFAULT_MAX_DURATION",
    "DEFAULT_MIN_DURATION",
    "MAX_CHANNELS",
    "MAX_SAMPLES_PER_SECOND",
    "MAX_SAMPLE_RATE",
    "SAMPLE_RATE",
    "UNREADABLE_SUFFIXES",
    "AudioInfo",
    "audio_files",
    "check_audio_suffix",
    "load_audio",
    "load_audio_bytes",
    "prepare_wave",
    "probe_audio_bytes",
    "speech_duration",
]

SAMPLE_RATE = 16_000
"""The sample rate (Hz) of every waveform this module returns."""
DEFAULT_MIN_DURATION = 0.5
"""Default minimum amount of speech, in seconds."""
DEFAULT_MAX_DURATION = 600.0
"""Default cap on the total duration, in seconds."""
MAX_CHANNELS = 8
"""Most channels a file may have (checked in the header, before decoding)."""
MAX_SAMPLE_RATE = 192_000
"""Highest accepted input sample rate, in Hz (checked in the header)."""
MAX_SAMPLES_PER_SECOND = 192_000
"""Decoding budget: at most ``max_duration`` x this many samples (frames x channels), i.e. the
work of 96 kHz stereo; an 8-channel 655,350 Hz "decompression bomb" is refused by its header."""
_BLOCK_FRAMES = 65_536  # frames decoded, down-mixed and resampled at a time

AUDIO_SUFFIXES = (
    ".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".snd", ".caf",
    ".w64", ".rf64", ".sph",
)  # fmt: skip
"""File suffixes every command reads (libsndfile >= 1.1 formats; each one is tested)."""
UNREADABLE_SUFFIXES = (".m4a", ".aac", ".mp4", ".wma", ".webm", ".amr", ".3gp", ".mkv")
"""Common audio containers libsndfile cannot decode: refused with a hint to convert them."""


def check_audio_suffix(path: str | Path) -> None:
    """Raise :class:`AudioReadError` unless ``path`` has one of :data:`AUDIO_SUFFIXES`.

    Example:
        >>> check_audio_suffix("a.FLAC")
        >>> check_audio_suffix("a.m4a")
        Traceback (most recent call last):
        ...
        speakerrpl.errors.AudioReadError: a.m4a: .m4a audio cannot be decoded (libsndfile); \
convert it first, e.g. ffmpeg -i a.m4a a.flac
    """
    suffix = Path(path).suffix.lower()
    if suffix in AUDIO_SUFFIXES:
        return
    if suffix in UNREADABLE_SUFFIXES:
        flac = Path(path).with_suffix(".flac").name
        raise AudioReadError(
            f"{path}: {suffix} audio cannot be decoded (libsndfile); convert it first, "
            f"e.g. ffmpeg -i {Path(path).name} {flac}"
        )
    raise AudioReadError(
        f"{path}: not an audio file type this toolkit reads; expected one of "
        f"{', '.join(AUDIO_SUFFIXES)}"
    )


def audio_files(root: Path) -> list[Path]:
    """The readable audio files under ``root`` (recursive, sorted).

    Raises:
        AudioReadError: ``root`` holds files of an :data:`UNREADABLE_SUFFIXES` type (they would
            otherwise vanish from the data without notice).
    """
    files = sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        if path.suffix.lower() in UNREADABLE_SUFFIXES:
            check_audio_suffix(path)
    return [p for p in files if p.suffix.lower() in AUDIO_SUFFIXES]


# Energy detector settings: 25 ms frames every 10 ms; a frame is active when its RMS level is
# above both an absolute floor and a level relative to the loudest frame of the recording.
_FRAME_S, _HOP_S = 0.025, 0.010
_ABS_FLOOR_DB = -55.0
_REL_FLOOR_DB = -40.0


def speech_duration(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Seconds of activity in ``wave`` by a simple energy-based detector.

    The signal is cut into 25 ms frames every 10 ms; a frame counts as active when its RMS level
    is above -55 dBFS and within 40 dB of the loudest frame. The result is the number of active
    frames times 10 ms. It is a cheap guard against silent or near-silent input, not a speech
    classifier: a loud tone counts as "speech".

    Args:
        wave: mono float waveform in [-1, 1].
        sample_rate: its sample rate in Hz.

    Example:
        >>> t = np.arange(16000) / 16000
        >>> round(speech_duration(0.1 * np.sin(2 * np.pi * 200 * t).astype(np.float32)), 2)
        0.98
        >>> speech_duration(np.zeros(16000, dtype=np.float32))
        0.0
    """
    frame, hop = int(_FRAME_S * sample_rate), int(_HOP_S * sample_rate)
    if wave.size < frame:
        return 0.0
    # frame energies from a running sum of squares: O(samples) memory, no (frames, 400) copy
    power = np.concatenate([[0.0], np.cumsum(np.square(wave, dtype=np.float64))])
    starts = np.arange(0, wave.size - frame + 1, hop)
    energy = np.maximum(power[starts + frame] - power[starts], 0.0)
    rms_db = 10.0 * np.log10(energy / frame + 1e-12)
    threshold = max(_ABS_FLOOR_DB, float(rms_db.max()) + _REL_FLOOR_DB)
    return float(np.count_nonzero(rms_db > threshold)) * _HOP_S


def _to_float(wave: np.ndarray) -> np.ndarray:
    """Integer PCM -> float in [-1, 1]; float input is kept as is."""
    if wave.dtype.kind == "f":
        return wave.astype(np.float32, copy=False)
    if wave.dtype.kind == "i":
        return (wave.astype(np.float64) / float(2 ** (8 * wave.dtype.itemsize - 1))).astype(
            np.float32
        )
    if wave.dtype.kind == "u":
        half = float(2 ** (8 * wave.dtype.itemsize - 1))
        return ((wave.astype(np.float64) - half) / half).astype(np.float32)
    raise InvalidInputError(f"expected a numeric waveform array, got dtype {wave.dtype}")


def prepare_wave(
    wave: np.ndarray,
    sample_rate: int,
    *,
    min_duration: float = DEFAULT_MIN_DURATION,
    max_duration: float = DEFAULT_MAX_DURATION,
    source: str = "audio",
) -> np.ndarray:
    """Validate an in-memory waveform and convert it to 16 kHz mono float32 in [-1, 1].

    Args:
        wave: samples as ``(frames,)`` or ``(frames, channels)`` (soundfile's layout); float
            (expected in [-1, 1]) or integer PCM.
        sample_rate: its sample rate in Hz.
        min_duration: minimum seconds of speech (:func:`speech_duration`); 0 disables the check.
        max_duration: maximum total seconds; longer input is refused.
        source: what the audio is, for error messages (e.g. a file name).

    Returns:
        1-D float32 array at 16 kHz, clipped to [-1, 1].

    Raises:
        AudioTooShortError: empty, or less speech than ``min_duration``.
        AudioTooLongError: longer than ``max_duration``.
        AudioNonFiniteError: NaN or infinite samples.
        InvalidInputError: wrong shape or sample rate.

    Example:
        >>> t = np.arange(8000) / 8000
        >>> wave = 0.3 * np.sin(2 * np.pi * 300 * t)  # 1 s at 8 kHz
        >>> out = prepare_wave(np.stack([wave, wave], axis=1), 8000)
        >>> out.shape, out.dtype
        ((16000,), dtype('float32'))
    """
    wave = np.asarray(wave)
    if wave.ndim not in (1, 2):
        raise InvalidInputError(
            f"{source}: expected samples shaped (frames,) or (frames, channels), "
            f"got shape {wave.shape}"
        )
    if int(sample_rate) <= 0:
        raise InvalidInputError(f"{source}: sample rate must be positive, got {sample_rate}")
    if wave.shape[0] == 0 or wave.size == 0:
        raise AudioTooShortError(f"{source}: the audio is empty (0 samples)")
    duration = wave.shape[0] / sample_rate
    if duration > max_duration:
        raise AudioTooLongError(
            f"{source}: {duration:.1f} s of audio is longer than the {max_duration:g} s cap "
            "(raise max_duration to accept it)"
        )
    wave = _to_float(wave)
    if not np.isfinite(wave).all():
        bad = int(np.count_nonzero(~np.isfinite(wave)))
        raise AudioNonFiniteError(f"{source}: {bad} sample(s) are NaN or infinite")
    if wave.ndim == 2:
        wave = wave.mean(axis=1, dtype=np.float32)
    if sample_rate != SAMPLE_RATE:
        import soxr

        wave = soxr.resample(wave, sample_rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if peak > 1.0:
        logger.warning("%s: peak %.3f exceeds 1.0; clipping to [-1, 1]", source, peak)
        wave = np.clip(wave, -1.0, 1.0)
    if min_duration > 0:
        speech = speech_duration(wave, SAMPLE_RATE)
        if speech < min_duration:
            raise AudioTooShortError(
                f"{source}: {speech:.2f} s of speech found in {duration:.2f} s of audio; "
                f"at least {min_duration:g} s is needed"
            )
    return np.ascontiguousarray(wave, dtype=np.float32)


@dataclass(frozen=True)
class AudioInfo:
    """What an audio header promises: frames (-1: unknown, e.g. a streamed FLAC), channels and
    sample rate (no decoding)."""

    frames: int
    channels: int
    sample_rate: int

    @property
    def duration(self) -> float:
        """Seconds of audio announced by the header (``inf`` when the length is unknown)."""
        if self.frames < 0:
            return float("inf")
        return self.frames / self.sample_rate if self.sample_rate > 0 else 0.0

    def check(self, source: str, max_duration: float) -> None:
        """Refuse, before decoding, audio whose header announces too much work.

        Raises:
            AudioTooLongError: longer than ``max_duration``.
            AudioTooLargeError: over :data:`MAX_CHANNELS` channels, over
                :data:`MAX_SAMPLE_RATE` Hz, or more than ``max_duration`` x
                :data:`MAX_SAMPLES_PER_SECOND` decoded samples (frames x channels).
        """
        if self.frames >= 0 and self.duration > max_duration:
            raise AudioTooLongError(
                f"{source}: {self.duration:.1f} s of audio is longer than the "
                f"{max_duration:g} s cap (raise max_duration to accept it)"
            )
        samples = max(self.frames, 0) * self.channels  # unknown length: capped while decoding
        budget = max_duration * MAX_SAMPLES_PER_SECOND
        if self.channels > MAX_CHANNELS or self.sample_rate > MAX_SAMPLE_RATE or samples > budget:
            raise AudioTooLargeError(
                f"{source}: {self.channels} channel(s) x {self.sample_rate} Hz x "
                f"{self.duration:.1f} s = {samples:,} samples to decode; accepted are at most "
                f"{MAX_CHANNELS} channels, {MAX_SAMPLE_RATE} Hz and {budget:,.0f} samples"
            )


def _open(file: Any, source: str) -> Any:
    import soundfile as sf

    try:
        return sf.SoundFile(file)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioReadError(f"{source}: not a readable audio file ({exc})") from exc


def probe_audio_bytes(data: bytes, source: str = "uploaded audio") -> AudioInfo:
    """Read only the header of an encoded audio file held in memory.

    Example:
        >>> import soundfile as sf
        >>> buf = io.BytesIO()
        >>> sf.write(buf, np.zeros((8000, 2)), 8000, format="FLAC")
        >>> probe_audio_bytes(buf.getvalue())
        AudioInfo(frames=8000, channels=2, sample_rate=8000)
    """
    if len(data) == 0:
        raise AudioReadError(f"{source}: no data (0 bytes)")
    with _open(io.BytesIO(data), source) as handle:
        return _info(handle)


def _info(handle: Any) -> AudioInfo:
    frames = int(handle.frames)
    # libsndfile reports an unknown length (FLAC total_samples = 0) as SF_COUNT_MAX
    return AudioInfo(frames if frames < 2**62 else -1, int(handle.channels), int(handle.samplerate))


def _decode(file: Any, source: str, max_duration: float) -> tuple[np.ndarray, float]:
    """Stream-decode to 16 kHz mono in blocks: memory is one block plus the output.

    The header is checked first (:meth:`AudioInfo.check`); the frame count is checked again
    while decoding, since a header may lie. Returns the wave and the input duration.
    """
    import soundfile as sf

    with _open(file, source) as handle:
        info = _info(handle)
        info.check(source, max_duration)
        if info.sample_rate <= 0:
            raise AudioReadError(f"{source}: sample rate {info.sample_rate} in the header")
        limit = int(max_duration * info.sample_rate)
        stream = None
        if info.sample_rate != SAMPLE_RATE:
            import soxr

            stream = soxr.ResampleStream(info.sample_rate, SAMPLE_RATE, 1, dtype="float32")
        parts, frames = [], 0
        try:
            for block in handle.blocks(_BLOCK_FRAMES, dtype="float32", always_2d=True):
                frames += len(block)
                if frames > limit:
                    raise AudioTooLongError(
                        f"{source}: more than the {max_duration:g} s cap of audio "
                        "(the header announced less)"
                    )
                mono = block.mean(axis=1, dtype=np.float32) if info.channels > 1 else block[:, 0]
                bad = int(np.count_nonzero(~np.isfinite(mono)))
                if bad:
                    raise AudioNonFiniteError(f"{source}: {bad} sample(s) are NaN or infinite")
                parts.append(mono.copy() if stream is None else stream.resample_chunk(mono))
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioReadError(f"{source}: not a readable audio file ({exc})") from exc
        if stream is not None:
            parts.append(stream.resample_chunk(np.zeros(0, np.float32), last=True))
    if frames == 0:
        raise AudioTooShortError(f"{source}: the audio is empty (0 samples)")
    return np.concatenate(parts).astype(np.float32, copy=False), frames / info.sample_rate


def _finish(wave: np.ndarray, duration: float, source: str, min_duration: float) -> np.ndarray:
    """Clip and check speech of a decoded 16 kHz wave (its duration was checked already)."""
    del duration  # checked against the cap while decoding
    return prepare_wave(
        wave, SAMPLE_RATE, min_duration=min_duration, max_duration=float("inf"), source=source
    )


def load_audio(
    path: str | Path,
    *,
    min_duration: float = DEFAULT_MIN_DURATION,
    max_duration: float = DEFAULT_MAX_DURATION,
) -> np.ndarray:
    """Read an audio file as 16 kHz mono float32 in [-1, 1].

    Any sample rate and channel count are accepted; channels are averaged and the signal is
    resampled with soxr.

    Args:
        path: an audio file with one of :data:`AUDIO_SUFFIXES`.
        min_duration: minimum seconds of speech (0 disables the check).
        max_duration: maximum total seconds.

    Raises:
        AudioReadError: the file is missing, unreadable, or not audio.
        AudioTooShortError, AudioTooLongError, AudioNonFiniteError: see :func:`prepare_wave`.

    Example:
        >>> import tempfile, soundfile as sf
        >>> path = tempfile.mktemp(suffix=".flac")
        >>> t = np.arange(44100) / 44100
        >>> sf.write(path, 0.3 * np.sin(2 * np.pi * 220 * t), 44100)
        >>> load_audio(path).shape
        (16000,)
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not" if path.is_dir() else "does not exist; expected"
        raise AudioReadError(f"{path}: {what} an audio file")
    check_audio_suffix(path)
    wave, duration = _decode(str(path), str(path), max_duration)
    return _finish(wave, duration, str(path), min_duration)


def load_audio_bytes(
    data: bytes,
    *,
    min_duration: float = DEFAULT_MIN_DURATION,
    max_duration: float = DEFAULT_MAX_DURATION,
    source: str = "uploaded audio",
) -> np.ndarray:
    """Decode an encoded audio file held in memory (e.g. an upload) like :func:`load_audio`.

    Args:
        data: the bytes of a WAV, FLAC or OGG file.
        min_duration: minimum seconds of speech (0 disables the check).
        max_duration: maximum total seconds.
        source: what the audio is, for error messages.

    Raises:
        AudioReadError: the bytes are empty or not a readable audio file.
        AudioTooShortError, AudioTooLongError, AudioNonFiniteError: see :func:`prepare_wave`.

    Example:
        >>> import soundfile as sf
        >>> buf = io.BytesIO()
        >>> sf.write(buf, np.full(16000, 0.2), 16000, format="WAV")
        >>> load_audio_bytes(buf.getvalue()).shape
        (16000,)
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidInputError(f"{source}: expected bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise AudioReadError(f"{source}: no data (0 bytes)")
    wave, duration = _decode(io.BytesIO(bytes(data)), source, max_duration)
    return _finish(wave, duration, source, min_duration)
