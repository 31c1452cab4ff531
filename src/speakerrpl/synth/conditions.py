"""Realistic test conditions for the synthetic corpus (applied to *test* copies only).

Conditions (see :data:`CONDITIONS`): babble made from other corpus voices and coloured noise at
20 / 10 / 5 dB SNR, reverberation with simulated room impulse responses (pyroomacoustics image
method), and random crops to 1.5-3 s. Condition names and the ids of
condition copies live in :mod:`speakerrpl.data.condition_ids`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from speakerrpl._optional import require
from speakerrpl.data.condition_ids import CONDITIONS, CROP_RANGE_S
from speakerrpl.errors import InvalidInputError

__all__ = [
    "add_noise",
    "apply_condition",
    "babble",
    "coloured_noise",
    "crop",
    "reverberate",
    "room_impulse_responses",
    "snr_db",
]

SAMPLE_RATE = 16000


def snr_db(signal: np.ndarray, noise: np.ndarray) -> float:
    """Signal-to-noise ratio in dB from mean powers.

    Example:
        >>> round(snr_db(np.ones(100), 0.1 * np.ones(100)), 6)
        20.0
    """
    p_signal = float(np.mean(np.square(signal, dtype=np.float64)))
    p_noise = float(np.mean(np.square(noise, dtype=np.float64)))
    if p_noise <= 0 or p_signal <= 0:
        raise InvalidInputError("signal and noise must both have non-zero power")
    return float(10.0 * np.log10(p_signal / p_noise))


def add_noise(signal: np.ndarray, noise: np.ndarray, snr: float) -> np.ndarray:
    """Mix ``noise`` (tiled/cut to length) into ``signal`` at ``snr`` dB; keep the peak <= 1.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> s, n = rng.standard_normal(16000) * 0.1, rng.standard_normal(8000)
        >>> mixed = add_noise(s, n, 10.0)
        >>> round(snr_db(s, mixed - s), 3)  # before any peak limiting
        10.0
    """
    signal = np.asarray(signal, dtype=np.float64)
    noise = np.resize(np.asarray(noise, dtype=np.float64), signal.shape)
    scale = np.sqrt(np.mean(signal**2) / (np.mean(noise**2) * 10 ** (snr / 10)))
    mixed = signal + scale * noise
    peak = np.abs(mixed).max()
    if peak > 1.0:  # scale the whole mix: the SNR is unchanged
        mixed /= peak
    return mixed.astype(np.float32)


def coloured_noise(length: int, rng: np.random.Generator, exponent: float = 1.0) -> np.ndarray:
    """Noise with a 1/f**exponent power spectrum (0 white, 1 pink, 2 brown), unit power.

    Example:
        >>> n = coloured_noise(16000, np.random.default_rng(0), exponent=1.0)
        >>> n.shape, round(float(np.mean(n**2)), 6)
        ((16000,), 1.0)
    """
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length)
    freqs[0] = freqs[1] if length > 1 else 1.0
    noise = np.fft.irfft(spectrum / freqs ** (exponent / 2), n=length)
    return (noise / np.sqrt(np.mean(noise**2))).astype(np.float32)


def babble(length: int, sources: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Sum of other talkers, each circularly shifted at random, unit power.

    Example:
        >>> srcs = [np.sin(np.arange(8000) * f) for f in (0.1, 0.2, 0.3)]
        >>> babble(16000, srcs, np.random.default_rng(0)).shape
        (16000,)
    """
    if not sources:
        raise InvalidInputError("babble needs at least one source utterance")
    mix = np.zeros(length, dtype=np.float64)
    for source in sources:
        s = np.resize(np.asarray(source, dtype=np.float64), length)
        s = np.roll(s, int(rng.integers(length)))
        mix += s / (np.sqrt(np.mean(s**2)) + 1e-12)
    return (mix / (np.sqrt(np.mean(mix**2)) + 1e-12)).astype(np.float32)


def room_impulse_responses(count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` simulated room impulse responses (shoebox rooms, RT60 0.3-0.9 s).

    Example:
        >>> rirs = room_impulse_responses(1, np.random.default_rng(0))  # doctest: +SKIP
        >>> rirs[0].ndim  # doctest: +SKIP
        1
    """
    pra = require("pyroomacoustics", extra="corpus", purpose="reverberation")
    rirs = []
    for _ in range(count):
        dims = rng.uniform([3.0, 3.0, 2.4], [8.0, 7.0, 3.5])
        rt60 = rng.uniform(0.3, 0.9)
        absorption, max_order = pra.inverse_sabine(rt60, dims)
        room = pra.ShoeBox(
            dims, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=min(max_order, 30)
        )
        room.add_source(rng.uniform([0.5, 0.5, 1.2], dims - [0.5, 0.5, 1.0]))
        room.add_microphone(rng.uniform([0.5, 0.5, 0.8], dims - [0.5, 0.5, 1.2]))
        room.compute_rir()
        rir = np.asarray(room.rir[0][0], dtype=np.float64)
        rirs.append((rir / np.abs(rir).max()).astype(np.float32))
    return rirs


def reverberate(signal: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with a room impulse response, keep the length, match the input's peak.

    Example:
        >>> out = reverberate(np.r_[1.0, np.zeros(99)], np.r_[1.0, 0.5])
        >>> out[:3].tolist()
        [1.0, 0.5, 0.0]
    """
    signal = np.asarray(signal, dtype=np.float64)
    scipy_signal = require("scipy.signal", extra="corpus", purpose="reverberation")
    wet = scipy_signal.fftconvolve(signal, rir)[: signal.size]
    return (wet * np.abs(signal).max() / (np.abs(wet).max() + 1e-12)).astype(np.float32)


def crop(
    signal: np.ndarray, rng: np.random.Generator, seconds: tuple[float, float] = CROP_RANGE_S
) -> np.ndarray:
    """A random segment of 1.5-3 s (the whole signal when it is shorter than the drawn length).

    Example:
        >>> crop(np.zeros(80000), np.random.default_rng(0)).size / 16000 <= 3.0
        True
    """
    length = int(rng.uniform(*seconds) * SAMPLE_RATE)
    if signal.size <= length:
        return np.asarray(signal, dtype=np.float32)
    start = int(rng.integers(signal.size - length + 1))
    return np.asarray(signal[start : start + length], dtype=np.float32)


def apply_condition(
    signal: np.ndarray,
    condition: str,
    rng: np.random.Generator,
    babble_sources: Sequence[np.ndarray] = (),
    rirs: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """Apply one named condition of :data:`CONDITIONS` to a clean 16 kHz signal.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = np.sin(np.arange(32000) * 0.05).astype(np.float32)
        >>> apply_condition(x, "noise10", rng).shape
        (32000,)
    """
    if condition.startswith("babble"):
        noise = babble(signal.size, babble_sources, rng)
        return add_noise(signal, noise, float(condition[len("babble") :]))
    if condition.startswith("noise"):
        noise = coloured_noise(signal.size, rng, exponent=float(rng.choice([0.0, 1.0, 2.0])))
        return add_noise(signal, noise, float(condition[len("noise") :]))
    if condition == "reverb":
        if not rirs:
            raise InvalidInputError("reverb needs at least one room impulse response")
        return reverberate(signal, rirs[int(rng.integers(len(rirs)))])
    if condition == "crop":
        return crop(signal, rng)
    raise InvalidInputError(f"unknown condition {condition!r}; expected one of {CONDITIONS}")
