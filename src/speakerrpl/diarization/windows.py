"""Sliding windows over speech regions and their batched speaker embeddings."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from speakerrpl.errors import InvalidInputError

__all__ = ["WindowEmbedder", "plan_windows"]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000


def plan_windows(
    regions: Sequence[tuple[float, float]],
    window: float = 1.5,
    hop: float = 0.75,
    min_window: float = 0.25,
) -> np.ndarray:
    """Windows ``(N, 2)`` of ``[start, end]`` seconds covering each speech region.

    A region longer than ``window`` gets windows every ``hop`` seconds, the last one aligned to
    the region's end; a shorter one gets one window of its own length (if >= ``min_window``).

    Example:
        >>> plan_windows([(0.0, 3.0), (4.0, 4.5)], window=1.5, hop=1.0).tolist()
        [[0.0, 1.5], [1.0, 2.5], [1.5, 3.0], [4.0, 4.5]]
    """
    if not 0 < hop <= window:
        raise InvalidInputError(f"expected 0 < hop <= window, got hop={hop}, window={window}")
    out: list[tuple[float, float]] = []
    for a, b in regions:
        length = b - a
        if length < min_window:
            continue
        if length <= window:
            out.append((a, b))
            continue
        starts = np.arange(a, b - window + 1e-9, hop)
        out.extend((float(s), float(s) + window) for s in starts)
        if b - (starts[-1] + window) > 1e-3:
            out.append((b - window, b))
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


class WindowEmbedder:
    """Embeds windows of a (possibly streamed) 16 kHz signal in batches with a frontend.

    Args:
        frontend: a :class:`~speakerrpl.frontends.base.Frontend` (``embed``, ``dim``); CAM++'s
            ``embed_equal_length`` is used for full windows when ``device`` is not the CPU
            (features on the GPU too).
        batch_size: windows per call of the frontend.
    """

    def __init__(self, frontend: Any, batch_size: int = 64) -> None:
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
        self.frontend = frontend
        self.batch_size = batch_size

    @property
    def dim(self) -> int:
        """Embedding dimension of the frontend."""
        return int(self.frontend.dim)

    def _embed(self, waves: list[np.ndarray]) -> np.ndarray:
        fast = getattr(self.frontend, "embed_equal_length", None)
        on_gpu = str(getattr(self.frontend, "device", "cpu")) != "cpu"
        if fast is not None and on_gpu and len({w.size for w in waves}) == 1:
            return np.asarray(fast(np.stack(waves)), dtype=np.float32)
        return np.asarray(self.frontend.embed(waves), dtype=np.float32)

    def embed(self, wave: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """Embeddings ``(N, D)`` of ``windows`` (seconds) cut from an in-memory ``wave``."""
        return self.embed_stream(_chunks(wave), windows)

    def embed_stream(self, chunks: Iterable[np.ndarray], windows: np.ndarray) -> np.ndarray:
        """Embeddings ``(N, D)`` of ``windows`` (sorted by start) cut from consecutive chunks.

        Only the audio from the earliest window not yet cut is kept, so memory stays bounded
        by one chunk plus one window.
        """
        bounds = np.round(np.asarray(windows, dtype=np.float64) * SAMPLE_RATE).astype(np.int64)
        out = np.zeros((len(bounds), self.dim), dtype=np.float32)
        buffer, offset, nxt = np.zeros(0, dtype=np.float32), 0, 0
        pending: list[int] = []
        pending_waves: list[np.ndarray] = []
        for chunk in chunks:
            buffer = np.concatenate([buffer, np.asarray(chunk, dtype=np.float32)])
            while nxt < len(bounds) and bounds[nxt, 1] <= offset + buffer.size:
                a, b = bounds[nxt] - offset
                pending.append(nxt)
                pending_waves.append(buffer[max(a, 0) : b].copy())
                nxt += 1
                if len(pending) >= self.batch_size:
                    out[pending] = self._embed(pending_waves)
                    pending, pending_waves = [], []
            keep_from = int(bounds[nxt, 0] - offset) if nxt < len(bounds) else buffer.size
            keep_from = min(max(keep_from, 0), buffer.size)
            buffer, offset = buffer[keep_from:], offset + keep_from
        if nxt < len(bounds):  # windows reaching past the end: cut what there is
            for i in range(nxt, len(bounds)):
                a, b = bounds[i] - offset
                pending.append(i)
                pending_waves.append(buffer[max(a, 0) : max(b, a + 1)].copy())
        if pending:
            out[pending] = self._embed(pending_waves)
        return out


def _chunks(wave: np.ndarray, size: int = 60 * SAMPLE_RATE) -> Iterator[np.ndarray]:
    wave = np.asarray(wave, dtype=np.float32).reshape(-1)
    for start in range(0, wave.size, size):
        yield wave[start : start + size]
