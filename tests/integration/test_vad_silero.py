"""Silero VAD from the silero-vad wheel on real speech (pocketsphinx-testdata), silence, noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speakerrpl.audio import load_audio
from speakerrpl.errors import InvalidInputError

ort = pytest.importorskip("onnxruntime")
from speakerrpl.vad import FRAME_SAMPLES, SileroVAD, locate_silero_model  # noqa: E402

SR = 16_000


@pytest.fixture(scope="module")
def model() -> SileroVAD:
    return SileroVAD()


@pytest.fixture(scope="module")
def dialogue(pocketsphinx_speakers: dict[str, list[Path]]) -> tuple[np.ndarray, float, float]:
    """A librivox utterance, 2 s of silence, a cards utterance: (wave, gap start, gap end)."""
    a = load_audio(pocketsphinx_speakers["librivox"][0])
    b = load_audio(pocketsphinx_speakers["cards"][4])
    wave = np.concatenate([a, np.zeros(2 * SR, np.float32), b])
    return wave, len(a) / SR, len(a) / SR + 2.0


def test_finds_speech_in_real_recordings(
    model: SileroVAD, pocketsphinx_speakers: dict[str, list[Path]]
) -> None:
    for files in pocketsphinx_speakers.values():
        for path in files:
            wave = load_audio(path)
            segments = model.speech_segments(wave)
            speech = sum(b - a for a, b in segments)
            assert 0.4 * len(wave) / SR < speech <= len(wave) / SR, path.name


def test_splits_at_the_silence_between_two_talkers(
    model: SileroVAD, dialogue: tuple[np.ndarray, float, float]
) -> None:
    wave, gap_start, gap_end = dialogue
    segments = model.speech_segments(wave)
    assert not any(a < gap_end - 0.2 and b > gap_start + 0.2 for a, b in segments)
    assert any(b <= gap_start + 0.1 for _, b in segments)
    assert any(a >= gap_end - 0.1 for a, _ in segments)


def test_silence_noise_and_a_tone_chord_are_not_speech(model: SileroVAD) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(5 * SR) / SR
    chord = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220, 277, 330, 440))
    for wave in (np.zeros(5 * SR), 0.1 * rng.standard_normal(5 * SR), chord):
        assert model.speech_segments(wave.astype(np.float32)) == []


def test_streaming_equals_whole_file_and_the_streaming_export(
    model: SileroVAD, dialogue: tuple[np.ndarray, float, float]
) -> None:
    wave = dialogue[0][: 300 * FRAME_SAMPLES]
    whole = model.speech_probabilities(wave)
    model.reset()
    streamed = [model.process(wave[i : i + FRAME_SAMPLES]) for i in range(0, wave.size, 512)]
    model.reset()
    blocks = np.concatenate([model.process_block(wave[:51200]), model.process_block(wave[51200:])])
    np.testing.assert_allclose(streamed, whole, atol=1e-6)
    np.testing.assert_allclose(blocks, whole, atol=1e-6)
    # the one-frame-per-call export of the same wheel gives the same probabilities
    session = ort.InferenceSession(
        str(locate_silero_model("silero_vad.onnx")), providers=["CPUExecutionProvider"]
    )
    state, context, ref = np.zeros((2, 1, 128), np.float32), np.zeros(64, np.float32), []
    for i in range(0, wave.size, FRAME_SAMPLES):
        x = np.concatenate([context, wave[i : i + FRAME_SAMPLES]])[None]
        out, state = session.run(None, {"input": x, "state": state, "sr": np.array(SR)})
        ref.append(float(out[0, 0]))
        context = x[0, -64:]
    np.testing.assert_allclose(whole, ref, atol=1e-5)


def test_bad_chunks_are_clear_errors(model: SileroVAD) -> None:
    with pytest.raises(InvalidInputError, match="512"):
        model.process(np.zeros(100, np.float32))
    with pytest.raises(InvalidInputError, match="NaN"):
        model.process(np.full(512, np.nan, np.float32))
    assert model.speech_probabilities(np.zeros(0, np.float32)).shape == (0,)
    assert model.speech_probabilities(np.zeros(700, np.float32)).shape == (2,)
