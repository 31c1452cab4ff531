"""Batch extraction of embeddings with a content-addressed cache."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from speakerrpl.audio import DEFAULT_MAX_DURATION, DEFAULT_MIN_DURATION
from speakerrpl.data.audio_folders import discover_audio
from speakerrpl.data.kaldi import Utterance
from speakerrpl.embeddings.cache import EmbeddingCache, file_sha256
from speakerrpl.embeddings.parallel import (
    auto_workers,
    decode,
    embed_in_processes,
    embed_loaded,
)
from speakerrpl.embeddings.set import EmbeddingSet
from speakerrpl.errors import InvalidInputError
from speakerrpl.frontends import Frontend, get_frontend

logger = logging.getLogger(__name__)

__all__ = ["Engine", "Failure", "extract_embeddings"]

#: ``engine(frontend, paths, batch_size, min_duration, max_duration, done)``: embeds ``paths``
#: and calls ``done(start, outcomes)`` for each finished batch (outcome: embedding or error).
Engine = Callable[..., None]


@dataclass(frozen=True)
class Failure:
    """An utterance that could not be embedded, and why."""

    utt_id: str
    path: Path
    reason: str


def extract_embeddings(
    source: str | Path | Sequence[Utterance],
    frontend: str | Frontend = "campplus",
    *,
    cache_dir: str | Path | None = None,
    batch_size: int = 16,
    jobs: int = 1,
    workers: int | None = None,
    engine: Engine | None = None,
    progress: bool = False,
    min_duration: float = DEFAULT_MIN_DURATION,
    max_duration: float = DEFAULT_MAX_DURATION,
) -> tuple[EmbeddingSet, list[Failure]]:
    """Embed every utterance of ``source``, reusing and filling the cache.

    Each file's embedding is cached under the SHA-256 of its bytes and the frontend's
    configuration, and written as soon as its batch is done, so a re-run computes only new
    files and an interrupted run loses nothing already computed. Files that cannot be read or
    embedded are returned as failures (and left out of the set); they never abort the batch.

    Args:
        source: see :func:`discover_audio`, or a list of utterances.
        frontend: a frontend name or instance.
        cache_dir: cache root (default ``$SPEAKERRPL_CACHE`` or ``~/.cache/speakerrpl``).
        batch_size: utterances loaded and embedded together.
        jobs: threads decoding and resampling audio in parallel (single-process path).
        workers: processes embedding in parallel, each with its own model and one thread
            (:mod:`~speakerrpl.embeddings.parallel`); ``None``: one per CPU when there are
            enough files to repay their start-up, 1: embed in this process.
        engine: runs the extraction elsewhere instead, e.g.
            :class:`~speakerrpl.embeddings.ray_extraction.RayEngine` (caching stays here).
        progress: show a tqdm progress bar on stderr.
        min_duration: minimum seconds of speech per file.
        max_duration: maximum seconds per file.

    Returns:
        The embedding set (in source order, failures left out) and the failures.

    Example:
        >>> import tempfile, pathlib, soundfile as sf
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> (root / "a").mkdir()
        >>> noise = np.random.default_rng(0).uniform(-0.2, 0.2, 16000)
        >>> sf.write(root / "a" / "x.wav", noise, 16000)
        >>> emb, failures = extract_embeddings(root, cache_dir=root / "cache")
        >>> emb.embeddings.shape, failures
        ((1, 192), [])
    """
    if batch_size < 1 or jobs < 1 or (workers is not None and workers < 1):
        raise InvalidInputError(
            f"batch_size, jobs and workers must be >= 1, got {batch_size}, {jobs}, {workers}"
        )
    model = get_frontend(frontend) if isinstance(frontend, str) else frontend
    utterances = discover_audio(source) if isinstance(source, (str, Path)) else list(source)
    cache = EmbeddingCache(cache_dir, model)
    errors: dict[str, str] = {}  # utt_id (unhashable file) or content digest -> reason
    digests: dict[str, str] = {}
    for utt in utterances:
        try:
            digests[utt.utt_id] = file_sha256(utt.path)
        except OSError as exc:
            errors[utt.utt_id] = f"AudioReadError: {utt.path}: cannot read ({exc.strerror})"
    found = {d: v for d in set(digests.values()) if (v := cache.get(d)) is not None}
    pending = _unique_pending(utterances, digests, found)
    logger.info("%d utterances, %d cached, %d to embed", len(utterances), len(found), len(pending))

    def record(batch: Sequence[Utterance], outcomes: Sequence[np.ndarray | str]) -> None:
        for utt, outcome in zip(batch, outcomes, strict=True):
            digest = digests[utt.utt_id]
            if isinstance(outcome, str):
                errors[digest] = outcome
            else:
                cache.put(digest, outcome)
                found[digest] = outcome
        bar(len(batch))

    bar = _progress_bar(len(pending), progress)
    n_workers = auto_workers(len(pending)) if workers is None else min(workers, len(pending))
    if engine is None and n_workers > 1:
        engine = partial(embed_in_processes, workers=n_workers)
    if engine is not None:
        engine(
            model,
            [u.path for u in pending],
            batch_size,
            min_duration,
            max_duration,
            lambda start, outs: record(pending[start : start + len(outs)], outs),
        )
    else:
        _embed_here(pending, model, batch_size, jobs, min_duration, max_duration, record)
    failures = [
        Failure(u.utt_id, u.path, errors.get(u.utt_id) or errors[digests[u.utt_id]])
        for u in utterances
        if u.utt_id in errors or digests[u.utt_id] in errors
    ]
    return _assemble(utterances, digests, found, model.name, model.dim), failures


def _embed_here(
    pending: Sequence[Utterance],
    frontend: Frontend,
    batch_size: int,
    jobs: int,
    min_duration: float,
    max_duration: float,
    record: Callable[[Sequence[Utterance], Sequence[np.ndarray | str]], None],
) -> None:
    """Embed in this process, decoding each batch's files in ``jobs`` threads."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for start in range(0, len(pending), batch_size):
            batch = pending[start : start + batch_size]
            waves = list(pool.map(lambda u: decode(u.path, min_duration, max_duration), batch))
            record(batch, embed_loaded(frontend, waves))


def _unique_pending(
    utterances: Sequence[Utterance], digests: dict[str, str], found: dict[str, np.ndarray]
) -> list[Utterance]:
    """Utterances still to embed, one per distinct content hash."""
    seen: set[str] = set(found)
    pending = []
    for utt in utterances:
        digest = digests.get(utt.utt_id)
        if digest is not None and digest not in seen:
            seen.add(digest)
            pending.append(utt)
    return pending


def _assemble(
    utterances: Sequence[Utterance],
    digests: dict[str, str],
    found: dict[str, np.ndarray],
    frontend: str,
    dim: int,
) -> EmbeddingSet:
    rows = [u for u in utterances if digests.get(u.utt_id) in found]
    matrix = (
        np.stack([found[digests[u.utt_id]] for u in rows])
        if rows
        else np.zeros((0, dim), dtype=np.float32)
    )
    return EmbeddingSet(matrix, [u.utt_id for u in rows], [u.speaker for u in rows], frontend)


def _progress_bar(total: int, enabled: bool) -> Callable[[int], None]:
    if not enabled or total == 0:
        return lambda _: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="utt", desc="embedding", leave=False)

    def advance(count: int) -> None:
        bar.update(count)
        if bar.n >= total:
            bar.close()

    return advance
