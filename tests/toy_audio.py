"""Tones standing in for voices, and a frontend that tells them apart (fast unit tests)."""

from __future__ import annotations

import numpy as np

RATE = 16000


class ToneFrontend:
    """Embeds a clip as its normalised energy in 16 frequency bands (a tone is a 'voice')."""

    name = "tones"

    def embed(self, waves: list[np.ndarray]) -> np.ndarray:
        out = []
        for w in waves:
            spec = np.abs(np.fft.rfft(w[:RATE]))
            bands = np.array([b.sum() for b in np.array_split(spec[: RATE // 4], 16)])
            out.append(bands / np.linalg.norm(bands))
        return np.asarray(out, dtype=np.float32)


def tone(freq: float, seconds: float = 1.5, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def pcm16(wave: np.ndarray) -> bytes:
    return (wave * 32767).astype("<i2").tobytes()
