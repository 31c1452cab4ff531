"""The default synthetic negative pool for deployment: espeak-ng voices, embedded once, cached.

:func:`default_pool` synthesises a small set of espeak-ng variant voices (fast, purely
synthetic, never a real person), embeds them with the given frontend and caches the result under
``$SPEAKERRPL_CACHE`` (or ``~/.cache/speakerrpl``) as
``pool/v1-<frontend>-<voices>x<utts>-s<seed>.npz``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from speakerrpl.errors import InvalidInputError, TTSError
from speakerrpl.runtime import cache_root
from speakerrpl.synth.engines import synthesize
from speakerrpl.synth.voices import load_texts, pool_voices

__all__ = ["default_pool", "pool_cache_path"]

logger = logging.getLogger(__name__)

_VERSION = 1


def pool_cache_path(
    frontend_name: str, n_voices: int, n_utts: int, seed: int, cache_dir: str | Path | None = None
) -> Path:
    """Where :func:`default_pool` caches a pool.

    Example:
        >>> pool_cache_path("campplus", 32, 4, 0, cache_dir="/c").as_posix()
        '/c/pool/v1-campplus-32x4-s0.npz'
    """
    name = f"v{_VERSION}-{frontend_name}-{n_voices}x{n_utts}-s{seed}.npz"
    return cache_root(cache_dir) / "pool" / name


def default_pool(
    frontend: Any,
    *,
    n_voices: int = 32,
    n_utts: int = 4,
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings ``(P, D)`` and speaker labels ``(P,)`` of a synthetic espeak-ng pool.

    Args:
        frontend: a :class:`~speakerrpl.frontends.base.Frontend` (``name``, ``embed``).
        n_voices: pool voices (espeak-ng variants with varied pitch and rate).
        n_utts: utterances per voice.
        seed: picks voices and sentences.
        cache_dir: cache root (default ``$SPEAKERRPL_CACHE`` or ``~/.cache/speakerrpl``).

    Raises:
        TTSError: espeak-ng is not installed.

    Example:
        >>> from speakerrpl.frontends import get_frontend  # doctest: +SKIP
        >>> emb, labels = default_pool(get_frontend("campplus"))  # doctest: +SKIP
        >>> emb.shape[0] == labels.shape[0] == 32 * 4  # doctest: +SKIP
        True
    """
    if n_voices < 1 or n_utts < 1:
        raise InvalidInputError(f"n_voices and n_utts must be >= 1, got {n_voices}, {n_utts}")
    name = str(getattr(frontend, "name", type(frontend).__name__))
    path = pool_cache_path(name, n_voices, n_utts, seed, cache_dir)
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            return data["embeddings"], data["speakers"]
    waves, labels = [], []
    for spec in pool_voices(n_voices, seed=seed):
        texts = load_texts(spec.language)
        start = (seed + int(spec.speaker.rsplit("-", 1)[-1]) * n_utts) % len(texts)
        for i in range(n_utts):
            try:
                waves.append(synthesize(spec, texts[(start + i) % len(texts)]))
            except TTSError:
                logger.warning("pool voice %s failed; skipping one utterance", spec.speaker)
                continue
            labels.append(spec.speaker)
    if not waves:
        raise TTSError("no pool voice could be synthesised: install espeak-ng")
    embeddings = np.asarray(frontend.embed(waves), dtype=np.float32)
    speakers = np.asarray(labels, dtype=str)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, embeddings=embeddings, speakers=speakers)
    tmp.replace(path)
    logger.info("cached a pool of %d embeddings at %s", len(speakers), path)
    return embeddings, speakers
