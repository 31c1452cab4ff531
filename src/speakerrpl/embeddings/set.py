"""Embedding sets: embeddings with their utterance ids and speakers, stored as ``.npz``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from speakerrpl.errors import EmbeddingFileError, InvalidInputError

__all__ = ["EmbeddingSet"]

_KEYS = ("embeddings", "utt_ids", "speakers", "frontend")


class EmbeddingSet:
    """Embeddings with their utterance ids and speakers, from one frontend.

    Args:
        embeddings: ``(N, D)`` array-like, stored as float32.
        utt_ids: ``N`` unique utterance ids.
        speakers: ``N`` speaker labels.
        frontend: the frontend name that produced them.

    Raises:
        InvalidInputError: inconsistent lengths, duplicate ids, or non-finite values.

    Example:
        >>> import tempfile, os
        >>> s = EmbeddingSet(np.eye(2, 3), ["u1", "u2"], ["a", "b"], "campplus")
        >>> path = os.path.join(tempfile.mkdtemp(), "emb.npz")
        >>> s.save(path)
        >>> EmbeddingSet.load(path).speakers.tolist()
        ['a', 'b']
    """

    def __init__(
        self,
        embeddings: ArrayLike,
        utt_ids: Sequence[str] | np.ndarray,
        speakers: Sequence[str] | np.ndarray,
        frontend: str,
    ) -> None:
        self.embeddings = np.asarray(embeddings, dtype=np.float32)
        self.utt_ids = np.asarray(utt_ids, dtype=str).reshape(-1)
        self.speakers = np.asarray(speakers, dtype=str).reshape(-1)
        self.frontend = str(frontend)
        n = len(self.utt_ids)
        if self.embeddings.ndim != 2 or self.embeddings.shape[0] != n:
            raise InvalidInputError(
                f"expected embeddings of shape ({n}, D) for {n} utterance ids, "
                f"got {self.embeddings.shape}"
            )
        if len(self.speakers) != n:
            raise InvalidInputError(f"expected {n} speakers, got {len(self.speakers)}")
        if len(set(self.utt_ids.tolist())) != n:
            raise InvalidInputError("utterance ids must be unique")
        if not np.isfinite(self.embeddings).all():
            raise InvalidInputError("embeddings hold NaN or infinite values")

    def __repr__(self) -> str:
        return (
            f"EmbeddingSet(n={len(self)}, dim={self.embeddings.shape[-1]}, "
            f"frontend={self.frontend!r})"
        )

    def __len__(self) -> int:
        return len(self.utt_ids)

    @property
    def dim(self) -> int:
        """Embedding dimension D."""
        return int(self.embeddings.shape[1])

    def save(self, path: str | Path) -> None:
        """Write an ``.npz`` (no pickles) atomically: a crash never leaves half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as handle:
            np.savez(
                handle,
                embeddings=self.embeddings,
                utt_ids=self.utt_ids,
                speakers=self.speakers,
                frontend=np.asarray(self.frontend, dtype=str),
            )
        os.replace(handle.name, path)

    @classmethod
    def load(cls, path: str | Path) -> EmbeddingSet:
        """Read and validate a file written by :meth:`save`.

        Raises:
            EmbeddingFileError: missing file, not an npz, missing keys, or inconsistent shapes.
        """
        path = Path(path)
        if not path.is_file():
            raise EmbeddingFileError(f"{path}: embeddings file does not exist")
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [key for key in _KEYS if key not in data.files]
                if missing:
                    raise EmbeddingFileError(
                        f"{path}: missing key(s) {', '.join(missing)}; expected {', '.join(_KEYS)}"
                    )
                arrays = {key: data[key] for key in _KEYS}
        except EmbeddingFileError:
            raise
        except (OSError, ValueError, EOFError) as exc:
            raise EmbeddingFileError(f"{path}: not a readable .npz file ({exc})") from exc
        try:
            return cls(
                arrays["embeddings"],
                arrays["utt_ids"],
                arrays["speakers"],
                str(arrays["frontend"]),
            )
        except InvalidInputError as exc:
            raise EmbeddingFileError(f"{path}: {exc}") from exc
