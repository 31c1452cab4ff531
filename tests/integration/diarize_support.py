"""Shared fixtures of the diarization tests: a real dialogue and a registry that names it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speakerrpl.audio import load_audio
from speakerrpl.diarization.simulate import trim_silence

SR = 16_000


def dialogue_parts(clips: dict[str, list[Path]]) -> list[tuple[str, Path]]:
    """Held-out clips of bob and alice (real people, enrolled in ``base_registry``) and two
    espeak-ng strangers, in speaking order."""
    return [
        ("bob", clips["bob_test"][0]),
        ("alice", clips["alice_test"][0]),
        ("stranger1", clips["unknown"][0]),
        ("bob", clips["bob_test"][1]),
        ("stranger2", clips["unknown"][1]),
        ("alice", clips["alice_test"][0]),
    ]


@pytest.fixture(scope="session")
def dialogue(
    service_dir: Path, clips: dict[str, list[Path]]
) -> tuple[Path, list[tuple[float, float, str]]]:
    """The dialogue as a 44.1 kHz stereo WAV file (0.6 s pauses) and its reference turns."""
    parts, ref, t = [], [], 0.0
    for who, path in dialogue_parts(clips):
        wave = trim_silence(load_audio(path))
        parts += [wave, np.zeros(int(0.6 * SR), np.float32)]
        ref.append((round(t, 3), round(t + wave.size / SR, 3), who))
        t += wave.size / SR + 0.6
    wave = np.concatenate(parts)
    out = service_dir / "dialogue.wav"
    import soxr

    high = soxr.resample(wave, SR, 44_100)
    sf.write(out, np.stack([high, high], axis=1), 44_100)
    return out, ref


def overlap_seconds(
    hyp: list[tuple[float, float, str]], ref: list[tuple[float, float, str]], label: str, who: str
) -> float:
    """Seconds where the hypothesis says ``label`` while the reference says ``who``."""
    total = 0.0
    for a, b, h in hyp:
        for c, d, r in ref:
            if h == label and r == who:
                total += max(0.0, min(b, d) - max(a, c))
    return total
