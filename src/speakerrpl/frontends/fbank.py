"""Kaldi-style log mel filterbank features (kaldi-native-fbank) shared by the frontends."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from speakerrpl._optional import require
from speakerrpl.errors import InvalidInputError

__all__ = ["FbankConfig", "compute_fbank"]


@dataclass(frozen=True)
class FbankConfig:
    """Filterbank settings; the defaults are those CAM++ and most WeSpeaker models use.

    Args:
        num_bins: mel bins per frame.
        sample_rate: expected input rate in Hz.
        frame_length_ms: window length.
        frame_shift_ms: hop.
        dither: Gaussian dither amplitude (0 keeps features deterministic).
        low_freq: lowest mel frequency in Hz.
        high_freq: highest mel frequency in Hz (<= 0: offset from Nyquist).
        window: window type ("povey", "hamming", ...).
        scale: factor applied to the [-1, 1] waveform first (32768 gives int16 scale, which
            some exports expect; after mean removal it only changes the log floor).
        mean_norm: subtract the per-utterance mean of each bin.

    Example:
        >>> FbankConfig(num_bins=64).num_bins
        64
    """

    num_bins: int = 80
    sample_rate: int = 16_000
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    dither: float = 0.0
    low_freq: float = 20.0
    high_freq: float = 0.0
    window: str = "povey"
    scale: float = 1.0
    mean_norm: bool = True

    def __post_init__(self) -> None:
        if self.num_bins <= 0 or self.sample_rate <= 0:
            raise InvalidInputError(
                f"num_bins and sample_rate must be positive, got {self.num_bins}, "
                f"{self.sample_rate}"
            )
        if not 0 < self.frame_shift_ms <= self.frame_length_ms:
            raise InvalidInputError(
                "expected 0 < frame_shift_ms <= frame_length_ms, got "
                f"{self.frame_shift_ms} and {self.frame_length_ms}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (for cache keys and saved configs)."""
        return asdict(self)

    @property
    def min_samples(self) -> int:
        """Samples needed for one frame."""
        return int(self.sample_rate * self.frame_length_ms / 1000)


def compute_fbank(wave: np.ndarray, config: FbankConfig | None = None) -> np.ndarray:
    """Log mel filterbank of a mono waveform in [-1, 1]: ``(frames, num_bins)`` float32.

    Frames are 25 ms every 10 ms with Kaldi's ``snip_edges``, so a signal of ``n`` samples
    gives ``1 + (n - 400) // 160`` frames at 16 kHz.

    Raises:
        InvalidInputError: the wave is not 1-D or is shorter than one frame.

    Example:
        >>> wave = np.random.default_rng(0).uniform(-0.1, 0.1, 16000).astype(np.float32)
        >>> compute_fbank(wave).shape
        (98, 80)
    """
    config = config or FbankConfig()
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise InvalidInputError(f"expected a 1-D waveform, got shape {wave.shape}")
    if wave.size < config.min_samples:
        raise InvalidInputError(
            f"waveform of {wave.size} samples is shorter than one {config.frame_length_ms:g} ms "
            f"frame ({config.min_samples} samples)"
        )
    knf = require("kaldi_native_fbank", extra="core", purpose="filterbank features")
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = float(config.sample_rate)
    opts.frame_opts.frame_length_ms = config.frame_length_ms
    opts.frame_opts.frame_shift_ms = config.frame_shift_ms
    opts.frame_opts.dither = config.dither
    opts.frame_opts.window_type = config.window
    opts.frame_opts.snip_edges = True
    opts.mel_opts.num_bins = config.num_bins
    opts.mel_opts.low_freq = config.low_freq
    opts.mel_opts.high_freq = config.high_freq
    extractor = knf.OnlineFbank(opts)
    extractor.accept_waveform(float(config.sample_rate), wave * np.float32(config.scale))
    extractor.input_finished()
    count = extractor.num_frames_ready
    feats = np.empty((count, config.num_bins), dtype=np.float32)
    for index in range(count):
        feats[index] = extractor.get_frame(index)
    if config.mean_norm:
        feats = feats - feats.mean(axis=0, keepdims=True)
    return feats
