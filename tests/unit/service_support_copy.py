"""Consistent copies of a registry file for the service unit tests (SQLite backup API)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def copy_registry(src: Path, dst: Path) -> Path:
    """Copy a registry file consistently; the copy is private (0600) like a new registry."""
    dst.touch(mode=0o600)
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    return dst
