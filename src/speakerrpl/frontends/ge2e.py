"""Resemblyzer's GE2E speaker encoder (256-d) with the weights of the ``resemblyzer`` wheel.

Wan et al., "Generalized End-to-End Loss for Speaker Verification", ICASSP 2018
(https://arxiv.org/abs/1710.10467): a 3-layer LSTM (256 units) over 40-bin mel power
spectrograms; the last hidden state goes through a linear layer, a ReLU and L2 normalisation.
An utterance is cut into 1.6 s partials (1.3 per second); its embedding is the normalised mean
of theirs. Preprocessing, as the package recommends: raise quiet audio to -30 dBFS and cut
silences longer than ~0.2 s with webrtcvad.

Only ``pretrained.pt`` is used from the package (found with ``importlib.util.find_spec``,
without importing it); the spectrogram, partials and network are our own, and every partial of
every utterance in a batch goes through the LSTM in one call (all partials have equal length).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from speakerrpl._optional import require
from speakerrpl.errors import InvalidInputError, ModelLoadError
from speakerrpl.frontends.base import Frontend, torch_threads
from speakerrpl.frontends.weights import find_resemblyzer_weights
from speakerrpl.vectors import l2_normalize

__all__ = ["ResemblyzerFrontend", "mel_power_spectrogram", "partial_slices"]

_SR, _N_FFT, _HOP, _N_MELS, _PARTIAL = 16_000, 400, 160, 40, 160
_VAD_WINDOW, _VAD_AVERAGE, _VAD_MAX_SILENCE = 480, 8, 6  # 30 ms windows
_TARGET_DBFS = -30.0
_INT16_MAX = 2**15 - 1
_TRAINING_ONLY = ("similarity_weight", "similarity_bias")  # GE2E loss parameters


def _slaney_mel_filters(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney-style mel filterbank ``(n_mels, n_fft // 2 + 1)`` with area normalisation."""

    def hz_to_mel(hz: np.ndarray) -> np.ndarray:
        linear = hz / (200.0 / 3)
        log_region = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(hz >= 1000.0, log_region, linear)

    def mel_to_hz(mel: np.ndarray) -> np.ndarray:
        linear = mel * (200.0 / 3)
        log_region = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
        return np.where(mel >= 15.0, log_region, linear)

    fft_freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    edges = mel_to_hz(
        np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(sr / 2)), n_mels + 2)
    )
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    return (weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]).astype(np.float32)


_MEL = _slaney_mel_filters(_SR, _N_FFT, _N_MELS)


def mel_power_spectrogram(wave: np.ndarray) -> np.ndarray:
    """40-bin mel power spectrogram ``(frames, 40)`` (25 ms Hann, 10 ms hop, centred frames).

    Example:
        >>> mel_power_spectrogram(np.zeros(16000, dtype=np.float32)).shape
        (101, 40)
    """
    padded = np.pad(wave.astype(np.float32), _N_FFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, _N_FFT)[::_HOP]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(_N_FFT) / _N_FFT)).astype(np.float32)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    return (power @ _MEL.T).astype(np.float32)


def partial_slices(n_samples: int, rate: float = 1.3, min_coverage: float = 0.75) -> list[int]:
    """Start frames of the 160-frame partials covering ``n_samples`` samples.

    A last partial is kept only when at least ``min_coverage`` of it lies inside the audio
    (there is always at least one).

    Example:
        >>> partial_slices(16000 * 3)
        [0, 77, 154]
    """
    n_frames = int(np.ceil((n_samples + 1) / _HOP))
    step = int(np.round(_SR / rate / _HOP))
    starts = list(range(0, max(1, n_frames - _PARTIAL + step + 1), step))
    coverage = (n_samples - starts[-1] * _HOP) / (_PARTIAL * _HOP)
    if coverage < min_coverage and len(starts) > 1:
        starts.pop()
    return starts


