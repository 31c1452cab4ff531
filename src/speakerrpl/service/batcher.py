"""Micro-batching: the clips of concurrent identify requests share one forward pass.

A request hands its decoded waves to :meth:`EmbeddingBatcher.submit` and waits on the returned
future. A worker thread (``workers`` of them, one per core to fill) takes the oldest waiting
request, gathers what else is waiting (for at most ``max_wait`` seconds after that request
arrived, or until ``max_batch`` clips are waiting; at most its share when other workers are
idle too, so no core idles while another works through a large batch), embeds them with
**one** call of ``embed`` (the frontend then groups equal-length clips into batched forward
passes, see :func:`speakerrpl.frontends.base.embed_by_length`) and gives each request its own
rows. Under load the workers are busy while requests arrive, so batches fill without waiting;
a lone request waits at most ``max_wait``.

The queue is bounded: a request that would take it over ``max_queue_seconds`` of audio is
refused at once with :class:`~speakerrpl.errors.ServiceBusyError` (503 + ``Retry-After``), so
the decoded audio waiting (64 KB per second at 16 kHz float32) is bounded whatever the number
of clients. When a batch's call raises, each of its requests is embedded alone, so a bad clip
fails only its own request.
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

SAMPLE_RATE = 16_000  # of the waves handed in (the frontends' rate)
Embed = Callable[[Sequence[np.ndarray]], np.ndarray]


@dataclass
class _Job:
    waves: list[np.ndarray]
    future: Future[np.ndarray] = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)

    @property
    def samples(self) -> int:
        return sum(int(w.size) for w in self.waves)


class EmbeddingBatcher:
    """Embed the clips of concurrent requests together, in ``workers`` threads.

    Args:
        embed: ``waves -> (N, D)`` rows in input order (e.g. :meth:`SpeakerEngine.embed`);
            called from up to ``workers`` threads at once.
        max_batch: most clips gathered into one call (a request with more runs alone).
        max_wait: longest time in seconds the oldest waiting request waits for others.
        max_queue_seconds: most audio waiting (16 kHz samples / 16,000); a request that would
            go beyond it raises ``ServiceBusyError``.
        workers: threads taking batches (started on the first request).

    Example:
        >>> batcher = EmbeddingBatcher(lambda w: np.stack([x[:2] for x in w]), 8, 0.001, 1.0)
        >>> batcher.embed([np.ones(3), np.zeros(3)]).tolist()
        [[1.0, 1.0], [0.0, 0.0]]
        >>> batcher.calls
        1
    """

    def __init__(
        self,
        embed: Embed,
        max_batch: int,
        max_wait: float,
        max_queue_seconds: float,
        workers: int = 1,
    ) -> None:
        if max_batch < 1 or workers < 1 or not (max_queue_seconds > 0 and max_wait >= 0):
            raise InvalidInputError(
                f"batcher needs max_batch, workers >= 1, max_queue_seconds > 0 and max_wait "
                f">= 0, got {max_batch}, {workers}, {max_queue_seconds}, {max_wait}"
            )
        self.workers = workers
        self._embed, self.max_batch = embed, max_batch
        self.max_wait, self._max_samples = max_wait, max_queue_seconds * SAMPLE_RATE
        self._jobs: deque[_Job] = deque()
        self._queued = 0  # clips waiting in _jobs
        self._queued_samples = 0  # their samples
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # workers waiting in _take
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
            if self._queued_samples + job.samples > self._max_samples:
                raise ServiceBusyError(
                    f"the embedding queue is full ({self._queued_samples / SAMPLE_RATE:.1f} s "
                    f"of audio waiting, at most {self._max_samples / SAMPLE_RATE:g} s); retry",
                    retry_after=1,
                )
            self._jobs.append(job)
            self._queued += len(job.waves)
            self._queued_samples += job.samples
            if not self._threads:
                for i in range(self.workers):
                    name = f"embed-batcher-{i}"
                    self._threads.append(threading.Thread(target=self._run, name=name, daemon=True))
                    self._threads[-1].start()
            self._cond.notify()
        return job.future

    def embed(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """:meth:`submit` and wait for the rows (raises what embedding them raised)."""
        return self.submit(waves).result()

    def _take(self) -> list[_Job]:
        """Wait for work, then gather the jobs of one call (the oldest first).

        A worker takes at most its share of the waiting clips (split over the idle workers),
        so no core idles while another works through one large batch.
        """
        with self._cond:
            self._idle += 1
            while True:
                while not self._jobs:
                    self._cond.wait()
                deadline = self._jobs[0].arrived + self.max_wait
                while (
                    self._jobs
                    and self._queued < self.max_batch
                    and (left := deadline - time.monotonic()) > 0
                ):
                    self._cond.wait(left)
                if self._jobs:  # another worker may have taken them meanwhile
                    break
            share = min(self.max_batch, -(-self._queued // self._idle))
            self._idle -= 1
            batch = [self._jobs.popleft()]
            size = len(batch[0].waves)
            while self._jobs and size + len(self._jobs[0].waves) <= share:
                batch.append(self._jobs.popleft())
                size += len(batch[-1].waves)
            self._queued -= size
            self._queued_samples -= sum(job.samples for job in batch)
            if self._jobs:
                self._cond.notify()  # clips still wait: wake another worker
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
        with self._cond:
            self.calls += 1
            self.largest = max(self.largest, len(waves))
        rows = np.asarray(self._embed(waves))
        if rows.shape[0] != len(waves):
            raise RuntimeError(f"embed returned {rows.shape[0]} rows for {len(waves)} clips")
        return rows
