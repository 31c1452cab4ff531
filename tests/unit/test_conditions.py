"""Test conditions: SNR, crops, reverberation and the condition-copy ids."""

from __future__ import annotations

import numpy as np
import pytest

from speakerrpl.data import condition_ids as cids
from speakerrpl.errors import InvalidInputError
from speakerrpl.synth import conditions as cond


def _speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return (0.3 * envelope * np.sin(2 * np.pi * 180 * t + rng.uniform())).astype(np.float32)


@pytest.mark.parametrize("snr", [20.0, 10.0, 5.0])
@pytest.mark.parametrize("kind", ["babble", "noise"])
def test_measured_snr_equals_requested(kind: str, snr: float) -> None:
    clean = _speechlike(2.0)
    rng = np.random.default_rng(1)
    sources = [_speechlike(1.3, seed=s) for s in range(3)]
    noisy = cond.apply_condition(clean, f"{kind}{int(snr)}", rng, babble_sources=sources)
    assert noisy.shape == clean.shape
    assert np.abs(noisy).max() < 1.0  # no peak limiting here, so the mix is clean + noise
    noise = noisy.astype(np.float64) - clean
    assert cond.snr_db(clean, noise) == pytest.approx(snr, abs=0.05)


def test_mix_is_rescaled_when_it_would_clip() -> None:
    loud = np.full(16000, 0.99, dtype=np.float32)
    out = cond.add_noise(loud, np.random.default_rng(0).standard_normal(16000), 5.0)
    assert np.abs(out).max() <= 1.0 + 1e-6


def test_coloured_noise_spectrum_slopes_down_for_brown() -> None:
    noise = cond.coloured_noise(1 << 15, np.random.default_rng(0), exponent=2.0)
    power = np.abs(np.fft.rfft(noise)) ** 2
    assert power[10:100].mean() > 100 * power[-1000:].mean()


def test_crop_length_in_range() -> None:
    rng = np.random.default_rng(3)
    lengths = [cond.crop(_speechlike(6.0), rng).size / 16000 for _ in range(50)]
    assert min(lengths) >= 1.5 - 1e-3
    assert max(lengths) <= 3.0 + 1e-3
    assert max(lengths) - min(lengths) > 0.5  # actually random


def test_short_signal_is_not_padded_by_crop() -> None:
    short = _speechlike(1.0)
    assert cond.crop(short, np.random.default_rng(0)).size == short.size


def test_reverb_keeps_length_and_smears_energy() -> None:
    pytest.importorskip("pyroomacoustics")
    rir = cond.room_impulse_responses(1, np.random.default_rng(0))[0]
    impulse = np.zeros(16000, dtype=np.float32)
    impulse[100] = 1.0
    out = cond.reverberate(impulse, rir)
    assert out.shape == impulse.shape
    assert np.count_nonzero(np.abs(out) > 1e-3) > 500  # a tail of reflections


def test_condition_ids_round_trip() -> None:
    for name in cids.CONDITIONS:
        utt = cids.condition_utt_id("mbrola-us1-03", name)
        assert cids.split_condition(utt) == ("mbrola-us1-03", name)
    assert cids.split_condition("plain") == ("plain", cids.CLEAN)
    with pytest.raises(InvalidInputError, match="unknown condition"):
        cids.condition_utt_id("u", "thunder")
    with pytest.raises(InvalidInputError, match="babble needs"):
        cond.apply_condition(_speechlike(1.0), "babble5", np.random.default_rng(0))


def test_condition_tests_are_the_last_utterances_of_each_speaker() -> None:
    utts = {f"{s}-{i:02d}": s for s in ("b", "a") for i in range(12)}
    tests = cids.select_condition_tests(utts, 4)
    assert tests == [f"{s}-{i:02d}" for s in ("a", "b") for i in range(8, 12)]
    assert cids.select_condition_tests(utts, 0) == []
    assert len(cids.select_condition_tests(utts, 20)) == 24  # never wraps around
    with pytest.raises(InvalidInputError, match="n_tests"):
        cids.select_condition_tests(utts, -1)


def test_conditioned_utterances_and_available_conditions_on_a_test_subset() -> None:
    clean = [f"a-{i:02d}" for i in range(4)] + [f"b-{i:02d}" for i in range(4)]
    tests = cids.select_condition_tests({u: u[0] for u in clean}, 1)
    ids = clean + [cids.condition_utt_id(u, c) for u in tests for c in cids.CONDITIONS]
    assert cids.conditioned_utterances(ids) == {"a-03", "b-03"}
    assert cids.available_conditions(ids) == [cids.CLEAN, *cids.CONDITIONS]
    ids.remove("b-03__crop")  # crop is no longer complete over the conditioned utterances
    assert "crop" not in cids.available_conditions(ids)
    assert cids.available_conditions(clean) == [cids.CLEAN]
    assert cids.conditioned_utterances(clean) == set()


def test_resolve_conditions() -> None:
    ids = ["a1", "a2", "a2__crop"]
    assert cids.resolve_conditions("auto", ids) == ["clean", "crop"]
    assert cids.resolve_conditions("all", ids) == [cids.CLEAN, *cids.CONDITIONS]
    assert cids.resolve_conditions("clean, noise5", ids) == ["clean", "noise5"]
    assert cids.resolve_conditions(["reverb"], ids) == ["reverb"]
    with pytest.raises(InvalidInputError, match="unknown conditions"):
        cids.resolve_conditions("clean,fog", ids)
    with pytest.raises(InvalidInputError, match="unknown conditions"):
        cids.resolve_conditions("", ids)
