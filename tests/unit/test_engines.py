"""TTS engine wrapper: output format and the checks that reject broken voices."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from speakerrpl.errors import DataError, TTSError
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
