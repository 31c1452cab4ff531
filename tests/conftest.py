"""Shared pytest fixtures."""

from __future__ import annotations

import os

# Keep the suite predictable on a 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")


# --- audio/frontend fixtures (speakerrpl.audio, speakerrpl.frontends) ----------------------

from collections.abc import Iterator
from pathlib import Path

import pytest

POCKETSPHINX_DATA = Path("/usr/share/pocketsphinx/test/data")


@pytest.fixture(scope="session")
def pocketsphinx_speakers() -> dict[str, list[Path]]:
    """Real recordings of two people from Debian's pocketsphinx-testdata (5 files each)."""
    speakers = {
        "cards": sorted((POCKETSPHINX_DATA / "cards").glob("*.wav")),
        "librivox": sorted((POCKETSPHINX_DATA / "librivox").glob("*.wav")),
    }
    if not all(len(files) == 5 for files in speakers.values()):
        pytest.fail(
            "pocketsphinx-testdata is not installed; run `bash scripts/install_system_deps.sh` "
            "(`make test` does it)"
        )
    return speakers


@pytest.fixture(scope="session")
def campplus():  # type: ignore[no-untyped-def]
    """The default CAM++ frontend on CPU (one torch thread), loaded once per test session."""
    from speakerrpl.frontends import get_frontend

    return get_frontend("campplus", num_threads=1)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny matmuls: extra threads only add contention on a shared 2-core machine."""
    from speakerrpl.frontends.base import torch_threads

    with torch_threads(1):
        yield
