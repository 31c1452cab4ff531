"""Background jobs of the REST service: an enrollment answered with ``202`` and a job id.

A client that enrolls over a slow link should not hold its connection through a refit.
:class:`JobQueue` runs submitted work in one worker thread (registry writes are serialised by the
engine anyway), in submission order, and keeps the state of the last ``keep`` jobs for
``GET /jobs/{id}``: ``queued``, ``running``, ``done`` (with the result) or ``failed`` (with the
error body the synchronous endpoint would have answered). Jobs live in memory: a restart forgets
them, but never half-applies one (each enrollment is one registry commit).
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from speakerrpl.errors import InvalidInputError, SpeakerRPLError

__all__ = ["JobQueue"]

logger = logging.getLogger(__name__)


class JobQueue:
    """Run callables one at a time in a worker thread and remember how they ended.

    Args:
        error_body: turns a library error into ``(status_code, body)`` for a failed job.
        keep: how many finished jobs are remembered (oldest forgotten first).
        max_pending: most queued jobs; more raise :class:`InvalidInputError` (HTTP 400 / 503).

    Example:
        >>> q = JobQueue(lambda exc: (400, {"error": type(exc).__name__, "detail": str(exc)}))
        >>> job = q.submit("add", lambda: 1 + 1)
        >>> q.wait(job, timeout=5)["result"]
        2
        >>> q.close()
    """

    def __init__(
        self,
        error_body: Callable[[SpeakerRPLError], tuple[int, dict[str, Any]]],
        keep: int = 200,
        max_pending: int = 32,
    ) -> None:
        self._error_body = error_body
        self._keep = keep
        self._max_pending = max_pending
        self._jobs: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._queue: queue.Queue[tuple[str, Callable[[], Any]] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="speakerrpl-jobs", daemon=True)
        self._worker.start()

    def submit(self, kind: str, work: Callable[[], Any]) -> dict[str, Any]:
        """Queue ``work`` (no arguments); returns the job's public state (with ``job_id``)."""
        with self._lock:
            pending = sum(j["status"] in ("queued", "running") for j in self._jobs.values())
            if pending >= self._max_pending:
                raise InvalidInputError(f"{pending} jobs are pending; try again later")
            job_id = secrets.token_hex(8)
            self._jobs[job_id] = {"job_id": job_id, "kind": kind, "status": "queued",
                                  "created": time.time(), "finished": None}  # fmt: skip
            self._forget_old()
            state = dict(self._jobs[job_id])
        self._queue.put((job_id, work))
        return state

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The job's state, or ``None`` when unknown (never existed or forgotten)."""
        with self._lock:
            job = self._jobs.get(job_id)
            return dict(job) if job is not None else None

    def wait(self, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Block until the job finished (or ``timeout`` seconds); returns its state."""
        deadline = time.monotonic() + timeout
        with self._done:
            while self._jobs[job["job_id"]]["status"] in ("queued", "running"):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._done.wait(left)
            return dict(self._jobs[job["job_id"]])

    def close(self) -> None:
        """Stop the worker after the queued jobs."""
        self._queue.put(None)
        self._worker.join(timeout=60)

    def _forget_old(self) -> None:
        finished = [k for k, j in self._jobs.items() if j["status"] in ("done", "failed")]
        for k in finished[: max(0, len(self._jobs) - self._keep)]:
            del self._jobs[k]

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            job_id, work = item
            self._set(job_id, status="running", started=time.time())
            try:
                result = work()
            except SpeakerRPLError as exc:
                code, body = self._error_body(exc)
                self._set(job_id, status="failed", status_code=code, error=body)
            except Exception as exc:  # a bug: report it, keep the worker alive
                logger.exception("job %s failed", job_id)
                error = {"error": "InternalError", "detail": type(exc).__name__}
                self._set(job_id, status="failed", status_code=500, error=error)
            else:
                self._set(job_id, status="done", result=result)

    def _set(self, job_id: str, **changes: Any) -> None:
        with self._done:
            job = self._jobs.get(job_id)
            if job is None:
                return
            job.update(changes)
            if changes.get("status") in ("done", "failed"):
                job["finished"] = time.time()
                self._done.notify_all()
