"""The interface every speaker-embedding frontend implements."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np

from speakerrpl.errors import FrontendError, InvalidInputError
from speakerrpl.runtime import resolve_device

__all__ = ["Frontend", "embed_by_length", "torch_threads"]


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run a block with ``torch.set_num_threads(count)``, restoring the old value after.

    ``None`` leaves torch's setting alone. On a busy machine one thread per process is often
    much faster than several competing ones.

    Example:
        >>> import torch
        >>> before = torch.get_num_threads()
        >>> with torch_threads(1):
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """
    if count is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def embed_by_length(
    items: Sequence[np.ndarray],
    batch_size: int,
    dim: int,
    run: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Embed ``items`` in batches of equal length (``shape[0]``); rows in input order.

    Inputs of different lengths are never padded together (padding changes what speaker
    models compute): ``run`` gets stacked ``(B, length, ...)`` batches of at most
    ``batch_size`` items that share a length, and returns ``(B, dim)``.

    Example:
        >>> items = [np.ones(3), np.ones(2), 2 * np.ones(3)]
        >>> embed_by_length(items, 8, 1, lambda b: b.sum(axis=1, keepdims=True)).ravel().tolist()
        [3.0, 2.0, 6.0]
    """
    groups: dict[int, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        groups[item.shape[0]].append(index)
    out = np.empty((len(items), dim), dtype=np.float32)
    for indices in groups.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            out[chunk] = run(np.stack([items[i] for i in chunk]))
    return out


class Frontend(ABC):
    """A frozen speaker model: 16 kHz mono waveforms -> ``(N, D)`` float32 embeddings.

    Subclasses set ``name``, implement :attr:`dim` and :meth:`_embed`, and extend
    :meth:`config` with every setting that changes the embeddings (it keys the cache).

    Args:
        device: ``"cpu"`` (default) or ``"cuda"``.
    """

    name: ClassVar[str] = "frontend"
    sample_rate: ClassVar[int] = 16_000

    def __init__(self, device: str = "cpu") -> None:
        self._device = resolve_device(device)

    @property
    def device(self) -> str:
        """The device the model runs on."""
        return self._device

    @property
    @abstractmethod
    def dim(self) -> int:
        """Embedding dimension D."""

    def config(self) -> dict[str, Any]:
        """Settings that determine the embeddings (JSON-serialisable); keys the cache."""
        return {"name": self.name}

    def cache_key(self) -> str:
        """A short stable digest of :meth:`config`."""
        blob = json.dumps(self.config(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def embed(self, waves: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Embed a batch of waveforms of any lengths.

        Args:
            waves: a sequence of 1-D float arrays (16 kHz mono in [-1, 1]), or a 2-D array
                ``(N, T)`` of equal-length ones. A single 1-D array is treated as a batch of one.

        Returns:
            ``(N, D)`` float32, one row per input, in input order.

        Raises:
            InvalidInputError: an input is not 1-D, is empty, or holds non-finite values.
            FrontendError: the model returned something of the wrong shape.
        """
        batch = self._check_waves(waves)
        if not batch:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.asarray(self._embed(batch), dtype=np.float32)
        if out.shape != (len(batch), self.dim):
            raise FrontendError(
                f"{self.name}: expected embeddings of shape {(len(batch), self.dim)}, "
                f"got {out.shape}"
            )
        return out

    @abstractmethod
    def _embed(self, waves: list[np.ndarray]) -> np.ndarray:
        """Embed validated 1-D float32 waveforms; return ``(len(waves), dim)``."""

    @staticmethod
    def _check_waves(waves: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
        if isinstance(waves, np.ndarray):
            if waves.ndim == 1:
                waves = [waves]
            elif waves.ndim != 2:
                raise InvalidInputError(
                    f"expected waveforms shaped (N, T) or a list of 1-D arrays, "
                    f"got an array of shape {waves.shape}"
                )
        batch = []
        for index, wave in enumerate(waves):
            array = np.asarray(wave, dtype=np.float32)
            if array.ndim != 1 or array.size == 0:
                raise InvalidInputError(
                    f"waveform {index}: expected a non-empty 1-D array, got shape {array.shape}"
                )
            if not np.isfinite(array).all():
                raise InvalidInputError(f"waveform {index}: holds NaN or infinite samples")
            batch.append(np.ascontiguousarray(array))
        return batch

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, device={self.device!r})"
