"""Voice activity detection with Silero VAD, run by onnxruntime from the ``silero-vad`` wheel.

The ONNX models ship inside the ``silero-vad`` wheel (MIT licence). They are located among the
wheel's installed files without importing the ``silero_vad`` package (its import pulls
torchaudio). The batched "sequence" export ``silero_vad_16k_sequence.onnx`` is used: it takes
any number of 32 ms frames per call and gives, frame by frame, the same probabilities as the
streaming export ``silero_vad.onnx`` (tested), at about half the cost per frame.

Two ways to use it:

- whole recordings: :meth:`SileroVAD.speech_probabilities` and :meth:`SileroVAD.speech_segments`;
- streams: :meth:`SileroVAD.reset`, then :meth:`SileroVAD.process` for each 512-sample chunk
  (or :meth:`SileroVAD.process_block` for many frames at once), carrying the model state.

:func:`probabilities_to_segments` turns frame probabilities into ``(start_s, end_s)`` speech
segments and needs no model.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import numpy as np

from speakerrpl._optional import require
from speakerrpl.errors import InvalidInputError, MissingDependencyError, ModelLoadError

logger = logging.getLogger(__name__)

__all__ = [
    "FRAME_SAMPLES",
    "FRAME_SECONDS",
    "SileroVAD",
    "locate_silero_model",
    "probabilities_to_segments",
]

SAMPLE_RATE = 16_000
FRAME_SAMPLES = 512
"""Samples per VAD frame at 16 kHz (32 ms)."""
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
_CONTEXT = 64  # trailing samples of the previous frame the model sees before each frame
_STATE = (1, 1, 128)
_MAX_FRAMES = 512  # frames per ONNX call (~16 s): bounded transient memory
SEQUENCE_MODEL = "silero_vad_16k_sequence.onnx"
_EXTRA_MSG = (
    "Silero VAD needs the 'silero-vad' wheel and onnxruntime; install them with: "
    "pip install 'speakerrpl[diarization]' && pip install --no-deps silero-vad==6.2.3"
)


def locate_silero_model(name: str = SEQUENCE_MODEL) -> Path:
    """Path of a model file inside the installed ``silero-vad`` wheel (``silero_vad/data/``).

    The package is found with :func:`importlib.util.find_spec`, which does not run its code.

    Args:
        name: file name under ``silero_vad/data/``, e.g. ``"silero_vad.onnx"``.

    Raises:
        MissingDependencyError: the wheel is not installed (the message says how to install it).
        ModelLoadError: the wheel is installed but has no such file.
    """
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(_EXTRA_MSG)
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / name
        if path.is_file():
            return path
    raise ModelLoadError(
        f"the installed silero-vad has no data/{name}; install silero-vad==6.2.3 (--no-deps)"
    )


def probabilities_to_segments(
    probs: np.ndarray,
    threshold: float = 0.5,
    min_speech: float = 0.25,
    min_silence: float = 0.1,
    pad: float = 0.03,
    frame_seconds: float = FRAME_SECONDS,
) -> list[tuple[float, float]]:
    """Speech segments from per-frame speech probabilities, with hysteresis.

    A segment starts at a frame with probability ``>= threshold`` and ends once the probability
    stays below ``threshold - 0.15`` for ``min_silence`` seconds; segments shorter than
    ``min_speech`` are dropped; each is widened by ``pad`` seconds on both sides (clipped to
    the signal and to its neighbours).

    Args:
        probs: ``(frames,)`` speech probabilities, one per ``frame_seconds``.
        threshold: speech threshold in (0, 1).
        min_speech: shortest kept segment, seconds.
        min_silence: shortest pause that ends a segment, seconds.
        pad: padding added on both sides, seconds.
        frame_seconds: duration of one frame.

    Example:
        >>> p = np.array([0, 0, .9, .9, .9, .9, .9, .9, .9, .9, 0, 0, 0, 0, 0])
        >>> probabilities_to_segments(p, min_speech=0.1, pad=0.0)
        [(0.064, 0.32)]
    """
    probs = np.asarray(probs, dtype=np.float32).reshape(-1)
    if not 0.0 < threshold < 1.0:
        raise InvalidInputError(f"threshold must be in (0, 1), got {threshold}")
    if min(min_speech, min_silence, pad) < 0:
        raise InvalidInputError("min_speech, min_silence and pad must be >= 0")
    low = max(threshold - 0.15, 0.01)
    silence_frames = max(1, round(min_silence / frame_seconds))
    raw: list[tuple[int, int]] = []
    start, quiet = -1, 0
    for i, p in enumerate(probs):
        if start < 0:
            if p >= threshold:
                start, quiet = i, 0
        elif p < low:
            quiet += 1
            if quiet >= silence_frames:
                raw.append((start, i - quiet + 1))
                start = -1
        else:
            quiet = 0
    if start >= 0:
        raw.append((start, len(probs) - quiet))
    total = len(probs) * frame_seconds
    kept = [(a * frame_seconds, b * frame_seconds) for a, b in raw]
    kept = [(a, b) for a, b in kept if b - a >= min_speech]
    out: list[tuple[float, float]] = []
    for a, b in kept:
        a, b = max(0.0, a - pad), min(total, b + pad)
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return [(round(a, 3), round(b, 3)) for a, b in out]


class SileroVAD:
    """Silero VAD v6 on 16 kHz audio, one probability per 32 ms frame.

    Args:
        model_path: an ONNX file of the sequence export; default: the one in the wheel.
        num_threads: onnxruntime intra-op threads (the model is tiny; 1 is the fastest here).

    Example:
        >>> vad = SileroVAD()  # doctest: +SKIP
        >>> vad.speech_segments(load_audio("talk.wav"))  # doctest: +SKIP
        [(0.45, 3.2), (3.9, 7.71)]
    """

    sample_rate = SAMPLE_RATE
    frame_samples = FRAME_SAMPLES

    def __init__(self, model_path: str | Path | None = None, num_threads: int = 1) -> None:
        ort: Any = require("onnxruntime", extra="diarization", purpose="Silero VAD")
        path = Path(model_path) if model_path is not None else locate_silero_model()
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(num_threads)
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelLoadError(f"cannot load Silero VAD model {path}: {exc}") from exc
        self.model_path = path
        self.reset()

    def reset(self) -> None:
        """Forget the stream: zero LSTM state and context (call before a new stream)."""
        self._h = np.zeros(_STATE, dtype=np.float32)
        self._c = np.zeros(_STATE, dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)

    def process(self, chunk: np.ndarray) -> float:
        """Speech probability of the next 512-sample chunk of the stream (state carried)."""
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        if chunk.size != FRAME_SAMPLES:
            raise InvalidInputError(
                f"process() takes {FRAME_SAMPLES} samples at 16 kHz, got {chunk.size}"
            )
        return float(self.process_block(chunk)[0])

    def process_block(self, samples: np.ndarray) -> np.ndarray:
        """Probabilities of the next ``len(samples) // 512`` frames of the stream.

        ``samples`` must hold a whole number of 512-sample frames; the state is carried over.
        """
        samples = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        if samples.size % FRAME_SAMPLES:
            raise InvalidInputError(
                f"process_block() takes a multiple of {FRAME_SAMPLES} samples, got {samples.size}"
            )
        if not np.all(np.isfinite(samples)):
            raise InvalidInputError("audio holds NaN or infinite samples")
        out = []
        for first in range(0, samples.size, _MAX_FRAMES * FRAME_SAMPLES):
            frames = samples[first : first + _MAX_FRAMES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
            context = np.empty((len(frames), _CONTEXT), dtype=np.float32)
            context[0] = self._context
            context[1:] = frames[:-1, -_CONTEXT:]
            block = np.concatenate([context, frames], axis=1)
            probs, self._h, self._c = self._session.run(
                ["speech_probs", "hn", "cn"], {"input": block, "h": self._h, "c": self._c}
            )
            self._context = frames[-1, -_CONTEXT:].copy()
            out.append(np.asarray(probs, dtype=np.float32).reshape(-1))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def speech_probabilities(self, wave: np.ndarray) -> np.ndarray:
        """``(ceil(len(wave) / 512),)`` speech probabilities of a whole 16 kHz recording.

        The stream state is reset before and after; the last frame is zero-padded.
        """
        wave = np.asarray(wave, dtype=np.float32).reshape(-1)
        padded = np.zeros(-(-wave.size // FRAME_SAMPLES) * FRAME_SAMPLES, dtype=np.float32)
        padded[: wave.size] = wave
        self.reset()
        try:
            return self.process_block(padded)
        finally:
            self.reset()

    def speech_segments(
        self,
        wave: np.ndarray,
        threshold: float = 0.5,
        min_speech: float = 0.25,
        min_silence: float = 0.1,
        pad: float = 0.03,
    ) -> list[tuple[float, float]]:
        """Speech segments ``(start_s, end_s)`` of a 16 kHz recording.

        See :func:`probabilities_to_segments` for the arguments.
        """
        probs = self.speech_probabilities(wave)
        segments = probabilities_to_segments(probs, threshold, min_speech, min_silence, pad)
        end = np.asarray(wave).size / SAMPLE_RATE
        return [(a, min(b, round(end, 3))) for a, b in segments if a < end]
