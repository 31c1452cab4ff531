"""Small real stand-ins for the service unit tests: a spectral frontend, tone 'voices', an app.

The frontend is not CAM++ but it is a real one: it turns each 16 kHz waveform into the
normalised log-energies of 16 frequency bands, so tones of different pitch are different
"speakers" and the whole decode -> embed -> identify path runs for real.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from speakerrpl.service.engine import SpeakerEngine
from speakerrpl.service.settings import ServiceSettings

KEY = "unit-test-key-0123"
FAST = {"n_models": 3, "selection_r": 1, "epochs": 6, "n_calibration": 4, "n_unknown": 8}
PITCH = {"alice": 300.0, "bob": 1100.0, "carol": 2400.0, "stranger": 5200.0}
VECTOR_DIM = 16


class VectorFrontend:
    """'Audio' here is already an embedding: a frontend that returns its input."""

    name = "vectors"

    def embed(self, waves: list[np.ndarray]) -> np.ndarray:
        return np.stack(waves).astype(np.float32)


def vector_speaker(seed: int, n: int) -> list[np.ndarray]:
    """``n`` embedding 'clips' of one speaker (a random centre plus small noise)."""
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=VECTOR_DIM)
    return [centre + 0.1 * rng.normal(size=VECTOR_DIM) for _ in range(n)]


def vector_pool() -> tuple[np.ndarray, np.ndarray]:
    """16 pool voices of 3 'clips' each, disjoint seeds from the speakers of the tests."""
    x = np.concatenate([np.stack(vector_speaker(100 + i, 3)) for i in range(16)])
    return x.astype(np.float32), np.repeat([f"pool{i}" for i in range(16)], 3)


class BandFrontend:
    """Log-energies of ``bands`` frequency bands (0-8 kHz), centred and L2-normalised."""

    name = "bands16"
    bands = 16

    def embed(self, waves: list[np.ndarray]) -> np.ndarray:
        out = []
        for w in waves:
            spec = np.abs(np.fft.rfft(w[:16000], n=16000)) ** 2
            bands = np.log(np.stack([b.sum() for b in np.array_split(spec, self.bands)]) + 1e-6)
            bands -= bands.mean()
            out.append(bands / np.linalg.norm(bands))
        return np.asarray(out, dtype=np.float32)


def tone(who: str, seed: int, seconds: float = 1.0) -> np.ndarray:
    """A clip of ``who``: its pitch with a little noise (each seed is another recording)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    f = PITCH[who] * (1 + 0.01 * rng.standard_normal())
    return (0.3 * np.sin(2 * np.pi * f * t) + 0.01 * rng.standard_normal(t.size)).astype("f4")


def wav(wave: np.ndarray, rate: int = 16000, fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, rate, format=fmt)
    return buf.getvalue()


def decoded(who: str, seed: int) -> np.ndarray:
    """``who``'s clip as the service sees it after upload (WAV-encoded, then decoded)."""
    from speakerrpl.audio import load_audio_bytes

    return load_audio_bytes(wav(tone(who, seed)))


def clips(who: str, seeds: range | list[int]) -> list[tuple[str, tuple[str, bytes, str]]]:
    """Multipart ``file`` fields of ``who``'s clips."""
    return [("file", (f"{who}{s}.wav", wav(tone(who, s)), "audio/wav")) for s in seeds]


def _pool_pitches() -> list[float]:
    """16 pitches of other 'voices', none within 15% of an enrolled or stranger pitch."""
    grid = 150.0 * (7000.0 / 150.0) ** (np.arange(40) / 39)
    far = [f for f in grid if all(abs(f / p - 1) > 0.15 for p in PITCH.values())]
    return [float(f) for f in far[:16]]


def pool() -> tuple[np.ndarray, np.ndarray]:
    """Negative pool: 16 other pitches, 3 clips each."""
    front = BandFrontend()
    waves, voices = [], []
    for i, pitch in enumerate(_pool_pitches()):
        t = np.arange(16000) / 16000
        for k in range(3):
            f = pitch * (1 + 0.01 * k)
            waves.append((0.3 * np.sin(2 * np.pi * f * t)).astype("f4"))
            voices.append(f"pool{i}")
    return front.embed(waves), np.asarray(voices)


def engine(path: Path, pool_fn: Any = None, **settings: Any) -> SpeakerEngine:
    # tones through a toy frontend: no stranger tail is measured for it, so every method
    # fits its tail at enrollment; rpl_v2's class extension keeps that fit usable on tones
    settings.setdefault("method", "rpl_v2")
    s = ServiceSettings(identifier_params=FAST, min_enroll_speech=0, **settings)
    return SpeakerEngine(path, s, frontend=BandFrontend(), pool=pool_fn or pool())


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry with alice and bob enrolled from 3 tones each (fitted once per module)."""
    path = tmp_path_factory.mktemp("enrolled") / "reg.db"
    eng = engine(path)
    for who in ("alice", "bob"):
        eng.enroll(who, [decoded(who, s) for s in range(3)])
    return path


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Small ensembles fit several times faster on one thread (as the service runs them)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
