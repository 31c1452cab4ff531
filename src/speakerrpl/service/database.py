"""SQLite plumbing of the registry: private file creation, read-only opening, error translation.

Every ``sqlite3`` failure becomes a :class:`~speakerrpl.errors.RegistryError` subclass with a
message that names the cause (disk full, read-only, corrupt file), so the CLI prints one line
and the service answers 503 instead of a traceback.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from speakerrpl.errors import RegistryError, RegistryReadOnlyError, RegistryUnavailableError

__all__ = ["connect", "create_private", "is_writable", "translate", "translated"]

logger = logging.getLogger(__name__)

_FILE_MODE, _DIR_MODE = 0o600, 0o700


def translate(exc: sqlite3.Error, path: Path) -> RegistryError:
    """The registry error that explains ``exc`` (the caller raises it ``from exc``)."""
    text = str(exc)
    low = text.lower()
    where = f"registry {str(path)!r}"
    if "full" in low:
        return RegistryUnavailableError(f"{where}: database or disk is full ({text}); free space")
    if "readonly" in low or "read-only" in low:
        return RegistryReadOnlyError(f"{where} is read-only: it serves identification only")
    if "locked" in low or "busy" in low:
        return RegistryUnavailableError(f"{where} is locked by another process ({text}); retry")
    if isinstance(exc, sqlite3.DatabaseError) and ("malformed" in low or "not a database" in low):
        return RegistryError(f"{where} is corrupt or not a registry ({text})")
    if "disk i/o" in low or "unable to open" in low:
        return RegistryUnavailableError(f"{where}: cannot be read or written ({text})")
    return RegistryError(f"{where}: {text}")


@contextmanager
def translated(path: Path) -> Iterator[None]:
    """Turn ``sqlite3`` errors raised inside the block into registry errors."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translate(exc, path) from exc


def is_writable(path: Path) -> bool:
    """Whether the registry file and its folder can be written (False on a read-only mount)."""
    target = path if path.exists() else path.parent
    return os.access(target, os.W_OK) and os.access(path.parent, os.W_OK)


def create_private(path: Path) -> None:
    """Create an empty registry file readable by its owner only (0600; new folders 0700).

    SQLite gives its ``-wal`` and ``-shm`` files the mode of the database file, so they stay
    private too. An existing folder readable by others is reported, not changed.
    """
    parent = path.parent
    if not parent.exists():
        parent.mkdir(mode=_DIR_MODE, parents=True)
    elif parent.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("registry folder %s is accessible by other users (chmod 700 it)", parent)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, _FILE_MODE)
    except FileExistsError:
        return
    except OSError as exc:
        raise RegistryUnavailableError(f"cannot create registry {str(path)!r}: {exc}") from exc
    os.close(fd)
    os.chmod(path, _FILE_MODE)  # whatever the umask


def connect(path: Path, read_only: bool) -> sqlite3.Connection:
    """Open the registry; read-only opening falls back to ``immutable=1`` on a read-only mount
    (where SQLite cannot create the ``-shm`` file a WAL reader needs)."""
    try:
        if not read_only:
            con = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        else:
            con = _connect_read_only(path)
        con.execute("PRAGMA foreign_keys=ON")
        if not read_only:
            con.execute("PRAGMA synchronous=FULL")
            con.execute("PRAGMA secure_delete=ON")  # removed voiceprints are overwritten
    except sqlite3.Error as exc:
        raise translate(exc, path) from exc
    return con


def _connect_read_only(path: Path) -> sqlite3.Connection:
    uri = "file:" + urllib.parse.quote(str(path.resolve()))
    try:
        con = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=30.0, isolation_level=None)
        con.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return con
    except sqlite3.OperationalError:
        logger.info("registry %s: opening immutable (read-only mount)", path)
        return sqlite3.connect(uri + "?immutable=1", uri=True, isolation_level=None)
