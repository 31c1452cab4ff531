"""Decoding bounded by what it produces: header checks first, then block-wise decoding."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from speakerrpl.audio import SAMPLE_RATE, load_audio_bytes, prepare_wave, probe_audio_bytes
from speakerrpl.errors import (
    AudioNonFiniteError,
    AudioReadError,
    AudioTooLargeError,
    AudioTooLongError,
)


def _encode(data: np.ndarray, rate: int, fmt: str = "FLAC", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, data, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def _speech(seconds: float, rate: int, channels: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 310 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return np.repeat(wave[:, None], channels, axis=1).astype(np.float32)


@pytest.mark.parametrize(
    ("rate", "channels", "seconds", "cap", "what"),
    [
        (655_350, 8, 0.05, 60.0, "655350 Hz"),  # the decompression bomb's header
        (48_000, 9, 0.05, 60.0, r"9 channel\(s\)"),  # too many channels (WAV allows it)
        (96_000, 4, 0.9, 1.0, "345,600 samples"),  # over 1 s x 192,000 samples of work
    ],
)
def test_headers_announcing_too_much_work_are_refused_before_decoding(
    rate: int, channels: int, seconds: float, cap: float, what: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _encode(np.zeros((int(seconds * rate), channels), np.float32), rate, "WAV", "PCM_16")
    assert probe_audio_bytes(data).channels == channels
    decoded = []
    monkeypatch.setattr(sf.SoundFile, "blocks", lambda *a, **k: decoded.append(1) or iter(()))
    with pytest.raises(AudioTooLargeError, match=what):
        load_audio_bytes(data, max_duration=cap)
    assert decoded == []  # refused by the header alone


def test_long_clip_refused_by_header() -> None:
    data = _encode(_speech(3.0, 8000, 1), 8000)
    with pytest.raises(AudioTooLongError, match="2 s cap"):
        load_audio_bytes(data, max_duration=2.0)


def test_block_decoding_matches_whole_file_decoding() -> None:
    wave = _speech(9.0, 44_100, 2)  # several 65,536-frame blocks, down-mixed and resampled
    data = _encode(wave, 44_100, "WAV", "FLOAT")
    streamed = load_audio_bytes(data)
    whole = prepare_wave(wave, 44_100)
    assert abs(streamed.size - whole.size) <= 2 and streamed.size == pytest.approx(9 * 16000, abs=2)
    n = min(streamed.size, whole.size)
    np.testing.assert_allclose(streamed[100 : n - 100], whole[100 : n - 100], atol=2e-3)


def test_peak_memory_is_one_block_plus_the_output() -> None:
    seconds, rate, channels = 10.0, 96_000, 8
    data = _encode(_speech(seconds, rate, channels), rate)
    whole_float32 = int(seconds * rate) * channels * 4  # 30.7 MB if decoded in one piece
    tracemalloc.start()
    out = load_audio_bytes(data, max_duration=60.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert out.size == pytest.approx(seconds * SAMPLE_RATE, abs=2)
    # a 2 MB block, the 0.64 MB output and the speech detector's float64 sums (~5x the output)
    assert peak < whole_float32 / 4, (peak, whole_float32)
    assert peak < 2 * len(data) + 65_536 * channels * 4 + 8 * out.nbytes, peak


def test_non_finite_samples_are_found_in_blocks() -> None:
    wave = _speech(6.0, 16_000, 1)
    wave[70_000, 0] = np.nan  # in the second block
    with pytest.raises(AudioNonFiniteError, match="1 sample"):
        load_audio_bytes(_encode(wave, 16_000, "WAV", "FLOAT"))


def test_unknown_length_is_not_trusted() -> None:
    """A FLAC whose header gives no length (total_samples = 0) passes no frame-count check:
    it is capped while decoding (this libsndfile cannot decode such a file at all)."""
    data = bytearray(_encode(_speech(3.0, 8000, 2), 8000))
    data[21] &= 0xF0  # STREAMINFO total samples := 0 ("unknown")
    data[22:26] = b"\x00\x00\x00\x00"
    assert probe_audio_bytes(bytes(data)).frames == -1
    with pytest.raises((AudioReadError, AudioTooLongError)):
        load_audio_bytes(bytes(data), max_duration=2.0)
