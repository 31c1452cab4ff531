"""The interface every speaker-embedding frontend implements."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np

from speakerrpl.errors import FrontendError, InvalidInputError

__all__ = ["Frontend", "resolve_device", "torch_threads"]


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


def resolve_device(device: str) -> str:
    """Check a device string: ``"cpu"`` or ``"cuda"`` / ``"cuda:N"`` when CUDA is present.

    Raises:
        InvalidInputError: unknown device, or CUDA asked for but not available.

    Example:
        >>> resolve_device("cpu")
        'cpu'
    """
    if device == "cpu":
        return device
    if device == "cuda" or device.startswith("cuda:"):
        import torch

        if not torch.cuda.is_available():
            raise InvalidInputError(
                f"device {device!r} was requested but CUDA is not available here; use 'cpu'"
            )
        return device
    raise InvalidInputError(f"expected device 'cpu', 'cuda' or 'cuda:N', got {device!r}")


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
