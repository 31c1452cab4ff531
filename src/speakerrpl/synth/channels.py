"""Channel simulation for test copies: device colouration, lossy codecs, telephone, rooms.

Every function takes a 16 kHz float signal and a seeded :class:`numpy.random.Generator` and
returns the processed signal (same length) plus a short description of what was drawn, which
the corpus lists per utterance. Codecs run in memory through libsndfile (``soundfile``: Opus,
Vorbis and MP3 in libsndfile >= 1.1; G.711 mu-law and GSM 06.10 in WAV), so no subprocess is
needed; rooms are pyroomacoustics shoebox simulations (the ``corpus`` extra).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from speakerrpl._optional import require
from speakerrpl.errors import InvalidInputError

__all__ = [
    "Room",
    "codec",
    "device_colouration",
    "far_field",
    "reverberate",
    "room_impulse_responses",
    "telephone",
]

SAMPLE_RATE = 16000
# (name, low corner of (x, y, z) in m, high corner): small bedroom, living room, open office
ROOM_SIZES = (
    ("small", (3.0, 2.5, 2.4), (4.0, 3.5, 2.7)),
    ("medium", (4.5, 3.8, 2.5), (6.5, 5.5, 3.0)),
    ("large", (8.0, 6.0, 2.8), (12.0, 9.0, 3.5)),
)
_RIR_SECONDS = 0.8


def _signal() -> Any:
    """``scipy.signal`` (the ``corpus`` extra), imported on first use."""
    return require("scipy.signal", extra="corpus", purpose="channel simulation")


def _peaking(freq: float, gain_db: float, q: float) -> np.ndarray:
    """RBJ-cookbook peaking biquad as one second-order section."""
    a = 10.0 ** (gain_db / 40.0)
    w = 2.0 * np.pi * freq / SAMPLE_RATE
    alpha = np.sin(w) / (2.0 * q)
    b = np.array([1 + alpha * a, -2 * np.cos(w), 1 - alpha * a])
    den = np.array([1 + alpha / a, -2 * np.cos(w), 1 - alpha / a])
    return np.concatenate([b / den[0], den / den[0]])[None, :]


def _match_rms(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    scale = np.sqrt(np.mean(ref.astype(np.float64) ** 2) / (np.mean(out**2) + 1e-20))
    out = out * scale
    peak = np.abs(out).max()
    return (out / peak if peak > 1.0 else out).astype(np.float32)


def device_colouration(signal: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A cheap device: band limits, three to five resonances and a saturating amplifier.

    High-pass at 150-500 Hz, low-pass at 3-5.5 kHz (4th-order Butterworth), peaks/dips of
    +-4-12 dB at random frequencies, then ``tanh`` saturation with a drive of 1-3.5 at the
    peak (soft clipping of a small loudspeaker amplifier / mic preamp); the RMS level is kept.
    No noise is added: this is the clean-but-mismatched channel.

    Example:
        >>> x = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
        >>> y, what = device_colouration(x, np.random.default_rng(1))
        >>> y.shape, what.startswith("eq hp=")
        ((16000,), True)
    """
    hp, lp = float(rng.uniform(150, 500)), float(rng.uniform(3000, 5500))
    scipy_signal = _signal()
    sos = [scipy_signal.butter(2, hp, "highpass", fs=SAMPLE_RATE, output="sos")]
    sos.append(scipy_signal.butter(4, lp, "lowpass", fs=SAMPLE_RATE, output="sos"))
    peaks = []
    for _ in range(int(rng.integers(3, 6))):
        freq = float(np.exp(rng.uniform(np.log(300), np.log(min(lp, 6000)))))
        gain = float(rng.choice([-1.0, 1.0]) * rng.uniform(4, 12))
        sos.append(_peaking(freq, gain, float(rng.uniform(0.7, 2.5))))
        peaks.append(f"{freq:.0f}Hz{gain:+.0f}dB")
    out = scipy_signal.sosfilt(np.concatenate(sos), np.asarray(signal, dtype=np.float64))
    drive = float(rng.uniform(1.0, 3.5))
    out = np.tanh(drive * out / (np.abs(out).max() + 1e-12))
    what = f"eq hp={hp:.0f} lp={lp:.0f} peaks={','.join(peaks)} drive={drive:.1f}"
    return _match_rms(out, signal), what


