"""The GE2E frontend equals resemblyzer's own VoiceEncoder on real speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speakerrpl.audio import load_audio
from speakerrpl.frontends import get_frontend
from speakerrpl.frontends.base import torch_threads
from speakerrpl.frontends.ge2e import mel_power_spectrogram, partial_slices

resemblyzer = pytest.importorskip(
    "resemblyzer", reason="resemblyzer (and librosa) are needed for the reference encoder"
)


def test_matches_the_package_encoder(pocketsphinx_speakers: dict[str, list[Path]]) -> None:
    from resemblyzer.audio import wav_to_mel_spectrogram

    encoder = resemblyzer.VoiceEncoder("cpu", verbose=False)
    frontend = get_frontend("resemblyzer", num_threads=1)
    waves = [load_audio(files[i]) for files in pocketsphinx_speakers.values() for i in (0, 1)]
    with torch_threads(1):
        expected = np.stack([encoder.embed_utterance(resemblyzer.preprocess_wav(w)) for w in waves])
    ours = frontend.embed(waves)
    assert ours.shape == (4, 256)
    cosines = (ours * expected).sum(axis=1) / np.linalg.norm(ours, axis=1)
    assert cosines.min() >= 0.999
    np.testing.assert_allclose(ours, expected, atol=1e-4)
    # the parts agree too: spectrogram and partial layout
    np.testing.assert_allclose(
        mel_power_spectrogram(waves[0]), wav_to_mel_spectrogram(waves[0]), rtol=1e-4, atol=1e-5
    )
    for n in (8000, 16000 * 3, 16000 * 7 + 123):
        _, mel_slices = encoder.compute_partial_slices(n, 1.3, 0.75)
        assert partial_slices(n) == [s.start for s in mel_slices]
