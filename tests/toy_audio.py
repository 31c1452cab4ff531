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


class EnergyVAD:
    """A stand-in for Silero VAD on tones: a 32 ms frame is 'speech' when its RMS is > 0.01."""

    def __init__(self) -> None:
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def process_block(self, samples: np.ndarray) -> np.ndarray:
        frames = np.asarray(samples, dtype=np.float32).reshape(-1, 512)
        return (np.sqrt(np.mean(frames**2, axis=1)) > 0.01).astype(np.float32)
