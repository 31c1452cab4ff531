"""The Ray paths (``embed --ray``, ``evaluate --ray``) on a local Ray started here give the
same results as the local paths. Skipped when the ``ray`` extra is not installed."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from speakerrpl.cli import main
from speakerrpl.embeddings import EmbeddingSet

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # a local Ray cluster takes minutes on the shared 2-core machine


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def _corpus(tmp_path: Path, speakers: dict[str, list[Path]]) -> Path:
    root = tmp_path / "corpus"
    for name, files in speakers.items():
        (root / name).mkdir(parents=True)
        for f in files:
            shutil.copy(f, root / name / f.name)
    return root


def _cache_entries(cache: Path) -> set[str]:
    return {p.name for p in cache.rglob("*.npy")}


def test_embed_on_ray_equals_local_and_fills_the_same_cache(
    local_ray: None, tmp_path: Path, pocketsphinx_speakers: dict[str, list[Path]]
) -> None:
    corpus = _corpus(tmp_path, pocketsphinx_speakers)
    base = ["embed", str(corpus), "--batch-size", "3", "--threads", "1"]
    ray_cache, local_cache = tmp_path / "ray-cache", tmp_path / "local-cache"
    assert main([*base, "--out", str(tmp_path / "r.npz"), "--cache-dir", str(ray_cache),
                 "--ray"]) == 0  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "l.npz"), "--cache-dir", str(local_cache),
                 "--workers", "1"]) == 0  # fmt: skip
    on_ray, local = EmbeddingSet.load(tmp_path / "r.npz"), EmbeddingSet.load(tmp_path / "l.npz")
    assert on_ray.utt_ids.tolist() == local.utt_ids.tolist()
    assert on_ray.speakers.tolist() == local.speakers.tolist()
    np.testing.assert_allclose(on_ray.embeddings, local.embeddings, atol=1e-5)
    assert len(_cache_entries(ray_cache)) == 10
    assert _cache_entries(ray_cache) == _cache_entries(local_cache)
    folders = {p.parent.parent.name for c in (ray_cache, local_cache) for p in c.rglob("*.npy")}
    assert len(folders) == 1  # the same frontend cache directory


def _toy_inputs(tmp_path: Path) -> list[str]:
    from speakerrpl.data.protocols import make_protocol, save_protocol

    rng = np.random.default_rng(0)
    spk = np.repeat([f"s{i}" for i in range(8)], 6)
    x = np.repeat(rng.normal(size=(8, 16)), 6, axis=0) + 0.3 * rng.normal(size=(48, 16))
    ids = [f"{s}-{i % 6}" for i, s in enumerate(spk)]
    EmbeddingSet(x, ids, spk, "toy").save(tmp_path / "e.npz")
    pool = rng.normal(size=(12, 16))
    EmbeddingSet(pool, [f"p{i}" for i in range(12)], ["p0", "p1", "p2"] * 4, "toy").save(
        tmp_path / "p.npz"
    )
    proto = make_protocol(
        dict(zip(ids, spk, strict=True)), n_targets=4, n_enroll=3, n_unknowns=4, n_folds=2
    )
    save_protocol(proto, tmp_path / "proto.json")
    return ["--embeddings", str(tmp_path / "e.npz"), "--pool", str(tmp_path / "p.npz"),
            "--protocol", str(tmp_path / "proto.json")]  # fmt: skip


def test_evaluate_on_ray_equals_local_and_resumes(local_ray: None, tmp_path: Path) -> None:
    inputs = _toy_inputs(tmp_path)
    grid = ["--methods", "cosine,softmax,rpl_v2", "--models", "3", "--seeds", "2",
            "--epochs", "2", "--no-figures"]  # fmt: skip
    ray_out, local_out = tmp_path / "ray", tmp_path / "local"
    assert main(["evaluate", *inputs, *grid, "--out", str(ray_out), "--ray"]) == 0
    assert main(["evaluate", *inputs, *grid, "--out", str(local_out)]) == 0
    on_ray = json.loads((ray_out / "results.json").read_text())["results"]
    local = json.loads((local_out / "results.json").read_text())["results"]
    assert on_ray.keys() == local.keys()
    for cond in local:
        for row in local[cond]:
            for stat in ("mean", "std"):
                a, b = on_ray[cond][row][stat], local[cond][row][stat]
                assert a.keys() == b.keys()
                np.testing.assert_allclose([a[k] for k in a], [b[k] for k in a], atol=1e-9)
    units = sorted(p.relative_to(ray_out) for p in (ray_out / "units").rglob("*.json"))
    assert units == sorted(p.relative_to(local_out) for p in (local_out / "units").rglob("*.json"))
    assert len(units) >= 6  # 3 methods x 2 splits
    # a re-run on Ray finds every unit stored locally and fits nothing
    stamp = {p: p.stat().st_mtime_ns for p in (local_out / "units").rglob("*.json")}
    assert main(["evaluate", *inputs, *grid, "--out", str(local_out), "--ray"]) == 0
    assert {p: p.stat().st_mtime_ns for p in (local_out / "units").rglob("*.json")} == stamp