def _roundtrip(signal: np.ndarray, rate: int, **kwargs: object) -> np.ndarray:
    buffer = io.BytesIO()
    sf.write(buffer, signal, rate, **kwargs)
    buffer.seek(0)
    decoded, _ = sf.read(buffer, dtype="float32", always_2d=False)
    return np.asarray(decoded, dtype=np.float32)


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    return x[:n] if x.size >= n else np.pad(x, (0, n - x.size))


_CODECS = {
    "opus": {"format": "OGG", "subtype": "OPUS"},
    "vorbis": {"format": "OGG", "subtype": "VORBIS"},
    "mp3": {"format": "MP3", "subtype": "MPEG_LAYER_III", "bitrate_mode": "CONSTANT"},
}
# libsndfile compression levels drawn per codec (measured on 16 kHz noise: Opus 0.93-1.0 =
# about 22-7 kbit/s, MP3 0.9-0.98 = 25-10 kbit/s, Vorbis about 36-40 kbit/s at any level;
# MP3 rejects 1.0)
_LEVELS = {"opus": (0.93, 1.0), "vorbis": (0.95, 1.0), "mp3": (0.9, 0.98)}


def codec(signal: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Encode and decode with a low-bitrate lossy codec (Opus, Vorbis or MP3; libsndfile).

    Example:
        >>> x = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
        >>> y, what = codec(x, np.random.default_rng(0))
        >>> y.shape, what.split()[0]
        ((16000,), 'codec')
    """
    name = str(rng.choice(sorted(_CODECS)))
    level = round(float(rng.uniform(*_LEVELS[name])), 3)
    clipped = np.clip(np.asarray(signal, dtype=np.float32), -1.0, 1.0)
    out = _roundtrip(clipped, SAMPLE_RATE, compression_level=level, **_CODECS[name])
    return _fit_length(out, signal.size), f"codec {name} level={level}"


def _mulaw(x: np.ndarray, mu: float = 255.0) -> np.ndarray:
    """G.711 mu-law companding to 8 bits and back (numpy)."""
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    q = np.round((y + 1.0) * 127.5) / 127.5 - 1.0
    return (np.sign(q) * np.expm1(np.abs(q) * np.log1p(mu)) / mu).astype(np.float32)


def telephone(signal: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Narrow-band telephone: 300-3400 Hz at 8 kHz, G.711 mu-law or GSM 06.10, back to 16 kHz.

    Example:
        >>> x = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
        >>> y, what = telephone(x, np.random.default_rng(0))
        >>> y.shape, what.startswith("phone 8kHz")
        ((16000,), True)
    """
    scipy_signal = _signal()
    band = scipy_signal.butter(4, [300, 3400], "bandpass", fs=SAMPLE_RATE, output="sos")
    narrow = scipy_signal.sosfilt(band, np.asarray(signal, dtype=np.float64))
    narrow = 0.5 * narrow / (np.abs(narrow).max() + 1e-12)
    low = soxr.resample(narrow.astype(np.float32), SAMPLE_RATE, 8000).astype(np.float32)
    kind = str(rng.choice(["gsm", "mulaw"]))
    if kind == "gsm":
        coded = _roundtrip(low, 8000, format="WAV", subtype="GSM610")
    else:
        coded = _mulaw(np.clip(low, -1.0, 1.0))
    out = soxr.resample(_fit_length(coded, low.size), 8000, SAMPLE_RATE).astype(np.float32)
    return _match_rms(_fit_length(out, signal.size), signal), f"phone 8kHz {kind}"


@dataclass(frozen=True)
class Room:
    """A simulated room impulse response and how it was made."""

    rir: np.ndarray
    size: str
    dims: tuple[float, float, float]
    distance_m: float
    rt60_s: float

    def describe(self) -> str:
        """A one-line description for the per-utterance condition list."""
        dims = "x".join(f"{d:.1f}" for d in self.dims)
        return f"room {self.size} {dims}m rt60={self.rt60_s:.2f}s dist={self.distance_m:.1f}m"


def _place(rng: np.random.Generator, dims: np.ndarray, distance: float) -> tuple[list, list]:
    """Microphone and a source ``distance`` m away (horizontally), both inside the room."""
    for _ in range(200):
        mic = rng.uniform([0.4, 0.4, 0.7], dims - [0.4, 0.4, 1.0])
        angle = rng.uniform(0, 2 * np.pi)
        src = mic + distance * np.array([np.cos(angle), np.sin(angle), 0.0])
        src[2] = rng.uniform(1.2, min(1.8, dims[2] - 0.3))
        if np.all(src[:2] > 0.3) and np.all(src[:2] < dims[:2] - 0.3):
            return mic.tolist(), src.tolist()
    raise InvalidInputError(f"no source {distance:.1f} m from the microphone fits in {dims}")


def room_impulse_responses(count: int, rng: np.random.Generator) -> list[Room]:
    """``count`` far-field rooms cycling small/medium/large, source 1-5 m away, RT60 0.2-0.9 s.

    The distance is capped to what the room holds (about 2.5 m in a small room).

    Example:
        >>> rooms = room_impulse_responses(1, np.random.default_rng(0))  # doctest: +SKIP
        >>> 1.0 <= rooms[0].distance_m <= 5.0  # doctest: +SKIP
        True
    """
    pra = require("pyroomacoustics", extra="corpus", purpose="far-field rooms")
    rooms = []
    for i in range(count):
        size, low, high = ROOM_SIZES[i % len(ROOM_SIZES)]
        dims = rng.uniform(low, high)
        rt60 = float(
            rng.uniform(*{"small": (0.2, 0.5), "medium": (0.3, 0.7)}.get(size, (0.5, 0.9)))
        )
        distance = float(rng.uniform(1.0, min(5.0, 0.8 * float(np.hypot(*dims[:2])) - 0.8)))
        mic, src = _place(rng, dims, distance)
        absorption, max_order = pra.inverse_sabine(rt60, dims)
        room = pra.ShoeBox(
            dims, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=min(max_order, 20)
        )
        room.add_source(src)
        room.add_microphone(mic)
        room.compute_rir()
        rir = np.asarray(room.rir[0][0], dtype=np.float64)[: int(_RIR_SECONDS * SAMPLE_RATE)]
        rir = (rir / np.abs(rir).max()).astype(np.float32)
        rooms.append(Room(rir, size, (dims[0], dims[1], dims[2]), distance, rt60))
    return rooms


def reverberate(signal: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with a room impulse response, keep the length, match the input's peak.

    Example:
        >>> out = reverberate(np.r_[1.0, np.zeros(99)], np.r_[1.0, 0.5])
        >>> out[:3].tolist()
        [1.0, 0.5, 0.0]
    """
    signal = np.asarray(signal, dtype=np.float64)
    wet = _signal().fftconvolve(signal, rir)[: signal.size]
    return (wet * np.abs(signal).max() / (np.abs(wet).max() + 1e-12)).astype(np.float32)


def far_field(
    signal: np.ndarray, rng: np.random.Generator, rooms: Sequence[Room]
) -> tuple[np.ndarray, str]:
    """The signal as a distant microphone hears it in one of ``rooms`` (drawn)."""
    if not rooms:
        raise InvalidInputError("far-field conditions need at least one room impulse response")
    room = rooms[int(rng.integers(len(rooms)))]
    return reverberate(signal, room.rir), room.describe()
