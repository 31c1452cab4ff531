"""Filterbank features against an independent numpy implementation of Kaldi's fbank."""

from __future__ import annotations

import numpy as np
import pytest

from speakerrpl.errors import InvalidInputError
from speakerrpl.frontends.fbank import FbankConfig, compute_fbank


def kaldi_fbank_reference(wave: np.ndarray, bins: int = 80, sr: int = 16000) -> np.ndarray:
    """Textbook Kaldi fbank: 25/10 ms, DC removal, pre-emphasis 0.97, povey window,
    512-point power spectrum, triangular filters on 1127 ln(1 + f/700) from 20 Hz to Nyquist,
    log with float32-epsilon floor, snip_edges."""
    length, shift, nfft = 400, 160, 512
    count = 1 + (len(wave) - length) // shift
    frames = np.stack([wave[i * shift : i * shift + length] for i in range(count)]).astype(float)
    frames -= frames.mean(axis=1, keepdims=True)
    frames[:, 1:] -= 0.97 * frames[:, :-1].copy()
    frames[:, 0] *= 1 - 0.97
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / (length - 1))) ** 0.85
    power = np.abs(np.fft.rfft(frames * window, nfft)) ** 2

    def mel(f: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log(1 + np.asarray(f) / 700.0)

    low, step = mel(20.0), (mel(sr / 2) - mel(20.0)) / (bins + 1)
    fft_mel = mel(np.arange(nfft // 2) * sr / nfft)
    weights = np.zeros((bins, nfft // 2 + 1))
    for b in range(bins):
        left, centre, right = low + b * step, low + (b + 1) * step, low + (b + 2) * step
        rise, fall = (fft_mel - left) / (centre - left), (right - fft_mel) / (right - centre)
        weights[b, : nfft // 2] = np.clip(np.minimum(rise, fall), 0, None)
    return np.log(np.maximum(power @ weights.T, np.finfo(np.float32).eps))


def test_matches_independent_kaldi_fbank() -> None:
    wave = np.random.default_rng(0).uniform(-0.3, 0.3, 16000).astype(np.float32)
    ours = compute_fbank(wave, FbankConfig(mean_norm=False))
    np.testing.assert_allclose(ours, kaldi_fbank_reference(wave), atol=1e-3)


def test_frames_and_mean_removal() -> None:
    wave = np.random.default_rng(1).uniform(-0.5, 0.5, 16000).astype(np.float32)
    feats = compute_fbank(wave)
    assert feats.shape == (1 + (16000 - 400) // 160, 80)
    np.testing.assert_allclose(feats.mean(axis=0), 0.0, atol=1e-4)
    raw = compute_fbank(wave, FbankConfig(mean_norm=False))
    # int16 scaling only adds log(32768^2) to every bin, which mean removal cancels
    scaled = compute_fbank(wave, FbankConfig(mean_norm=False, scale=32768.0))
    np.testing.assert_allclose(scaled - raw, 2 * np.log(32768.0), atol=1e-3)


def test_bad_input_and_config() -> None:
    with pytest.raises(InvalidInputError, match="shorter than one"):
        compute_fbank(np.zeros(399, dtype=np.float32))
    with pytest.raises(InvalidInputError, match="1-D"):
        compute_fbank(np.zeros((2, 800), dtype=np.float32))
    with pytest.raises(InvalidInputError, match="frame_shift_ms"):
        FbankConfig(frame_shift_ms=30.0)


def test_batched_torch_fbank_matches_kaldi_native_fbank() -> None:
    """The GPU-capable batch implementation gives kaldi-native-fbank's features."""
    import torch

    from speakerrpl.frontends.fbank_torch import batch_fbank

    rng = np.random.default_rng(2)
    waves = rng.uniform(-0.5, 0.5, (3, 12345)).astype(np.float32)
    waves[1] *= 0.01  # quiet: exercises the log floor region less than the dynamics
    for config in (FbankConfig(), FbankConfig(mean_norm=False), FbankConfig(window="hamming")):
        got = batch_fbank(torch.from_numpy(waves), config).numpy()
        want = np.stack([compute_fbank(w, config) for w in waves])
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=5e-4, atol=5e-4)
    no_mean = batch_fbank(torch.from_numpy(waves[:1]), FbankConfig(mean_norm=False)).numpy()[0]
    np.testing.assert_allclose(no_mean, kaldi_fbank_reference(waves[0]), atol=5e-4)


def test_batched_torch_fbank_rejects_bad_input() -> None:
    import torch

    from speakerrpl.frontends.fbank_torch import batch_fbank

    with pytest.raises(InvalidInputError, match="batch, samples"):
        batch_fbank(torch.zeros(800))
    with pytest.raises(InvalidInputError, match="shorter than one"):
        batch_fbank(torch.zeros(2, 399))
    with pytest.raises(InvalidInputError, match="dither"):
        batch_fbank(torch.zeros(1, 800), FbankConfig(dither=1.0))
