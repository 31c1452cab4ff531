"""The background job queue behind ``202`` enrollments."""

from __future__ import annotations

import threading

import pytest

from speakerrpl.errors import InvalidInputError, SpeakerNotFoundError
from speakerrpl.service.jobs import JobQueue


def body(exc):  # type: ignore[no-untyped-def]
    return 404, {"error": type(exc).__name__, "detail": str(exc)}


def test_jobs_run_in_order_and_report_results_and_errors() -> None:
    q = JobQueue(body)
    order: list[int] = []
    gate = threading.Event()
    first = q.submit("enroll", lambda: (gate.wait(5), order.append(1), {"ok": 1})[-1])
    second = q.submit("enroll", lambda: order.append(2))

    def missing() -> None:
        raise SpeakerNotFoundError("no enrolled speaker named 'x'")

    third = q.submit("enroll", missing)
    assert q.get(second["job_id"])["status"] == "queued"  # the first one holds the worker
    gate.set()
    assert q.wait(first, 5)["result"] == {"ok": 1}
    failed = q.wait(third, 5)
    assert order == [1, 2]
    assert failed["status"] == "failed" and failed["status_code"] == 404
    assert failed["error"] == {"error": "SpeakerNotFoundError",
                               "detail": "no enrolled speaker named 'x'"}  # fmt: skip
    assert failed["finished"] >= failed["created"] and q.get("nope") is None
    q.close()


def test_bugs_fail_the_job_not_the_worker_and_the_queue_is_bounded() -> None:
    q = JobQueue(body, keep=2, max_pending=1)
    bug = q.wait(q.submit("x", lambda: 1 / 0), 5)
    assert bug["status_code"] == 500 and bug["error"]["detail"] == "ZeroDivisionError"
    gate = threading.Event()
    held = q.submit("x", lambda: gate.wait(5))
    with pytest.raises(InvalidInputError, match="pending"):
        q.submit("x", lambda: None)
    gate.set()
    q.wait(held, 5)
    for _ in range(3):
        q.wait(q.submit("x", lambda: None), 5)
    assert q.get(bug["job_id"]) is None  # only the last `keep` finished jobs are remembered
    q.close()
