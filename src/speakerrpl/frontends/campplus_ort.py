"""onnxruntime as the CPU engine of CAM++ (same weights, same features, same embeddings).

Measured on the 2-core machine (``benchmarks/bench_extraction.py``, docs/performance.md),
onnxruntime runs the exported CAM++ about 1.5x faster than torch at one thread. The export of
the checkpoint is written once under ``<cache root>/onnx/`` (keyed by the checkpoint digest)
and checked against the torch network on a probe utterance before it is used: when the two
disagree (cosine < :data:`MIN_COSINE`), or ``onnx``/``onnxruntime`` are not installed, the
frontend stays on torch. Because the engines are checked to agree, both write and read the same
embedding cache entries (the cache keys on what the embeddings *are*: checkpoint, features).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from speakerrpl.runtime import cache_root

logger = logging.getLogger(__name__)

__all__ = ["MIN_COSINE", "agreement", "ort_available", "ort_session"]

#: Least cosine between the torch and onnxruntime embedding of the probe for onnxruntime to run.
MIN_COSINE = 0.9999


def ort_available() -> bool:
    """Whether the ``onnx`` extra (onnx to export, onnxruntime to run) is installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def _probe() -> np.ndarray:
    """3 s of a deterministic speech-like signal (harmonics with a moving pitch, plus noise)."""
    rng = np.random.default_rng(0)
    t = np.arange(48_000) / 16_000
    pitch = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / 16_000
    wave = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.5 + 0.5 * np.sin(6 * t))
    return (0.05 * wave + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Least row-wise cosine similarity of two embedding matrices.

    Example:
        >>> agreement(np.eye(2, dtype=np.float32), 2 * np.eye(2, dtype=np.float32))
        1.0
    """
    num = np.sum(a * b, axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(np.min(num / np.maximum(den, 1e-12)))


def _export(checkpoint: Path, digest: str) -> Path:
    from speakerrpl.frontends.onnx_model import export_campplus_onnx

    folder = cache_root() / "onnx"
    target = folder / f"campplus-{digest[:16]}.onnx"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as work:  # concurrent exports never collide
        written = export_campplus_onnx(Path(work) / target.name, checkpoint=checkpoint)
        os.replace(written, target)
    return target


def ort_session(frontend: Any, num_threads: int | None) -> Any | None:
    """An onnxruntime session equivalent to ``frontend``'s torch CAM++, or None.

    None when the extra is missing, the export fails, or the probe embeddings disagree.
    """
    if not ort_available():
        return None
    from speakerrpl.frontends.onnx_model import _session

    try:
        path = _export(frontend.checkpoint, frontend._digest)
        session = _session(path, "cpu", num_threads if num_threads is not None else 1)
        feats = frontend.features(_probe())[None]
        ours = np.asarray(session.run(None, {"feats": feats})[0], dtype=np.float32)
        cosine = agreement(frontend.embed_features(feats), ours)
    except Exception as exc:  # exporter and runtime raise many types; torch stays correct
        logger.warning("CAM++ stays on torch: onnxruntime export/check failed (%s)", exc)
        return None
    if cosine < MIN_COSINE:
        logger.warning("CAM++ stays on torch: onnxruntime disagrees (cosine %.6f)", cosine)
        return None
    return session
