"""RTTM/JSON output, the conversation simulator and the diarization metrics."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from speakerrpl.diarization import Segment, read_rttm, to_json, to_rttm
from speakerrpl.diarization.scoring import naming_rates
from speakerrpl.diarization.simulate import overlap_ratio, simulate_conversation, trim_silence
from speakerrpl.errors import DataError, InvalidInputError


def test_rttm_round_trip_and_field_layout(tmp_path: Path) -> None:
    segs = [Segment(0.25, 1.5, "alice smith", 2.0), Segment(2.0, 3.125, "SPEAKER_01", math.nan)]
    text = to_rttm(segs, "my talk")
    first = text.splitlines()[0].split()
    assert first == ["SPEAKER", "my_talk", "1", "0.250", "1.250", "<NA>", "<NA>",
                     "alice_smith", "<NA>", "<NA>"]  # fmt: skip
    path = tmp_path / "out.rttm"
    path.write_text(text)
    assert read_rttm(path) == {"my_talk": [(0.25, 1.5, "alice_smith"), (2.0, 3.125, "SPEAKER_01")]}
    path.write_text("SPEAKER x 1 abc\n")
    with pytest.raises(DataError):
        read_rttm(path)


def test_json_has_totals_and_null_scores() -> None:
    segs = [Segment(0.0, 1.0, "a", 0.5), Segment(2.0, 2.5, "a", 0.5), Segment(3, 4, "B", math.nan)]
    out = to_json(segs, "f.wav", 5.0)
    assert out["speakers"] == {"a": 1.5, "B": 1.0}
    assert out["segments"][2]["score"] is None and out["segments"][0]["score"] == 0.5


def test_naming_rates_count_time_not_segments() -> None:
    ref = [(0.0, 4.0, "ann"), (4.0, 6.0, "bob"), (6.0, 10.0, "x")]
    hyp = [(0.0, 3.0, "ann"), (3.0, 4.0, "bob"), (4.0, 6.0, "SPEAKER_01"), (6.0, 7.0, "ann"),
           (7.0, 10.0, "SPEAKER_02")]  # fmt: skip
    rates = naming_rates(ref, hyp, {"ann", "bob"})
    assert rates["correct_name"] == pytest.approx(3.0 / 6.0)
    assert rates["stranger_as_enrolled"] == pytest.approx(1.0 / 4.0)
    assert rates["enrolled_seconds"] == pytest.approx(6.0)
    none = naming_rates(ref[:2], hyp[:2], {"ann", "bob"})
    assert math.isnan(none["stranger_as_enrolled"])


def test_der_matches_a_hand_count() -> None:
    pytest.importorskip("pyannote.metrics")
    from speakerrpl.diarization.scoring import der_jer

    ref = [(0.0, 10.0, "a"), (10.0, 20.0, "b")]
    hyp = [(0.0, 12.0, "x"), (12.0, 19.0, "y")]  # 2 s confusion, 1 s missed, no false alarm
    out = der_jer(ref, hyp)
    assert out["der"] == pytest.approx(3.0 / 20.0)
    assert out["confusion"] == pytest.approx(0.1) and out["missed"] == pytest.approx(0.05)
    assert der_jer(ref, ref)["der"] == 0.0 and der_jer(ref, ref)["jer"] == 0.0


def _tones(seed: int) -> dict[str, list[np.ndarray]]:
    t = np.arange(32000) / 16000
    rng = np.random.default_rng(seed)
    return {
        name: [(0.3 * np.sin(2 * np.pi * f * (1 + 0.1 * rng.random()) * t)).astype(np.float32)
               for _ in range(3)]
        for name, f in (("lo", 150.0), ("mid", 300.0), ("hi", 600.0))
    }  # fmt: skip


def test_simulated_conversation_reference_matches_the_audio() -> None:
    conv = simulate_conversation(_tones(0), np.random.default_rng(1), duration=40.0,
                                 overlap_probability=0.5)  # fmt: skip
    assert conv.duration >= 40.0 and np.isfinite(conv.wave).all()
    assert {s for *_, s in conv.reference} == {"lo", "mid", "hi"}
    speech = np.zeros(conv.wave.size, bool)
    for a, b, _ in conv.reference:
        speech[int(a * 16000) : int(b * 16000)] = True
    loud = np.abs(conv.wave) > 1e-3
    assert (loud & ~speech).mean() < 0.001  # no sound outside the reference turns
    assert 0.0 < overlap_ratio(conv.reference) < 0.4
    again = simulate_conversation(_tones(0), np.random.default_rng(1), duration=40.0,
                                  overlap_probability=0.5)  # fmt: skip
    np.testing.assert_array_equal(conv.wave, again.wave)  # seeded


def test_noise_sets_the_snr_and_bad_sources_are_refused() -> None:
    conv = simulate_conversation(_tones(0), np.random.default_rng(2), duration=20.0, snr=0.0)
    speech = np.zeros(conv.wave.size, bool)
    for a, b, _ in conv.reference:
        speech[int(a * 16000) : int(b * 16000)] = True
    assert np.abs(conv.wave[~speech]).mean() > 0.01  # noise in the pauses
    with pytest.raises(InvalidInputError):
        simulate_conversation({"a": [np.ones(100)]}, np.random.default_rng(0))


def test_trim_silence_keeps_the_loud_part() -> None:
    wave = np.r_[np.zeros(8000), 0.5 * np.ones(16000), 1e-4 * np.ones(8000)].astype(np.float32)
    assert trim_silence(wave).size == 16000


def test_naming_rates_in_overlap_and_with_a_collar() -> None:
    ref = [(0.0, 4.0, "ann"), (2.0, 4.0, "x"), (4.0, 8.0, "x")]
    hyp = [(0.0, 4.5, "ann"), (4.5, 8.0, "SPEAKER_01")]
    plain = naming_rates(ref, hyp, {"ann"})
    # "ann" over the stranger's speech is an error only where ann is silent (4.0-4.5)
    assert plain["stranger_as_enrolled"] == pytest.approx(0.5 / 6.0)
    collar = naming_rates(ref, hyp, {"ann"}, collar=1.0)  # 0.5 s each side of 0, 2, 4, 8
    assert collar["stranger_as_enrolled"] == pytest.approx(0.0)
    assert collar["correct_name"] == 1.0
