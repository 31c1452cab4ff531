"""Synthetic conversations for evaluating diarization, built from single-speaker utterances.

Turns alternate between speakers (never the same one twice in a row), last 0.5-20 s
(log-uniform) and are made of the speaker's utterances (leading/trailing silence trimmed, cut to
the turn length); turns are separated by pauses or overlap the previous one. Each speaker gets a
level and optionally a room impulse response; the mix optionally gets noise at an SNR. The
reference holds one ``(start, end, speaker)`` piece per placed utterance, so pauses inside a
turn are not speech.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from speakerrpl.errors import InvalidInputError
from speakerrpl.synth.conditions import add_noise, babble, coloured_noise, reverberate

__all__ = ["Conversation", "overlap_ratio", "simulate_conversation", "trim_silence"]

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Conversation:
    """A mixed recording and its reference turns ``(start, end, speaker)``."""

    wave: np.ndarray
    reference: list[tuple[float, float, str]]

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return self.wave.size / SAMPLE_RATE


def trim_silence(wave: np.ndarray, floor_db: float = -35.0) -> np.ndarray:
    """``wave`` without leading/trailing 10 ms frames quieter than ``floor_db`` below the peak.

    Example:
        >>> w = np.r_[np.zeros(1600), 0.5 * np.ones(3200), np.zeros(1600)].astype(np.float32)
        >>> trim_silence(w).size
        3200
    """
    hop = SAMPLE_RATE // 100
    n = wave.size // hop
    if n == 0:
        return wave
    rms = np.sqrt(np.mean(np.square(wave[: n * hop].reshape(n, hop), dtype=np.float64), axis=1))
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (floor_db / 20))
    return wave[loud[0] * hop : (loud[-1] + 1) * hop]


def overlap_ratio(reference: Sequence[tuple[float, float, str]], step: float = 0.01) -> float:
    """Share of speech time where two or more speakers talk."""
    if not reference:
        return 0.0
    end = max(b for _, b, _ in reference)
    count = np.zeros(int(np.ceil(end / step)) + 1, dtype=np.int32)
    for a, b, _ in reference:
        count[round(a / step) : round(b / step)] += 1
    speech = np.count_nonzero(count)
    return float(np.count_nonzero(count > 1) / speech) if speech else 0.0


def _turn(
    utts: Sequence[np.ndarray], length: float, rng: np.random.Generator
) -> list[tuple[float, np.ndarray]]:
    """Pieces ``(offset_s, samples)`` of one turn of about ``length`` seconds."""
    pieces: list[tuple[float, np.ndarray]] = []
    t, target = 0.0, int(length * SAMPLE_RATE)
    while t * SAMPLE_RATE < target:
        utt = utts[int(rng.integers(len(utts)))]
        left = target - int(t * SAMPLE_RATE)
        if utt.size > left:
            start = int(rng.integers(utt.size - left + 1)) if not pieces else 0
            utt = utt[start : start + left]
        pieces.append((t, utt))
        t += utt.size / SAMPLE_RATE + float(rng.uniform(0.1, 0.4))
    return pieces


def simulate_conversation(
    sources: Mapping[str, Sequence[np.ndarray]],
    rng: np.random.Generator,
    *,
    duration: float = 90.0,
    turn_range: tuple[float, float] = (0.5, 20.0),
    pause_range: tuple[float, float] = (0.1, 1.5),
    overlap_probability: float = 0.2,
    max_overlap: float = 3.0,
    snr: float | None = None,
    noise: str = "coloured",
    babble_sources: Sequence[np.ndarray] = (),
    rirs: Sequence[np.ndarray] = (),
) -> Conversation:
    """A conversation of about ``duration`` seconds between the speakers of ``sources``.

    Args:
        sources: speaker -> 16 kHz utterances (at least 2 speakers).
        rng: the random generator (the only source of randomness).
        duration: stop adding turns after this many seconds.
        turn_range: shortest and longest turn, seconds (drawn log-uniformly).
        pause_range: pause between turns, seconds (uniform).
        overlap_probability: chance that a turn starts before the previous one ends (by
            0.25 s up to ``max_overlap`` seconds, at most half of either turn).
        max_overlap: longest overlap, seconds.
        snr: noise level in dB, or ``None`` for no noise.
        noise: ``"coloured"`` (white/pink/brown) or ``"babble"`` (from ``babble_sources``).
        babble_sources: utterances of people outside the conversation.
        rirs: room impulse responses; each speaker gets one at random when given.
    """
    speakers = sorted(sources)
    if len(speakers) < 2 or any(len(sources[s]) == 0 for s in speakers):
        raise InvalidInputError("a conversation needs at least 2 speakers with utterances each")
    utts = {
        s: [trim_silence(np.asarray(u, dtype=np.float32)) for u in sources[s]] for s in speakers
    }
    tracks = {s: np.zeros(int((duration + 40) * SAMPLE_RATE), np.float32) for s in speakers}
    reference: list[tuple[float, float, str]] = []
    t, prev, prev_len = float(rng.uniform(0.2, 1.0)), "", 0.0  # t: where the last turn ended
    spoken: set[str] = set()
    while t < duration:
        silent = [s for s in speakers if s != prev and s not in spoken]  # everyone speaks
        who = str(rng.choice(silent or [s for s in speakers if s != prev]))
        spoken.add(who)
        length = float(np.exp(rng.uniform(*np.log(turn_range))))
        pieces = _turn(utts[who], length, rng)
        length = pieces[-1][0] + pieces[-1][1].size / SAMPLE_RATE
        if prev and rng.random() < overlap_probability:
            t -= min(float(rng.uniform(0.25, max_overlap)), prev_len / 2, length / 2)
        elif prev:
            t += float(rng.uniform(*pause_range))
        for offset, piece in pieces:
            start = int((t + offset) * SAMPLE_RATE)
            tracks[who][start : start + piece.size] += piece
            reference.append(
                (round(start / SAMPLE_RATE, 3), round((start + piece.size) / SAMPLE_RATE, 3), who)
            )
        t += length
        prev, prev_len = who, length
    end = int((max(b for _, b, _ in reference) + 0.5) * SAMPLE_RATE)
    mix = np.zeros(end, dtype=np.float64)
    for s in speakers:
        track = tracks[s][:end]
        if rirs:
            track = reverberate(track, rirs[int(rng.integers(len(rirs)))])
        level = 10 ** (float(rng.uniform(-26.0, -20.0)) / 20)
        active = track[np.abs(track) > 1e-4]
        if active.size:
            mix += track * (level / np.sqrt(np.mean(np.square(active, dtype=np.float64))))
    if snr is not None:
        if noise == "babble":
            background = babble(end, babble_sources, rng)
        else:
            background = coloured_noise(end, rng, exponent=float(rng.choice([0.0, 1.0, 2.0])))
        mix = add_noise(mix, background, snr)
    peak = float(np.abs(mix).max())
    wave = (mix / peak * 0.9 if peak > 0.9 else mix).astype(np.float32)
    return Conversation(wave, sorted(reference))