def _trim_long_silences(wave: np.ndarray) -> np.ndarray:
    """Drop silences longer than ~0.2 s, as found by webrtcvad (aggressiveness 3)."""
    webrtcvad = require("webrtcvad", extra="resemblyzer", purpose="GE2E silence trimming")
    wave = wave[: len(wave) - len(wave) % _VAD_WINDOW]
    pcm = np.round(wave * _INT16_MAX).astype("<i2").tobytes()
    vad = webrtcvad.Vad(3)
    step = 2 * _VAD_WINDOW
    flags = np.array([vad.is_speech(pcm[i : i + step], _SR) for i in range(0, len(pcm), step)])
    padded = np.concatenate(
        [np.zeros((_VAD_AVERAGE - 1) // 2), flags.astype(float), np.zeros(_VAD_AVERAGE // 2)]
    )
    smooth = np.convolve(padded, np.ones(_VAD_AVERAGE) / _VAD_AVERAGE, mode="valid")
    voiced = np.round(smooth).astype(bool)
    reach = _VAD_MAX_SILENCE // 2  # dilation by a centred window of max_silence + 1
    kernel = np.ones(_VAD_MAX_SILENCE + 1)
    dilated = np.convolve(np.pad(voiced.astype(float), reach), kernel, mode="valid")[: len(voiced)]
    return wave[np.repeat(dilated > 0, _VAD_WINDOW)]


def _preprocess(wave: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean((wave.astype(np.float64) * _INT16_MAX) ** 2)))
    change_db = _TARGET_DBFS - 20 * np.log10(max(rms, 1e-12) / _INT16_MAX)
    if change_db > 0:
        wave = (wave * 10 ** (change_db / 20)).astype(np.float32)
    return _trim_long_silences(wave)


class _GE2E(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(_N_MELS, 256, 3, batch_first=True)
        self.linear = nn.Linear(256, 256)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        embeds = torch.relu(self.linear(hidden[-1]))
        return embeds / embeds.norm(dim=1, keepdim=True).clamp_min(1e-12)


class ResemblyzerFrontend(Frontend):
    """GE2E (Resemblyzer) speaker embeddings, 256-d, non-negative and L2-normalised.

    Args:
        device: ``"cpu"`` or ``"cuda"``.
        weights: a Resemblyzer checkpoint; default: the package's ``pretrained.pt``.
        preprocess: raise quiet audio to -30 dBFS and trim long silences (as the package does).
        rate: partials per second. min_coverage: see :func:`partial_slices`.
        num_threads: torch threads used while embedding (None: torch's setting).

    Example:
        >>> frontend = ResemblyzerFrontend()
        >>> wave = np.random.default_rng(0).uniform(-0.3, 0.3, 32000).astype(np.float32)
        >>> frontend.embed([wave]).shape
        (1, 256)
    """

    name = "resemblyzer"

    def __init__(
        self,
        device: str = "cpu",
        weights: str | Path | None = None,
        preprocess: bool = True,
        rate: float = 1.3,
        min_coverage: float = 0.75,
        num_threads: int | None = None,
    ) -> None:
        super().__init__(device)
        if not 0 < min_coverage <= 1 or not 0.625 <= rate <= 100:
            raise InvalidInputError(
                f"expected 0 < min_coverage <= 1 and 0.625 <= rate <= 100, got "
                f"{min_coverage}, {rate}"
            )
        self.weights = Path(weights) if weights else find_resemblyzer_weights()
        self.preprocess, self.rate, self.min_coverage = preprocess, rate, min_coverage
        self.num_threads = num_threads
        self.model = _GE2E()
        try:
            state = torch.load(self.weights, map_location="cpu", weights_only=True)["model_state"]
            # the GE2E loss's similarity scale and bias are training-only; every other weight
            # must be present and match
            inference = {k: v for k, v in state.items() if k not in _TRAINING_ONLY}
            self.model.load_state_dict(inference, strict=True)
        except Exception as exc:  # torch raises many types on a bad file
            raise ModelLoadError(f"{self.weights}: not a GE2E checkpoint ({exc})") from exc
        self.model.eval().to(self.device)

    @property
    def dim(self) -> int:
        """256."""
        return 256

    def config(self) -> dict[str, Any]:
        """Name, weights file, preprocessing and partial settings."""
        return {
            "name": self.name,
            "weights": str(self.weights),
            "weights_size": self.weights.stat().st_size,
            "preprocess": self.preprocess,
            "rate": self.rate,
            "min_coverage": self.min_coverage,
        }

    def _partials(self, wave: np.ndarray) -> np.ndarray:
        if self.preprocess:
            wave = _preprocess(wave)
        if wave.size < _HOP:
            raise InvalidInputError("no voiced audio left after trimming silences")
        starts = partial_slices(wave.size, self.rate, self.min_coverage)
        needed = (starts[-1] + _PARTIAL) * _HOP
        if needed >= wave.size:
            wave = np.pad(wave, (0, needed - wave.size))
        mel = mel_power_spectrogram(wave)
        return np.stack([mel[s : s + _PARTIAL] for s in starts])

    @torch.inference_mode()
    def _embed(self, waves: list[np.ndarray]) -> np.ndarray:
        partials = [self._partials(wave) for wave in waves]
        batch = torch.from_numpy(np.concatenate(partials)).to(self.device)
        with torch_threads(self.num_threads):
            embeds = self.model(batch).cpu().numpy()
        bounds = np.cumsum([0] + [len(p) for p in partials]).tolist()
        means = np.stack([embeds[a:b].mean(axis=0) for a, b in itertools.pairwise(bounds)])
        return l2_normalize(means)
