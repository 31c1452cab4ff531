"""Micro-batching: the clips of concurrent identify requests share one forward pass.

A request hands its decoded waves to :meth:`EmbeddingBatcher.submit` and waits on the returned
future. A worker thread takes the oldest waiting request, gathers what else is waiting (for at
most ``max_wait`` seconds after that request arrived, or until ``max_batch`` clips are waiting),
embeds them with **one** call of ``embed`` (the frontend then groups equal-length clips into
batched forward passes, see :func:`speakerrpl.frontends.base.embed_by_length`) and gives each
request its own rows. Under load the worker is busy while requests arrive, so batches fill
without waiting; a lone request waits at most ``max_wait``.

The queue is bounded: a request that would take it over ``max_queue`` clips is refused at once
with :class:`~speakerrpl.errors.ServiceBusyError` (503 + ``Retry-After``), so memory held by
waiting audio is bounded whatever the number of clients. When a batch's call raises, each of
its requests is embedded alone, so a bad clip fails only its own request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from speakerrpl.errors import InvalidInputError, ServiceBusyError

__all__ = ["EmbeddingBatcher"]

logger = logging.getLogger(__name__)

Embed = Callable[[Sequence[np.ndarray]], np.ndarray]


@dataclass
class _Job:
    waves: list[np.ndarray]
    future: Future[np.ndarray] = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)


class EmbeddingBatcher:
    """Embed the clips of concurrent requests together, in one worker thread.

    Args:
        embed: ``waves -> (N, D)`` rows in input order (e.g. :meth:`SpeakerEngine.embed`).
        max_batch: most clips gathered into one call (a request with more runs alone).
        max_wait: longest time in seconds the oldest waiting request waits for others.
        max_queue: most clips waiting; a request beyond it raises ``ServiceBusyError``.

    Example:
        >>> batcher = EmbeddingBatcher(lambda w: np.stack([x[:2] for x in w]), 8, 0.001, 16)
        >>> batcher.embed([np.ones(3), np.zeros(3)]).tolist()
        [[1.0, 1.0], [0.0, 0.0]]
        >>> batcher.calls
        1
    """

    def __init__(self, embed: Embed, max_batch: int, max_wait: float, max_queue: int) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait < 0:
            raise InvalidInputError(
                f"batcher needs max_batch >= 1, max_queue >= 1 and max_wait >= 0, got "
                f"{max_batch}, {max_queue}, {max_wait}"
            )
        self._embed, self.max_batch = embed, max_batch
        self.max_wait, self.max_queue = max_wait, max_queue
        self._jobs: deque[_Job] = deque()
        self._queued = 0  # clips waiting in _jobs
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        self.calls = 0  # calls of ``embed`` so far (batched ones and per-request retries)
        self.largest = 0  # most clips embedded by one call

    def submit(self, waves: Sequence[np.ndarray]) -> Future[np.ndarray]:
        """Queue one request's clips; the future resolves to their ``(len(waves), D)`` rows.

        Raises:
            InvalidInputError: no clips given.
            ServiceBusyError: the queue holds too many clips already.
        """
        if len(waves) == 0:
            raise InvalidInputError("no audio given: expected at least one clip")
        job = _Job(list(waves))
        with self._cond:
            if self._queued + len(job.waves) > self.max_queue:
                raise ServiceBusyError(
                    f"the embedding queue is full ({self._queued} clips waiting, at most "
                    f"{self.max_queue}); retry",
                    retry_after=1,
                )
            self._jobs.append(job)
            self._queued += len(job.waves)
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="embed-batcher", daemon=True)
                self._worker.start()
            self._cond.notify()
        return job.future

    def embed(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """:meth:`submit` and wait for the rows (raises what embedding them raised)."""
        return self.submit(waves).result()

    def _take(self) -> list[_Job]:
        """Wait for work, then gather the jobs of one call (the oldest first)."""
        with self._cond:
            while not self._jobs:
                self._cond.wait()
            deadline = self._jobs[0].arrived + self.max_wait
            while self._queued < self.max_batch and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            batch = [self._jobs.popleft()]
            size = len(batch[0].waves)
            while self._jobs and size + len(self._jobs[0].waves) <= self.max_batch:
                batch.append(self._jobs.popleft())
                size += len(batch[-1].waves)
            self._queued -= size
        return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            waves = [w for job in batch for w in job.waves]
            try:
                rows = self._call(waves)
            except Exception as exc:  # one bad clip: embed each request alone
                if len(batch) == 1:
                    batch[0].future.set_exception(exc)
                    continue
                logger.debug("a batch of %d requests failed (%s): each alone", len(batch), exc)
                for job in batch:
                    self._resolve_alone(job)
                continue
            start = 0
            for job in batch:
                job.future.set_result(rows[start : start + len(job.waves)])
                start += len(job.waves)

    def _resolve_alone(self, job: _Job) -> None:
        try:
            job.future.set_result(self._call(job.waves))
        except Exception as exc:  # the request's own error, raised where it waits
            job.future.set_exception(exc)

    def _call(self, waves: list[np.ndarray]) -> np.ndarray:
        self.calls += 1
        self.largest = max(self.largest, len(waves))
        rows = np.asarray(self._embed(waves))
        if rows.shape[0] != len(waves):
            raise RuntimeError(f"embed returned {rows.shape[0]} rows for {len(waves)} clips")
        return rows
