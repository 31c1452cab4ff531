"""Channel simulation: device EQ, codecs, telephone band, far-field rooms."""

from __future__ import annotations

import numpy as np
import pytest

from speakerrpl.synth import channels as ch


def _voice(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """A harmonic 'voice' with energy up to 8 kHz, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    x = sum(np.sin(2 * np.pi * 150 * h * t) / h for h in range(1, 50))
    x = x + 0.05 * rng.standard_normal(t.size)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def _band_energy(x: np.ndarray, low: float, high: float) -> float:
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / 16000)
    return float(power[(freqs >= low) & (freqs < high)].sum() / power.sum())


def test_device_colouration_keeps_level_and_changes_the_spectrum() -> None:
    x = _voice()
    y, what = ch.device_colouration(x, np.random.default_rng(0))
    assert y.shape == x.shape and what.startswith("eq hp=")
    assert np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(np.mean(x**2)), rel=1e-3)
    lowpass = float(what.split("lp=")[1].split()[0])
    assert _band_energy(y, lowpass + 800, 8000) < 0.2 * _band_energy(x, lowpass + 800, 8000)


def test_telephone_is_band_limited_to_300_3400_hz() -> None:
    x = _voice()
    kinds = set()
    for seed in range(6):
        y, what = ch.telephone(x, np.random.default_rng(seed))
        kinds.add(what.split()[-1])
        assert y.shape == x.shape
        assert _band_energy(y, 4200, 8000) < 0.01  # nothing above the 8 kHz band's Nyquist
        assert _band_energy(y, 0, 200) < 0.05
    assert kinds == {"gsm", "mulaw"}


@pytest.mark.parametrize("seed", range(4))
def test_codec_round_trip_is_lossy_deterministic_and_keeps_length(seed: int) -> None:
    x = _voice(1.5, seed)
    y, what = ch.codec(x, np.random.default_rng(seed))
    z, _ = ch.codec(x, np.random.default_rng(seed))
    assert y.shape == x.shape and np.array_equal(y, z)
    assert what.split()[1] in {"opus", "vorbis", "mp3"}
    assert not np.allclose(x, y, atol=1e-3)


def test_rooms_cover_sizes_and_distances() -> None:
    pytest.importorskip("pyroomacoustics")
    rooms = ch.room_impulse_responses(6, np.random.default_rng(0))
    assert {r.size for r in rooms} == {"small", "medium", "large"}
    assert all(1.0 <= r.distance_m <= 5.0 for r in rooms)
    assert all(r.rir.size <= 0.8 * 16000 and np.abs(r.rir).max() == 1.0 for r in rooms)
    impulse = np.zeros(16000, dtype=np.float32)
    impulse[100] = 1.0
    out, what = ch.far_field(impulse, np.random.default_rng(0), rooms)
    assert out.shape == impulse.shape and what.startswith("room ")
    assert np.count_nonzero(np.abs(out) > 1e-3) > 500  # a tail of reflections
