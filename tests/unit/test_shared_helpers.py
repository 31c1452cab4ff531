"""The helpers every stage shares: device names, the cache root, file hashes, L2 / centroids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from speakerrpl.embeddings.cache import default_cache_dir
from speakerrpl.errors import InvalidInputError
from speakerrpl.runtime import cache_root, check_device_name, file_sha256, resolve_device
from speakerrpl.synth.pool import pool_cache_path
from speakerrpl.vectors import centroids, cosine_scores, l2_normalize


def test_cache_root_expands_a_tilde_for_every_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """SPEAKERRPL_CACHE=~/x means the home folder's x, for the embeddings and the pool alike."""
    monkeypatch.setenv("SPEAKERRPL_CACHE", "~/spk-cache")
    want = Path.home() / "spk-cache"
    assert cache_root() == default_cache_dir() == want
    assert pool_cache_path("campplus", 32, 4, 0).parent == want / "pool"
    assert pool_cache_path("campplus", 32, 4, 0, cache_dir="~/other").parent.parent == (
        Path.home() / "other"
    )
    monkeypatch.delenv("SPEAKERRPL_CACHE")
    assert cache_root() == Path.home() / ".cache" / "speakerrpl"


def test_device_names_are_checked_one_way_everywhere() -> None:
    assert [check_device_name(d) for d in ("cpu", "cuda", "cuda:1")] == ["cpu", "cuda", "cuda:1"]
    for bad in ("gpu", "cuda:", "cuda:x", "CPU"):
        with pytest.raises(InvalidInputError, match="expected device"):
            check_device_name(bad)
    assert resolve_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInputError, match="CUDA is not available"):
            resolve_device("cuda")


def test_file_sha256_streams_the_bytes(tmp_path: Path) -> None:
    import hashlib

    data = np.random.default_rng(0).bytes(3 << 20)  # several 1 MiB chunks
    (tmp_path / "f").write_bytes(data)
    assert file_sha256(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_l2_normalize_centroids_and_cosine_scores() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(9, 5)).astype(np.float32)
    unit = l2_normalize(x)
    assert unit.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-6)
    assert not np.isnan(l2_normalize(np.zeros((1, 3)))).any()
    labels = ["b", "a", "b", "c", "a", "c", "b", "a", "c"]
    names, c = centroids(x, labels)
    assert names == ["b", "a", "c"]
    for name, row in zip(names, c, strict=True):
        rows = [u / np.linalg.norm(u) for u, n in zip(x, labels, strict=True) if n == name]
        mean = np.mean(rows, axis=0)
        np.testing.assert_allclose(row, mean / np.linalg.norm(mean), rtol=1e-6)
    want = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ c.T
    np.testing.assert_allclose(cosine_scores(x, c), want, rtol=1e-6)
