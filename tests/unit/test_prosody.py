"""Within-speaker variability: drawn prosody and its engine controls."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from speakerrpl.errors import InvalidInputError
from speakerrpl.synth import prosody as pr


def test_draws_stay_in_range_and_vary() -> None:
    rng = np.random.default_rng(0)
    draws = [pr.draw_prosody(rng, "mbrola") for _ in range(200)]
    for name, (low, high) in pr.PROSODY_RANGES.items():
        values = [getattr(p, name) for p in draws]
        assert low - 0.01 <= min(values) and max(values) <= high + 0.01
        assert max(values) - min(values) > 0.6 * (high - low)
    sox = [pr.draw_prosody(rng, "festival") for _ in range(50)]
    assert all(p.range == 1.0 and abs(p.pitch) <= 1.5 + 1e-9 for p in sox)


def test_bad_prosody_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="rate"):
        pr.Prosody(rate=3.0)
    with pytest.raises(InvalidInputError, match="gain_db"):
        pr.Prosody(gain_db=3.0)


def test_markup_escapes_text() -> None:
    assert "&lt;b&gt;" in pr.ssml("<b>", pr.Prosody())
    assert "&amp;" in pr.pico_markup("a & b", pr.Prosody())


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox: scripts/install_system_deps.sh")
def test_sox_pitch_shifts_the_fundamental_and_keeps_duration() -> None:
    t = np.arange(32000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    y = pr.sox_pitch(x, 2.0)
    assert abs(y.size - x.size) < 200
    spectrum = np.abs(np.fft.rfft(y[2000:30000]))
    peak = np.fft.rfftfreq(28000, 1 / 16000)[int(np.argmax(spectrum))]
    assert peak == pytest.approx(200 * 2 ** (2 / 12), rel=0.02)
    assert np.array_equal(y, pr.sox_pitch(x, 2.0))  # no dither: repeatable
