"""On-disk cache of embeddings keyed by audio content hash and frontend configuration.

Layout: ``<root>/<frontend name>-<frontend cache key>/<sha[:2]>/<sha256 of file bytes>.npy``
plus a ``frontend.json`` describing the configuration of that directory. Each entry is written
to a temporary file and renamed into place, so a crash never leaves a partial entry and every
entry written before it survives.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from speakerrpl.frontends.base import Frontend
from speakerrpl.runtime import cache_root, file_sha256

logger = logging.getLogger(__name__)

__all__ = ["EmbeddingCache", "default_cache_dir", "file_sha256"]


def default_cache_dir() -> Path:
    """The cache root: ``$SPEAKERRPL_CACHE`` or ``~/.cache/speakerrpl`` (see ``runtime``).

    Example:
        >>> isinstance(default_cache_dir(), Path)
        True
    """
    return cache_root()


class EmbeddingCache:
    """Embeddings of one frontend configuration, one small ``.npy`` per audio content hash.

    Args:
        root: cache root (default :func:`default_cache_dir`).
        frontend: the frontend whose embeddings are stored; its :meth:`Frontend.config`
            selects the sub-directory, so a different model or setting never hits.

    Example:
        >>> import tempfile
        >>> from speakerrpl.frontends import get_frontend
        >>> cache = EmbeddingCache(tempfile.mkdtemp(), get_frontend("campplus"))
        >>> cache.put("ab" * 32, np.ones(192, dtype=np.float32))
        >>> cache.get("ab" * 32).shape
        (192,)
    """

    def __init__(self, root: str | Path | None, frontend: Frontend) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.dim = frontend.dim
        self.directory = self.root / f"{frontend.name}-{frontend.cache_key()}"
        self.directory.mkdir(parents=True, exist_ok=True)
        info = self.directory / "frontend.json"
        if not info.exists():
            self._atomic_write(info, json.dumps(frontend.config(), indent=2, default=str).encode())

    def path(self, digest: str) -> Path:
        """Where the entry of ``digest`` lives."""
        return self.directory / digest[:2] / f"{digest}.npy"

    def get(self, digest: str) -> np.ndarray | None:
        """The cached embedding, or None when absent or unreadable (then it is recomputed)."""
        path = self.path(digest)
        if not path.is_file():
            return None
        try:
            value = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable cache entry %s: %s", path, exc)
            return None
        if value.shape != (self.dim,) or value.dtype != np.float32:
            logger.warning("ignoring cache entry %s of shape %s", path, value.shape)
            return None
        return value

    def put(self, digest: str, embedding: np.ndarray) -> None:
        """Store one embedding durably (temporary file + rename)."""
        path = self.path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
            np.save(handle, np.asarray(embedding, dtype=np.float32), allow_pickle=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)

    @staticmethod
    def _atomic_write(path: Path, data: bytes) -> None:
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
            handle.write(data)
        os.replace(handle.name, path)
