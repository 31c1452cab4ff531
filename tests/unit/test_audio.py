"""speakerrpl.audio: formats, rates, channels, and one specific error per bad-input class."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speakerrpl.audio import (
    AUDIO_SUFFIXES,
    SAMPLE_RATE,
    load_audio,
    load_audio_bytes,
    prepare_wave,
    speech_duration,
)
from speakerrpl.data.audio_folders import discover_audio
from speakerrpl.errors import (
    AudioNonFiniteError,
    AudioReadError,
    AudioTooLongError,
    AudioTooShortError,
    InvalidInputError,
)


def tone(seconds: float, rate: int, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize(
    ("suffix", "rate", "channels"),
    [(".wav", 16000, 1), (".wav", 8000, 2), (".flac", 44100, 1), (".ogg", 22050, 2)],
)
def test_formats_rates_channels_become_16k_mono(
    tmp_path: Path, suffix: str, rate: int, channels: int
) -> None:
    wave = tone(1.5, rate, freq=300.0)
    data = np.stack([wave] * channels, axis=1) if channels > 1 else wave
    path = tmp_path / f"x{suffix}"
    sf.write(path, data, rate)
    out = load_audio(path)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(out.size - int(1.5 * SAMPLE_RATE)) <= 2
    assert np.abs(out).max() <= 1.0
    # the 300 Hz tone survives resampling: the spectrum peaks there
    spectrum = np.abs(np.fft.rfft(out))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / out.size
    assert abs(peak_hz - 300.0) < 5.0


def test_stereo_is_averaged() -> None:
    left, right = tone(1.0, 16000, amp=0.4), np.zeros(16000, dtype=np.float32)
    out = prepare_wave(np.stack([left, right], axis=1), 16000)
    np.testing.assert_allclose(out, left / 2, atol=1e-6)


def test_int16_input_is_scaled() -> None:
    pcm = (tone(1.0, 16000) * 32767).astype(np.int16)
    out = prepare_wave(pcm, 16000)
    np.testing.assert_allclose(out, tone(1.0, 16000), atol=1e-4)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioReadError, match="does not exist"):
        load_audio(tmp_path / "nope.wav")


def test_directory_is_not_audio(tmp_path: Path) -> None:
    with pytest.raises(AudioReadError, match="directory"):
        load_audio(tmp_path)


def test_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio")
    with pytest.raises(AudioReadError, match="not a readable audio file"):
        load_audio(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioTooShortError, match="empty"):
        load_audio(path)


def test_too_short(tmp_path: Path) -> None:
    path = tmp_path / "short.flac"
    sf.write(path, tone(0.3, 16000), 16000)
    with pytest.raises(AudioTooShortError, match=r"0\.5 s is needed"):
        load_audio(path)
    assert load_audio(path, min_duration=0.2).size == int(0.3 * SAMPLE_RATE)


def test_silence_is_too_short_even_when_long(tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    quiet = np.random.default_rng(0).normal(0, 1e-4, 5 * 16000).astype(np.float32)
    sf.write(path, quiet, 16000)
    with pytest.raises(AudioTooShortError, match="of speech"):
        load_audio(path)


def test_speech_duration_counts_only_active_part() -> None:
    wave = np.concatenate([np.zeros(16000, np.float32), tone(2.0, 16000), np.zeros(8000)])
    assert speech_duration(wave.astype(np.float32)) == pytest.approx(2.0, abs=0.05)


def test_non_finite(tmp_path: Path) -> None:
    wave = tone(1.0, 16000)
    wave[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, wave, 16000, subtype="FLOAT")
    with pytest.raises(AudioNonFiniteError, match="1 sample"):
        load_audio(path)
    wave[100] = np.inf
    with pytest.raises(AudioNonFiniteError):
        prepare_wave(wave, 16000)


def test_too_long_is_refused_with_configurable_cap(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    sf.write(path, tone(3.0, 8000), 8000)
    with pytest.raises(AudioTooLongError, match="2 s cap"):
        load_audio(path, max_duration=2.0)
    assert load_audio(path, max_duration=3.5).size == 3 * SAMPLE_RATE


def test_bytes_roundtrip_and_errors() -> None:
    buffer = io.BytesIO()
    sf.write(buffer, tone(1.0, 22050), 22050, format="FLAC")
    out = load_audio_bytes(buffer.getvalue())
    assert out.shape == (SAMPLE_RATE,)
    with pytest.raises(AudioReadError, match="0 bytes"):
        load_audio_bytes(b"")
    with pytest.raises(AudioReadError, match=r"upload\.wav"):
        load_audio_bytes(b"RIFF garbage", source="upload.wav")


def test_bad_shapes_and_rates() -> None:
    with pytest.raises(InvalidInputError, match="shape"):
        prepare_wave(np.zeros((2, 2, 2)), 16000)
    with pytest.raises(InvalidInputError, match="sample rate"):
        prepare_wave(tone(1.0, 16000), 0)


def test_loud_float_input_is_clipped() -> None:
    out = prepare_wave(tone(1.0, 16000, amp=2.0), 16000)
    assert np.abs(out).max() <= 1.0


# suffix -> (soundfile format, subtype) to write a file of that type
_WRITERS = {
    ".oga": ("OGG", None), ".opus": ("OGG", "OPUS"), ".mp3": ("MP3", None),
    ".aif": ("AIFF", None), ".snd": ("AU", None), ".sph": ("NIST", None), ".rf64": ("RF64", None),
}  # fmt: skip


@pytest.mark.parametrize("suffix", AUDIO_SUFFIXES)
def test_every_listed_suffix_is_readable(tmp_path: Path, suffix: str) -> None:
    """AUDIO_SUFFIXES is what every command reads: each type decodes here (defect 7)."""
    path = tmp_path / f"x{suffix}"
    fmt, subtype = _WRITERS.get(suffix, (None, None))
    rate = 48000 if suffix == ".opus" else 16000
    sf.write(path, tone(1.0, rate, freq=300.0), rate, format=fmt, subtype=subtype)
    out = load_audio(path)
    assert abs(out.size - SAMPLE_RATE) <= 0.05 * SAMPLE_RATE  # lossy codecs pad a little


def test_unlisted_types_are_refused_clearly(tmp_path: Path) -> None:
    """The same readable file under another name is refused, with a convert hint for AAC."""
    wav = tmp_path / "x.wav"
    sf.write(wav, tone(1.0, 16000), 16000)
    for suffix, words in ((".m4a", "cannot be decoded.*ffmpeg"), (".txt", "expected one of")):
        path = wav.rename(tmp_path / f"x{suffix}")
        with pytest.raises(AudioReadError, match=words):
            load_audio(path)
        wav = path.rename(tmp_path / "x.wav")


def test_every_command_discovers_the_same_types(tmp_path: Path) -> None:
    """Folders: every listed type is an utterance; an .m4a among them is an error, not a skip."""
    (tmp_path / "ann").mkdir()
    for i, suffix in enumerate((".wav", ".mp3", ".aiff", ".au")):
        sf.write(tmp_path / "ann" / f"u{i}{suffix}", tone(1.0, 16000), 16000)
    (tmp_path / "ann" / "notes.txt").write_text("not audio")
    assert [u.path.suffix for u in discover_audio(tmp_path)] == [".wav", ".mp3", ".aiff", ".au"]
    (tmp_path / "ann" / "u9.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A ")
    with pytest.raises(AudioReadError, match=r"u9\.m4a: \.m4a audio cannot be decoded"):
        discover_audio(tmp_path)
    with pytest.raises(AudioReadError, match="cannot be decoded"):
        discover_audio(tmp_path / "ann" / "u9.m4a")
