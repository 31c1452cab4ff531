"""Where speakerrpl runs and keeps things: device names, the cache root, file content hashes.

Every stage uses these three helpers, so a device string, a cache location or a file digest
means the same everywhere (the identifier, the frontends, the embedding cache, the pool).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from speakerrpl.errors import InvalidInputError

__all__ = ["cache_root", "check_device_name", "file_sha256", "resolve_device"]


def check_device_name(device: str) -> str:
    """Check the form of a device string (``cpu``, ``cuda`` or ``cuda:N``); return it.

    Example:
        >>> check_device_name("cuda:1")
        'cuda:1'
    """
    if not isinstance(device, str) or not (
        device in ("cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit())
    ):
        raise InvalidInputError(f"expected device 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return device


def resolve_device(device: str) -> str:
    """:func:`check_device_name`, and for CUDA that a CUDA device is present here.

    Raises:
        InvalidInputError: unknown device, or CUDA asked for but not available.

    Example:
        >>> resolve_device("cpu")
        'cpu'
    """
    if check_device_name(device) == "cpu":
        return device
    import torch

    if not torch.cuda.is_available():
        raise InvalidInputError(
            f"device {device!r} was requested but CUDA is not available here; use 'cpu'"
        )
    return device


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, else ``$SPEAKERRPL_CACHE``, else ``~/.cache/speakerrpl`` (``~`` expanded).

    Example:
        >>> cache_root("~/x") == Path.home() / "x"
        True
    """
    if cache_dir is None:
        cache_dir = os.environ.get("SPEAKERRPL_CACHE") or Path.home() / ".cache" / "speakerrpl"
    return Path(cache_dir).expanduser()


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks).

    Example:
        >>> import tempfile
        >>> path = tempfile.mktemp()
        >>> _ = open(path, "wb").write(b"abc")
        >>> file_sha256(path)[:12]
        'ba7816bf8f01'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
