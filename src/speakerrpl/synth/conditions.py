"""Realistic test conditions for the synthetic corpus (applied to *test* copies only).

Conditions (see :data:`CONDITIONS` and ``docs/corpus.md``): device colouration (EQ), a lossy
codec after it, the telephone band, far-field rooms with ambient noise, additive babble of
other corpus voices, stationary and music-like noise, short commands (0.8-1.5 s crops) and
short far-field commands in noise. The channel DSP is :mod:`speakerrpl.synth.channels`;
condition names and the ids of condition copies live in :mod:`speakerrpl.data.condition_ids`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from speakerrpl.audio import speech_duration
from speakerrpl.data.condition_ids import CONDITIONS, CROP_RANGE_S, SNR_RANGES_DB
from speakerrpl.errors import InvalidInputError
from speakerrpl.synth import channels as ch
from speakerrpl.synth.channels import reverberate

__all__ = [
    "active_region",
    "add_noise",
    "apply_condition",
    "babble",
    "coloured_noise",
    "crop",
    "music",
    "reverberate",
    "snr_db",
    "stationary_noise",
]

SAMPLE_RATE = 16000
_MIN_ACTIVE_SHARE = 0.6


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


def music(length: int, rng: np.random.Generator) -> np.ndarray:
    """Music-like noise, unit power: chords of harmonic tones changing every 0.2-0.6 s, with
    percussive noise bursts on a beat.

    Example:
        >>> m = music(16000, np.random.default_rng(0))
        >>> m.shape, round(float(np.mean(m**2)), 6)
        ((16000,), 1.0)
    """
    t = np.arange(length) / SAMPLE_RATE
    out = np.zeros(length)
    start = 0
    while start < length:
        stop = min(length, start + int(rng.uniform(0.2, 0.6) * SAMPLE_RATE))
        seg = t[start:stop] - t[start]
        envelope = np.exp(-seg * rng.uniform(1.0, 6.0))
        for _ in range(int(rng.integers(2, 5))):
            f0 = 110.0 * 2.0 ** (int(rng.integers(0, 36)) / 12.0)
            for h in range(1, 6):
                out[start:stop] += envelope * np.sin(2 * np.pi * f0 * h * seg) / h**1.5
        start = stop
    beat = int(rng.uniform(0.3, 0.6) * SAMPLE_RATE)
    burst = rng.standard_normal(min(800, beat)) * np.exp(-np.arange(min(800, beat)) / 150.0)
    for onset in range(int(rng.integers(beat)), length - burst.size, beat):
        out[onset : onset + burst.size] += 0.5 * burst
    return (out / (np.sqrt(np.mean(out**2)) + 1e-12)).astype(np.float32)


def stationary_noise(length: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """White, pink or brown noise, or mains hum with fan noise (brown + 50/60 Hz harmonics).

    Example:
        >>> n, kind = stationary_noise(16000, np.random.default_rng(0))
        >>> n.shape, kind in {"white", "pink", "brown", "hum"}
        ((16000,), True)
    """
    kind = str(rng.choice(["white", "pink", "brown", "hum"]))
    if kind != "hum":
        return coloured_noise(length, rng, {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind]), kind
    t = np.arange(length) / SAMPLE_RATE
    mains = float(rng.choice([50.0, 60.0]))
    hum = sum(np.sin(2 * np.pi * mains * h * t + rng.uniform(0, 6.3)) / h for h in range(1, 8))
    noise = coloured_noise(length, rng, 2.0) + 0.7 * hum / np.sqrt(np.mean(hum**2))
    return (noise / np.sqrt(np.mean(noise**2))).astype(np.float32), kind


def active_region(signal: np.ndarray, threshold: float = 0.05) -> np.ndarray:
    """The signal without leading and trailing silence (samples under ``threshold`` x peak).

    Example:
        >>> active_region(np.r_[np.zeros(5), np.ones(3), np.zeros(4)]).size
        3
    """
    loud = np.flatnonzero(np.abs(signal) > threshold * (np.abs(signal).max() + 1e-12))
    return signal if loud.size == 0 else signal[loud[0] : loud[-1] + 1]


def crop(
    signal: np.ndarray, rng: np.random.Generator, seconds: tuple[float, float] = CROP_RANGE_S
) -> np.ndarray:
    """A random segment of the speech (0.8-1.5 s), taken inside the active region.

    The segment is redrawn until at least 60 % of it is active by
    :func:`speakerrpl.audio.speech_duration` (the embedding step's own check), keeping the most
    active of 20 draws otherwise; the whole active region is returned when it is shorter than
    the drawn length.

    Example:
        >>> x = np.sin(np.arange(80000) * 0.05).astype(np.float32)
        >>> 0.8 <= crop(x, np.random.default_rng(0)).size / 16000 <= 1.5
        True
    """
    length = int(rng.uniform(*seconds) * SAMPLE_RATE)
    speech = active_region(np.asarray(signal, dtype=np.float32))
    if speech.size <= length:
        return speech
    # a command is speech, not a pause: redraw (up to 20 times) until 60 % of it is active
    best, best_active = 0, -1.0
    for _ in range(20):
        start = int(rng.integers(speech.size - length + 1))
        active = speech_duration(speech[start : start + length])
        if active > best_active:
            best, best_active = start, active
        if active >= _MIN_ACTIVE_SHARE * length / SAMPLE_RATE:
            break
    return speech[best : best + length]


def _mix(
    signal: np.ndarray, kind: str, snr: float, rng: np.random.Generator, babble_sources: Sequence
) -> tuple[np.ndarray, str]:
    if kind == "babble":
        noise, what = babble(signal.size, babble_sources, rng), f"babble of {len(babble_sources)}"
    elif kind == "music":
        noise, what = music(signal.size, rng), "music"
    else:
        noise, what = stationary_noise(signal.size, rng)
    return add_noise(signal, noise, snr), f"{what} at {snr:.1f} dB"


def _snr(rng: np.random.Generator, condition: str) -> float:
    low, high = SNR_RANGES_DB[condition]
    return round(float(rng.uniform(low, high)), 1)


def apply_condition(
    signal: np.ndarray,
    condition: str,
    rng: np.random.Generator,
    babble_sources: Sequence[np.ndarray] = (),
    rooms: Sequence[ch.Room] = (),
) -> tuple[np.ndarray, str]:
    """Apply one named condition of :data:`CONDITIONS` to a clean 16 kHz signal.

    Returns:
        The test copy and a description of what was drawn (listed per utterance).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = np.sin(np.arange(32000) * 0.05).astype(np.float32)
        >>> out, what = apply_condition(x, "noise", rng)
        >>> out.shape, what.endswith("dB")
        ((32000,), True)
    """
    if condition not in CONDITIONS:
        raise InvalidInputError(f"unknown condition {condition!r}; expected one of {CONDITIONS}")
    parts = []
    if condition.startswith("short"):
        signal = crop(signal, rng)
        parts.append(f"crop {signal.size / SAMPLE_RATE:.2f}s")
    if condition in ("device", "codec"):
        signal, what = ch.device_colouration(signal, rng)
        parts.append(what)
    if condition == "codec":
        signal, what = ch.codec(signal, rng)
        parts.append(what)
    elif condition == "phone":
        signal, what = ch.telephone(signal, rng)
        parts.append(what)
    elif condition in ("far", "short_far"):
        signal, what = ch.far_field(signal, rng, rooms)
        kind = "noise" if condition == "far" else str(rng.choice(["babble", "noise", "music"]))
        if kind == "babble" and not babble_sources:
            kind = "noise"
        signal, noise = _mix(signal, kind, _snr(rng, condition), rng, babble_sources)
        parts += [what, noise]
    elif condition in ("babble", "noise", "music"):
        if condition == "babble" and not babble_sources:
            raise InvalidInputError("babble needs at least one source utterance")
        signal, what = _mix(signal, condition, _snr(rng, condition), rng, babble_sources)
        parts.append(what)
    return np.asarray(signal, dtype=np.float32), "; ".join(parts) or "close-talk"
