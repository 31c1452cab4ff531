"""Within-speaker variability: per-utterance speaking rate, pitch level and range, loudness.

A :class:`Prosody` is drawn per utterance (:func:`draw_prosody`) and applied by the engine
itself where it offers a control (espeak-ng / MBROLA: SSML ``<prosody rate pitch range>``;
SVOX pico: ``<speed>``/``<pitch>`` markup; flite: ``duration_stretch``; festival:
``Duration_Stretch``; Piper: ``length_scale``; Kokoro: ``speed``), otherwise after synthesis
by sox (``pitch``, a WSOLA shift in cents, run with ``-D -R``: no dither, repeatable). The
ranges are small enough to keep the identity (checked with CAM++ in the integration tests and
``docs/corpus.md``).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from xml.sax.saxutils import escape

import numpy as np

from speakerrpl.errors import InvalidInputError, TTSError

__all__ = [
    "NEUTRAL",
    "PROSODY_RANGES",
    "Prosody",
    "draw_prosody",
    "pico_markup",
    "sox_pitch",
    "ssml",
]

# (low, high) of the uniform per-utterance draws
PROSODY_RANGES: dict[str, tuple[float, float]] = {
    "rate": (0.8, 1.25),  # speaking-rate factor
    "pitch": (-2.5, 2.5),  # pitch level, semitones (native controls)
    "range": (0.5, 1.8),  # intonation range factor (espeak-ng / MBROLA only)
    "gain_db": (-12.0, 0.0),  # loudness below the normalised peak of 0.5
}
# engines whose pitch is shifted by sox after synthesis (formants move with it): a narrower range
_SOX_PITCH_SCALE = 0.6
_SOX_PITCH_ENGINES = frozenset({"festival", "flite", "piper", "kokoro"})


@dataclass(frozen=True)
class Prosody:
    """How one utterance is spoken, relative to the voice's own defaults.

    Attributes:
        rate: speaking-rate factor (1 = the voice's default, > 1 faster).
        pitch: pitch-level shift in semitones.
        range: intonation (pitch range) factor, where the engine offers it.
        gain_db: loudness in dB relative to the normalised peak (<= 0).

    Example:
        >>> Prosody(rate=1.1).rate
        1.1
    """

    rate: float = 1.0
    pitch: float = 0.0
    range: float = 1.0
    gain_db: float = 0.0

    def __post_init__(self) -> None:
        if not (0.5 <= self.rate <= 2.0 and 0.2 <= self.range <= 3.0):
            raise InvalidInputError(f"rate must be in [0.5, 2], range in [0.2, 3]; got {self}")
        if not (-12.0 <= self.pitch <= 12.0 and -40.0 <= self.gain_db <= 0.0):
            raise InvalidInputError(f"pitch must be in [-12, 12] st, gain_db in [-40, 0]: {self}")


NEUTRAL = Prosody()


def draw_prosody(rng: np.random.Generator, engine: str) -> Prosody:
    """One utterance's prosody for ``engine``, drawn uniformly from :data:`PROSODY_RANGES`.

    Example:
        >>> p = draw_prosody(np.random.default_rng(0), "flite")
        >>> abs(p.pitch) <= 2.5 * 0.6 and p.range == 1.0
        True
    """
    r = PROSODY_RANGES
    rate = float(rng.uniform(*r["rate"]))
    pitch = float(rng.uniform(*r["pitch"]))
    intonation = float(rng.uniform(*r["range"]))
    gain = float(rng.uniform(*r["gain_db"]))
    if engine in _SOX_PITCH_ENGINES:
        pitch, intonation = pitch * _SOX_PITCH_SCALE, 1.0
    elif engine != "espeak" and engine != "mbrola":
        intonation = 1.0
    return Prosody(round(rate, 3), round(pitch, 2), round(intonation, 2), round(gain, 1))


def ssml(text: str, prosody: Prosody) -> str:
    """espeak-ng SSML (``espeak-ng -m``) for ``text`` spoken with ``prosody``.

    Example:
        >>> ssml("A & B", Prosody(rate=1.1, pitch=1.0, range=1.5))
        '<speak><prosody rate="110%" pitch="+6%" range="150%">A &amp; B</prosody></speak>'
    """
    pitch = 100.0 * (2.0 ** (prosody.pitch / 12.0) - 1.0)
    return (
        f'<speak><prosody rate="{100 * prosody.rate:.0f}%" pitch="{pitch:+.0f}%" '
        f'range="{100 * prosody.range:.0f}%">{escape(text)}</prosody></speak>'
    )


def pico_markup(text: str, prosody: Prosody) -> str:
    """SVOX pico markup (``pico2wave``): speed and pitch levels in percent.

    Example:
        >>> pico_markup("Hi", Prosody(rate=0.9, pitch=-1.0))
        '<speed level="90"><pitch level="94">Hi</pitch></speed>'
    """
    pitch = 100.0 * 2.0 ** (prosody.pitch / 12.0)
    return (
        f'<speed level="{100 * prosody.rate:.0f}"><pitch level="{pitch:.0f}">'
        f"{escape(text)}</pitch></speed>"
    )


def sox_pitch(audio: np.ndarray, semitones: float, sample_rate: int = 16000) -> np.ndarray:
    """Shift the pitch by ``semitones`` keeping the duration (sox ``pitch``, deterministic).

    Raises:
        TTSError: sox is missing or failed.

    Example:
        >>> x = np.sin(np.arange(16000) * 0.1).astype(np.float32)
        >>> sox_pitch(x, 0.0) is x
        True
    """
    if abs(semitones) < 0.01:
        return audio
    raw = ["-t", "f32", "-r", str(sample_rate), "-c", "1"]
    cmd = ["sox", "-D", "-R", "-V1", *raw, "-", *raw, "-", "pitch", f"{100 * semitones:.0f}"]
    try:
        proc = subprocess.run(
            cmd, input=np.asarray(audio, "<f4").tobytes(), capture_output=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TTSError(f"sox failed to run: {exc}") from exc
    if proc.returncode != 0:
        raise TTSError(f"sox pitch failed: {proc.stderr.decode(errors='replace')[-200:]}")
    return np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)
