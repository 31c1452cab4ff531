"""Test conditions: SNR, crops, noise kinds, the condition dispatcher and condition-copy ids."""

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


@pytest.mark.parametrize("snr", [20.0, 10.0, 0.0])
def test_measured_snr_equals_requested(snr: float) -> None:
    clean = _speechlike(2.0)
    sources = [_speechlike(1.3, seed=s) for s in range(3)]
    rng = np.random.default_rng(1)
    for noise in (
        cond.babble(clean.size, sources, rng),
        cond.music(clean.size, rng),
        cond.stationary_noise(clean.size, rng)[0],
    ):
        noisy = cond.add_noise(clean, noise, snr)
        assert noisy.shape == clean.shape
        if np.abs(noisy).max() < 1.0:  # no peak limiting: the mix is clean + noise
            assert cond.snr_db(clean, noisy.astype(np.float64) - clean) == pytest.approx(
                snr, abs=0.05
            )


@pytest.mark.parametrize("name", ["babble", "noise", "music"])
def test_noise_conditions_draw_their_snr_in_range(name: str) -> None:
    clean = _speechlike(2.0)
    sources = [_speechlike(1.3, seed=s) for s in range(3)]
    low, high = cids.SNR_RANGES_DB[name]
    snrs = []
    for seed in range(12):
        out, what = cond.apply_condition(
            clean, name, np.random.default_rng(seed), babble_sources=sources
        )
        snr = float(what.rsplit(" at ", 1)[1].removesuffix(" dB"))
        assert low <= snr <= high
        assert cond.snr_db(clean, out.astype(np.float64) - clean) == pytest.approx(snr, abs=0.06)
        snrs.append(snr)
    assert max(snrs) - min(snrs) > 2.0  # drawn, not fixed


def test_mix_is_rescaled_when_it_would_clip() -> None:
    loud = np.full(16000, 0.99, dtype=np.float32)
    out = cond.add_noise(loud, np.random.default_rng(0).standard_normal(16000), 5.0)
    assert np.abs(out).max() <= 1.0 + 1e-6


def test_coloured_noise_spectrum_slopes_down_for_brown() -> None:
    noise = cond.coloured_noise(1 << 15, np.random.default_rng(0), exponent=2.0)
    power = np.abs(np.fft.rfft(noise)) ** 2
    assert power[10:100].mean() > 100 * power[-1000:].mean()


def test_music_is_tonal_and_stationary_noise_kinds_vary() -> None:
    m = cond.music(1 << 15, np.random.default_rng(0))
    power = np.abs(np.fft.rfft(m)) ** 2
    assert np.sort(power)[-20:].sum() > 0.1 * power.sum()  # energy in a few partials
    white = cond.coloured_noise(1 << 15, np.random.default_rng(0), exponent=0.0)
    w = np.abs(np.fft.rfft(white)) ** 2
    assert np.sort(w)[-20:].sum() < 0.01 * w.sum()
    kinds = {cond.stationary_noise(1000, np.random.default_rng(s))[1] for s in range(40)}
    assert kinds == {"white", "pink", "brown", "hum"}


def test_short_crops_are_0_8_to_1_5_s_of_speech() -> None:
    rng = np.random.default_rng(3)
    padded = np.r_[np.zeros(16000, np.float32), _speechlike(6.0), np.zeros(16000, np.float32)]
    crops = [cond.crop(padded, rng) for _ in range(50)]
    lengths = [c.size / 16000 for c in crops]
    assert min(lengths) >= 0.8 - 1e-3 and max(lengths) <= 1.5 + 1e-3
    assert max(lengths) - min(lengths) > 0.3  # actually random
    assert all(np.abs(c).max() > 0.1 for c in crops)  # never the silent lead-in


def test_short_signal_is_not_padded_by_crop() -> None:
    short = _speechlike(0.5)
    assert cond.crop(short, np.random.default_rng(0)).size <= short.size


def test_every_condition_runs_and_describes_itself() -> None:
    pytest.importorskip("pyroomacoustics")
    from speakerrpl.synth.channels import room_impulse_responses

    rooms = room_impulse_responses(3, np.random.default_rng(0))
    clean = _speechlike(3.0)
    sources = [_speechlike(2.0, seed=s) for s in range(3)]
    for name in cids.CONDITIONS:
        out, what = cond.apply_condition(
            clean, name, np.random.default_rng(0), babble_sources=sources, rooms=rooms
        )
        assert out.dtype == np.float32 and np.isfinite(out).all() and what
        assert np.abs(out).max() <= 1.0 + 1e-6
        if name.startswith("short"):
            assert 0.8 <= out.size / 16000 <= 1.5 and what.startswith("crop ")
        else:
            assert out.shape == clean.shape
            assert not np.allclose(out, clean, atol=1e-3)
        again, same = cond.apply_condition(
            clean, name, np.random.default_rng(0), babble_sources=sources, rooms=rooms
        )
        assert np.array_equal(out, again) and same == what  # seeded, deterministic


def test_condition_ids_round_trip() -> None:
    for name in cids.KNOWN_CONDITIONS:
        utt = cids.condition_utt_id("mbrola-us1-03", name)
        assert cids.split_condition(utt) == ("mbrola-us1-03", name)
    assert cids.split_condition("plain") == ("plain", cids.CLEAN)
    with pytest.raises(InvalidInputError, match="unknown condition"):
        cids.condition_utt_id("u", "thunder")
    with pytest.raises(InvalidInputError, match="babble needs"):
        cond.apply_condition(_speechlike(1.0), "babble", np.random.default_rng(0))
    with pytest.raises(InvalidInputError, match="unknown condition"):
        cond.apply_condition(_speechlike(1.0), "babble5", np.random.default_rng(0))
    with pytest.raises(InvalidInputError, match="room"):
        cond.apply_condition(_speechlike(1.0), "far", np.random.default_rng(0))


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
    ids.remove("b-03__short")  # short is no longer complete over the conditioned utterances
    assert "short" not in cids.available_conditions(ids)
    assert cids.available_conditions(clean) == [cids.CLEAN]
    assert cids.conditioned_utterances(clean) == set()


def test_legacy_corpora_keep_their_condition_names() -> None:
    ids = ["a1", "a2", "a2__babble5", "a2__crop", "b1", "b2", "b2__babble5", "b2__crop"]
    assert cids.available_conditions(ids) == ["clean", "babble5", "crop"]


def test_resolve_conditions() -> None:
    ids = ["a1", "a2", "a2__short"]
    assert cids.resolve_conditions("auto", ids) == ["clean", "short"]
    assert cids.resolve_conditions("all", ids) == [cids.CLEAN, *cids.CONDITIONS]
    assert cids.resolve_conditions("clean, noise", ids) == ["clean", "noise"]
    assert cids.resolve_conditions(["far"], ids) == ["far"]
    with pytest.raises(InvalidInputError, match="unknown conditions"):
        cids.resolve_conditions("clean,fog", ids)
    with pytest.raises(InvalidInputError, match="unknown conditions"):
        cids.resolve_conditions("", ids)


def test_short_crops_avoid_pauses_so_the_embedder_accepts_them() -> None:
    from speakerrpl.audio import speech_duration

    pause = np.zeros(32000, dtype=np.float32)
    signal = np.r_[_speechlike(1.2), pause, _speechlike(1.2, seed=1)]  # a 2 s pause inside
    crops = [cond.crop(signal, np.random.default_rng(seed)) for seed in range(30)]
    assert all(speech_duration(c) >= 0.5 for c in crops)  # the embedding step's minimum
