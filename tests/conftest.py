"""Shared pytest fixtures."""

from __future__ import annotations

import os

# Keep the suite predictable on a 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")
