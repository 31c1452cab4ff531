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
from speakerrpl.vectors import centroids

__all__ = ["default_pool", "drop_near_duplicates", "pool_cache_path"]

logger = logging.getLogger(__name__)

_VERSION = 2  # 2: near-duplicate voices dropped, 64 voices by default
MAX_VOICE_COSINE = 0.9
"""Pool voices whose centroid cosine to an already kept voice exceeds this are dropped (the
demo corpus measured within-speaker cosine about 0.92 and other cross-speaker pairs <= 0.80)."""


def drop_near_duplicates(
    embeddings: np.ndarray, speakers: np.ndarray, max_cosine: float = MAX_VOICE_COSINE
) -> tuple[np.ndarray, np.ndarray]:
    """Keep each voice unless its centroid is within ``max_cosine`` of a voice kept before it.

    A pool of near-identical voices counts one voice several times: as extension classes it
    wastes capacity, as calibration voices it makes the sample look larger than it is.

    Example:
        >>> e = np.array([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0]], dtype=np.float32)
        >>> drop_near_duplicates(e, np.array(["a", "b", "c"]))[1].tolist()
        ['a', 'c']
    """
    names = list(dict.fromkeys(speakers.tolist()))
    _, cents = centroids(embeddings, speakers.tolist())
    kept: list[int] = []
    for i in range(len(names)):
        if not kept or float((cents[kept] @ cents[i]).max()) <= max_cosine:
            kept.append(i)
    keep_names = {names[i] for i in kept}
    if len(keep_names) < len(names):
        logger.info("pool: dropped %d near-duplicate voices", len(names) - len(keep_names))
    mask = np.isin(speakers, sorted(keep_names))
    return embeddings[mask], speakers[mask]


def pool_cache_path(
    frontend_name: str, n_voices: int, n_utts: int, seed: int, cache_dir: str | Path | None = None
) -> Path:
    """Where :func:`default_pool` caches a pool.

    Example:
        >>> pool_cache_path("campplus", 32, 4, 0, cache_dir="/c").as_posix()
        '/c/pool/v2-campplus-32x4-s0.npz'
    """
    name = f"v{_VERSION}-{frontend_name}-{n_voices}x{n_utts}-s{seed}.npz"
    return cache_root(cache_dir) / "pool" / name


def default_pool(
    frontend: Any,
    *,
    n_voices: int = 64,
    n_utts: int = 4,
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings ``(P, D)`` and speaker labels ``(P,)`` of a synthetic espeak-ng pool.

    Args:
        frontend: a :class:`~speakerrpl.frontends.base.Frontend` (``name``, ``embed``).
        n_voices: pool voices synthesised (espeak-ng variants with varied pitch and rate);
            near-duplicates are then dropped (:func:`drop_near_duplicates`). 64 by default so
            that the calibration voices held out of class extension (a third, at most 20)
            leave enough for the extension classes.
        n_utts: utterances per voice.
        seed: picks voices and sentences.
        cache_dir: cache root (default ``$SPEAKERRPL_CACHE`` or ``~/.cache/speakerrpl``).

    Raises:
        TTSError: espeak-ng is not installed.

    Example:
        >>> from speakerrpl.frontends import get_frontend  # doctest: +SKIP
        >>> emb, labels = default_pool(get_frontend("campplus"))  # doctest: +SKIP
        >>> emb.shape[0] == labels.shape[0] <= 64 * 4  # doctest: +SKIP
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
    embeddings, speakers = drop_near_duplicates(embeddings, np.asarray(labels, dtype=str))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, embeddings=embeddings, speakers=speakers)
    tmp.replace(path)
    logger.info("cached a pool of %d embeddings at %s", len(speakers), path)
    return embeddings, speakers
