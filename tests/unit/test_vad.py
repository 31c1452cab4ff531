"""Frame probabilities -> speech segments (speakerrpl.vad.probabilities_to_segments), no model."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from speakerrpl import vad
from speakerrpl.errors import InvalidInputError, MissingDependencyError

F = vad.FRAME_SECONDS


def _probs(*runs: tuple[float, int]) -> np.ndarray:
    return np.concatenate([np.full(n, p, dtype=np.float32) for p, n in runs])


def test_one_run_gives_one_segment_at_the_frame_times() -> None:
    p = _probs((0.0, 10), (0.9, 20), (0.0, 10))
    assert vad.probabilities_to_segments(p, pad=0.0) == [(round(10 * F, 3), round(30 * F, 3))]


def test_short_pause_is_bridged_and_long_pause_splits() -> None:
    short = _probs((0.9, 20), (0.0, 2), (0.9, 20))  # 64 ms < min_silence 100 ms
    assert len(vad.probabilities_to_segments(short, pad=0.0)) == 1
    long = _probs((0.9, 20), (0.0, 10), (0.9, 20))
    assert vad.probabilities_to_segments(long, pad=0.0) == [
        (0.0, round(20 * F, 3)),
        (round(30 * F, 3), round(50 * F, 3)),
    ]


def test_hysteresis_keeps_speech_between_the_two_thresholds() -> None:
    p = _probs((0.9, 10), (0.4, 30), (0.9, 10))  # 0.4 is above 0.5 - 0.15
    assert vad.probabilities_to_segments(p, pad=0.0) == [(0.0, round(50 * F, 3))]


def test_too_short_segments_are_dropped_and_padding_is_clipped() -> None:
    p = _probs((0.9, 3), (0.0, 20), (0.9, 20))  # 96 ms < min_speech 250 ms
    (seg,) = vad.probabilities_to_segments(p, pad=0.05)
    assert seg == (round(23 * F - 0.05, 3), round(43 * F, 3))


def test_empty_and_silent_inputs_give_no_segments() -> None:
    assert vad.probabilities_to_segments(np.zeros(0)) == []
    assert vad.probabilities_to_segments(np.full(100, 0.2)) == []


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(InvalidInputError, match="threshold"):
        vad.probabilities_to_segments(np.zeros(3), threshold=1.5)
    with pytest.raises(InvalidInputError):
        vad.probabilities_to_segments(np.zeros(3), min_speech=-1)


def test_missing_wheel_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match=r"speakerrpl\[diarization\]"):
        vad.locate_silero_model()
