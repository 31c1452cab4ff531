"""Process-level parallel extraction: one model per worker process, one thread each.

On a CPU shared with other work, several threads of one process waiting on each other at every
operator collapse (each barrier waits for the slowest, descheduled thread), while independent
single-threaded processes each keep whatever core time they get. Workers are started with
``spawn`` and the thread variables set before torch loads (``OMP_NUM_THREADS=1``,
``OMP_WAIT_POLICY=PASSIVE``: no spinning while idle), then run :func:`embed_files` on batches.

:func:`embed_files` is also what a Ray actor runs (:mod:`speakerrpl.embeddings.ray_extraction`),
so every path decodes, checks and embeds a file the same way.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from speakerrpl.audio import load_audio
from speakerrpl.errors import SpeakerRPLError
from speakerrpl.frontends.base import Frontend

logger = logging.getLogger(__name__)

__all__ = [
    "WORKER_ENV",
    "auto_workers",
    "decode",
    "embed_files",
    "embed_in_processes",
    "embed_loaded",
    "single_threaded",
]

#: Environment of a worker process, set before torch or onnxruntime is imported there.
WORKER_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_WAIT_POLICY": "PASSIVE",
}
#: Fewest files per worker process worth its start-up (spawn, import torch, load the model):
#: measured at 10-25 s per worker on the shared 2-core machine (load 12-15), where one
#: single-threaded process embeds ~14x real time (~4 clips/s): see docs/performance.md.
MIN_FILES_PER_WORKER = 500

Outcome = np.ndarray | str  # an embedding, or why the file could not be embedded


def auto_workers(n_files: int, cpus: int | None = None) -> int:
    """Worker processes for ``n_files``: one per CPU, but none that would idle.

    Example:
        >>> auto_workers(10, cpus=2), auto_workers(5000, cpus=2), auto_workers(5000, cpus=1)
        (1, 2, 1)
    """
    if cpus is None:
        affinity = getattr(os, "sched_getaffinity", None)
        cpus = len(affinity(0)) if affinity else (os.cpu_count() or 1)
    return max(1, min(cpus, n_files // MIN_FILES_PER_WORKER))


def single_threaded(frontend: Frontend) -> Frontend:
    """Set ``frontend`` (and its process) to one intra-op and one inter-op thread."""
    if hasattr(frontend, "num_threads"):
        frontend.num_threads = 1
    try:
        import torch

        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
    except (ImportError, RuntimeError):  # inter-op threads can be set once, before first use
        pass
    return frontend


def decode(path: str | Path, min_duration: float, max_duration: float) -> np.ndarray | str:
    """The 16 kHz waveform of one file, or why it cannot be used."""
    try:
        return load_audio(path, min_duration=min_duration, max_duration=max_duration)
    except SpeakerRPLError as exc:
        return f"{type(exc).__name__}: {exc}"


def embed_loaded(frontend: Frontend, loaded: Sequence[np.ndarray | str]) -> list[Outcome]:
    """Embed the waveforms of a batch, keeping decoding errors in place.

    A batch that fails is retried one waveform at a time, so one bad input cannot sink the rest.
    """
    good = [i for i, wave in enumerate(loaded) if not isinstance(wave, str)]
    waves = [loaded[i] for i in good]
    outcomes: list[Outcome] = list(loaded)
    if not waves:
        return outcomes
    try:
        rows: list[Outcome] = list(frontend.embed(waves))  # type: ignore[arg-type]
    except SpeakerRPLError:
        rows = []
        for wave in waves:
            try:
                rows.append(frontend.embed([wave])[0])  # type: ignore[list-item]
            except SpeakerRPLError as exc:
                rows.append(f"{type(exc).__name__}: {exc}")
    for index, row in zip(good, rows, strict=True):
        outcomes[index] = row
    return outcomes


def embed_files(
    frontend: Frontend, paths: Sequence[str | Path], min_duration: float, max_duration: float
) -> list[Outcome]:
    """Decode and embed files; one outcome per path (an embedding or an error message)."""
    return embed_loaded(frontend, [decode(p, min_duration, max_duration) for p in paths])


_WORKER: dict[str, Any] = {}


def _init_worker(blob: bytes) -> None:
    os.environ.update(WORKER_ENV)  # before the frontend (and torch) is unpickled
    _WORKER["frontend"] = single_threaded(pickle.loads(blob))


def _work(paths: list[str], min_duration: float, max_duration: float) -> list[Outcome]:
    return embed_files(_WORKER["frontend"], paths, min_duration, max_duration)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def embed_in_processes(
    frontend: Frontend,
    paths: Sequence[Path],
    batch_size: int,
    min_duration: float,
    max_duration: float,
    done: Callable[[int, list[Outcome]], None],
    *,
    workers: int,
) -> None:
    """Embed ``paths`` in ``workers`` single-threaded processes, each with a copy of the model.

    ``done(start, outcomes)`` is called in this process as each batch finishes (in completion
    order; ``start`` is the index in ``paths`` of the batch's first file), so the caller can
    cache every result as soon as it exists. At most two batches per worker are in flight.
    """
    blob = pickle.dumps(frontend)
    context = get_context("spawn")
    batches = list(enumerate(_chunks([str(p) for p in paths], batch_size)))
    with ProcessPoolExecutor(workers, context, _init_worker, (blob,)) as pool:
        queue = iter(batches)
        running: dict[Any, int] = {}

        def submit() -> None:
            for index, chunk in queue:
                future = pool.submit(_work, list(chunk), min_duration, max_duration)
                running[future] = index * batch_size
                return

        for _ in range(2 * workers):
            submit()
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                done(running.pop(future), future.result())
                submit()
