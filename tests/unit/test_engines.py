"""TTS engine wrapper: output format and the checks that reject broken voices."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from speakerrpl.errors import DataError, TTSError
from speakerrpl.synth.corpus import SIZES
from speakerrpl.synth.engines import VoiceSpec, engine_available, espeak_ipa, synthesize
from speakerrpl.synth.voices import load_texts, pool_voices

SPEC = VoiceSpec("e", "espeak", "en-us+m3", "en", "M", "pool", {"pitch": 40, "rate": 170})


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_espeak_output_is_16k_float_normalised() -> None:
    wave = synthesize(SPEC, "The children played football in the park.")
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert 1.0 < wave.size / 16000 < 6.0
    assert np.abs(wave).max() == pytest.approx(0.5, abs=1e-3)
    assert np.array_equal(wave, synthesize(SPEC, "The children played football in the park."))


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_silence_and_missing_voices_are_rejected() -> None:
    with pytest.raises(TTSError, match=r"under 0\.5 s"):
        synthesize(SPEC, ".")
    with pytest.raises(TTSError, match="unknown engine"):
        synthesize(VoiceSpec("x", "telepathy", "v", "en", "M", "pool"), "Hello there.")


def test_catalogue_helpers() -> None:
    assert not engine_available("telepathy")
    voices = pool_voices(30, seed=1)
    assert len({v.speaker for v in voices}) == 30
    assert len({(v.voice, v.options["pitch"], v.options["rate"]) for v in voices}) == 30
    assert pool_voices(30, seed=1) == voices and pool_voices(30, seed=2) != voices
    assert all(len(load_texts(v.language)) >= 12 for v in voices)
    with pytest.raises(DataError, match="no sentences"):
        load_texts("xx")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_kokoro_phonemes_fail_loudly_when_espeak_fails() -> None:
    """Kokoro's phonemiser checks espeak-ng's exit code (defect 9)."""
    assert espeak_ipa("hello world") == "həlˈoʊ wˈɜːld"
    with pytest.raises(TTSError, match="exited with 1"):
        espeak_ipa("hello world", voice="nonexist")


def test_eval_voices_are_disjoint_from_the_pool_and_duplicates_are_dropped() -> None:
    from speakerrpl.synth import voices as catalogue

    pool_variants = {v.voice.split("+")[1] for v in pool_voices(400, seed=3)}
    espeak = catalogue.eval_espeak_voices()
    dropped = catalogue._EVAL_ESPEAK_DUPLICATES
    assert len(espeak) == len(catalogue._EVAL_ESPEAK_VARIANTS) - len(dropped) == 33
    assert not {v.voice.split("+")[1] for v in espeak} & pool_variants
    assert not {f"espeak-{d}" for d in catalogue._EVAL_ESPEAK_DUPLICATES} & {
        v.speaker for v in espeak
    }
    assert all(load_texts(v.language) for v in espeak)
    kokoro = catalogue.eval_kokoro_voices(6)
    assert all(len(v.options["mix"]) == 3 for v in kokoro)  # the pool's mixtures have two
    assert all(abs(sum(v.options["mix"].values()) - 1.0) < 0.01 for v in kokoro)
    # the full size draws 20 mixtures; the measured near-duplicates leave 3 distinct ones
    kept = [v.speaker for v in catalogue.eval_kokoro_voices(SIZES["full"].n_kokoro)]
    assert kept == ["kokoro-e00", "kokoro-e02", "kokoro-e14"]


def test_shifted_voices_are_new_ids_with_a_voice_level_shift() -> None:
    from speakerrpl.synth.voices import shifted_voices

    base = [
        VoiceSpec(f"mbrola-x{i}", "mbrola", f"mb-x{i}", "en", "MF"[i % 2], "eval") for i in range(6)
    ]
    out = shifted_voices(base, every=2)
    assert [v.speaker for v in out] == ["mbrola-x0-vtup", "mbrola-x2-vtup", "mbrola-x4-vtup"]
    assert all(v.options["shift"] == 3.5 and v.gender == "F" for v in out)
    down = shifted_voices(base[1:2], every=1)[0]
    assert (down.speaker, down.options["shift"], down.gender) == ("mbrola-x1-vtdown", -3.5, "M")


@pytest.mark.skipif(
    any(shutil.which(c) is None for c in ("espeak-ng", "mbrola", "festival", "flite")),
    reason="TTS engines: scripts/install_system_deps.sh",
)
def test_at_least_150_eval_identities_from_several_families() -> None:
    from speakerrpl.synth.voices import eval_voices

    voices = eval_voices()
    assert len(voices) >= 150 and len({v.speaker for v in voices}) == len(voices)
    assert len({v.engine for v in voices}) >= 5


@pytest.mark.skipif(shutil.which("sox") is None, reason="needs sox")
def test_voice_level_shift_changes_the_audio_deterministically() -> None:
    shifted = VoiceSpec("e", "espeak", "en-us+m3", "en", "M", "pool", {"pitch": 40, "shift": 3.5})
    a = synthesize(shifted, "The children played football in the park.")
    plain = synthesize(SPEC, "The children played football in the park.")
    assert abs(a.size - plain.size) < 0.05 * plain.size and not np.allclose(
        a[: plain.size], plain[: a.size]
    )
    assert np.array_equal(a, synthesize(shifted, "The children played football in the park."))
