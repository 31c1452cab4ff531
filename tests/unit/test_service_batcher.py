"""The micro-batcher: concurrent requests share one embedding call, errors stay per request,
the queue is bounded; and through the app, batched answers equal the unbatched ones."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from service_toys import (
    KEY,
    BandFrontend,
    clips,
    engine,
    enrolled,
    one_torch_thread,
    tone,
    wav,
)

from speakerrpl.errors import InvalidInputError, ServiceBusyError
from speakerrpl.service.app import create_app
from speakerrpl.service.batcher import EmbeddingBatcher

__all__ = ["enrolled", "one_torch_thread"]  # fixtures used by name


class Gated:
    """``embed`` that records each call's size; the first call waits until ``release``."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.entered, self.gate = threading.Event(), threading.Event()

    def __call__(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        self.sizes.append(len(waves))
        self.entered.set()
        self.gate.wait(10)
        if any(w[0] < 0 for w in waves):
            raise InvalidInputError("a negative first sample (the test's bad clip)")
        return np.stack([w[:2] * 2 for w in waves])


def _wave(i: int) -> np.ndarray:
    """One second of the constant ``i``."""
    return np.full(16000, float(i), dtype=np.float32)


def _wait_queued(batcher: EmbeddingBatcher, clips: int) -> None:
    deadline = time.monotonic() + 10
    while batcher._queued < clips and time.monotonic() < deadline:
        time.sleep(0.001)


def test_waiting_requests_share_one_call_and_get_their_own_rows() -> None:
    embed = Gated()
    batcher = EmbeddingBatcher(embed, max_batch=16, max_wait=0.0, max_queue_seconds=64)
    first = batcher.submit([_wave(0)])
    assert embed.entered.wait(10)  # the worker is busy with the first request
    later = [batcher.submit([_wave(i), _wave(i + 100)]) for i in range(1, 8)]
    _wait_queued(batcher, 14)
    embed.gate.set()
    assert first.result(10).tolist() == [[0.0, 0.0]]
    for i, fut in enumerate(later, start=1):
        assert fut.result(10).tolist() == [[2.0 * i] * 2, [2.0 * (i + 100)] * 2]
    assert embed.sizes == [1, 14] and batcher.calls == 2 and batcher.largest == 14


def test_a_batch_takes_at_most_max_batch_clips() -> None:
    embed = Gated()
    batcher = EmbeddingBatcher(embed, max_batch=4, max_wait=0.0, max_queue_seconds=64)
    futures = [batcher.submit([_wave(0)])]
    assert embed.entered.wait(10)
    futures += [batcher.submit([_wave(i)] * 3) for i in range(1, 4)]  # 3 clips each
    futures.append(batcher.submit([_wave(9)] * 5))  # more than max_batch: runs alone
    _wait_queued(batcher, 14)
    embed.gate.set()
    for fut in futures:
        fut.result(10)
    assert embed.sizes == [1, 3, 3, 3, 5]


def test_one_bad_request_fails_alone() -> None:
    embed = Gated()
    batcher = EmbeddingBatcher(embed, max_batch=16, max_wait=0.0, max_queue_seconds=64)
    busy = batcher.submit([_wave(0)])
    assert embed.entered.wait(10)
    good = [batcher.submit([_wave(i)]) for i in (1, 2)]
    bad = batcher.submit([_wave(3), _wave(-1)])
    more = batcher.submit([_wave(4)])
    _wait_queued(batcher, 5)
    embed.gate.set()
    busy.result(10)
    with pytest.raises(InvalidInputError, match="bad clip"):
        bad.result(10)
    assert [f.result(10).tolist() for f in (*good, more)] == [[[2.0, 2.0]], [[4.0, 4.0]],
                                                               [[8.0, 8.0]]]  # fmt: skip
    assert embed.sizes == [1, 5, 1, 1, 2, 1]  # the failed batch, then each request alone


def test_a_full_queue_refuses_at_once() -> None:
    embed = Gated()
    batcher = EmbeddingBatcher(embed, max_batch=16, max_wait=0.0, max_queue_seconds=4)
    busy = batcher.submit([_wave(0)])
    assert embed.entered.wait(10)
    queued = batcher.submit([_wave(1)] * 3)
    with pytest.raises(ServiceBusyError, match="queue is full") as err:
        batcher.submit([_wave(2)] * 2)
    assert err.value.retry_after == 1
    fits = batcher.submit([_wave(3)])  # exactly up to the bound is fine
    embed.gate.set()
    for fut in (busy, queued, fits):
        fut.result(10)
    assert batcher.submit([_wave(4)] * 4).result(10).shape == (4, 2)  # drained: 4 s fit again
    with pytest.raises(InvalidInputError):
        batcher.submit([])


def test_workers_run_batches_side_by_side() -> None:
    both = threading.Barrier(2, timeout=10)  # each call returns only once two run at once

    def embed(waves: Sequence[np.ndarray]) -> np.ndarray:
        both.wait()
        return np.stack(waves)

    batcher = EmbeddingBatcher(embed, max_batch=1, max_wait=0.0, max_queue_seconds=8, workers=2)
    futures = [batcher.submit([_wave(i)]) for i in range(4)]
    assert [f.result(20)[0, 0] for f in futures] == [0.0, 1.0, 2.0, 3.0]
    assert batcher.calls == 4


def test_idle_workers_split_what_waits() -> None:
    sizes: list[int] = []

    def embed(waves: Sequence[np.ndarray]) -> np.ndarray:
        sizes.append(len(waves))
        return np.stack(waves)

    batcher = EmbeddingBatcher(embed, max_batch=8, max_wait=0.5, max_queue_seconds=8, workers=2)
    futures = [batcher.submit([_wave(i)]) for i in range(4)]  # both workers wait 0.5 s for more
    for fut in futures:
        fut.result(10)
    assert sum(sizes) == 4 and max(sizes) == 2  # never one call of 4 while the other idles


def test_a_lone_request_waits_at_most_max_wait() -> None:
    batcher = EmbeddingBatcher(lambda w: np.stack(w), 16, max_wait=0.05, max_queue_seconds=64)
    start = time.monotonic()
    batcher.embed([_wave(1)])
    assert 0.05 <= time.monotonic() - start < 2.0


# --- through the app ------------------------------------------------------------------------


class StrictBands(BandFrontend):
    """The toy frontend, refusing clips under 1 s (as CAM++ refuses too short ones)."""

    def embed(self, waves: list[np.ndarray]) -> np.ndarray:
        if any(w.size < 16000 for w in waves):
            raise InvalidInputError("a clip under 1 s cannot be embedded")
        return super().embed(waves)


def _app(path: Path, **settings: Any) -> tuple[TestClient, Any]:
    eng = engine(path, api_key=KEY, **settings)
    eng._frontend = StrictBands()
    return TestClient(create_app(eng), headers={"X-API-Key": KEY}), eng


def _requests() -> list[list[tuple[str, tuple[str, bytes, str]]]]:
    """Six requests of one or two clips (alice, bob, a stranger; unseen recordings)."""
    return [clips("alice", [7]), clips("bob", [8, 9]), clips("stranger", [1]),
            clips("bob", [10]), clips("alice", [11, 12]), clips("stranger", [2])]  # fmt: skip


def _post_all(c: TestClient, requests: list[Any]) -> list[Any]:
    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(lambda files: c.post("/identify", files=files), requests))


def test_concurrent_requests_are_batched_and_answer_as_alone(enrolled: Path) -> None:
    alone, eng1 = _app(enrolled, batch_max_clips=1)
    expected = [alone.post("/identify", files=f).json()["results"] for f in _requests()]
    assert eng1.batcher.calls == 6  # one call per request: the unbatched path
    c, eng = _app(enrolled, batch_max_clips=9, batch_wait_seconds=1.0)
    answers = _post_all(c, _requests())
    assert [a.status_code for a in answers] == [200] * 6
    assert eng.batcher.calls < 6 and eng.batcher.largest > 2  # 9 clips: 1-2 calls
    for got, want in zip((a.json()["results"] for a in answers), expected, strict=True):
        assert [r["speaker"] for r in got] == [r["speaker"] for r in want]
        assert [r["file"] for r in got] == [r["file"] for r in want]
        for a, b in zip(got, want, strict=True):
            assert sorted(a["scores"]) == sorted(b["scores"])
            np.testing.assert_allclose([a["score"], *(a["scores"][k] for k in sorted(a["scores"]))],
                                       [b["score"], *(b["scores"][k] for k in sorted(b["scores"]))],
                                       rtol=1e-5, atol=1e-6)  # fmt: skip
    assert [r["speaker"] for a in answers for r in a.json()["results"]] == [
        "alice", "bob", "bob", "<unknown>", "bob", "alice", "alice", "<unknown>"
    ]  # fmt: skip


def test_a_bad_clip_fails_only_its_request(enrolled: Path) -> None:
    c, eng = _app(enrolled, batch_max_clips=16, batch_wait_seconds=1.0, batch_workers=1)
    short = [("file", ("short.wav", wav(tone("alice", 5, seconds=0.8)), "audio/wav"))]
    requests = [*_requests()[:3], short]
    answers = _post_all(c, requests)
    assert [a.status_code for a in answers] == [200, 200, 200, 400]
    assert answers[3].json() == {"error": "InvalidInputError",
                                 "detail": "a clip under 1 s cannot be embedded"}  # fmt: skip
    assert [r["speaker"] for r in answers[1].json()["results"]] == ["bob", "bob"]
    assert eng.batcher.largest >= 3  # the bad clip was in a batch with others


def test_a_full_batch_queue_answers_503(enrolled: Path) -> None:
    c, eng = _app(enrolled, max_request_seconds=2, batch_queue_seconds=2, batch_workers=1)
    gate = threading.Event()
    real = eng.batcher._embed
    eng.batcher._embed = lambda waves: (gate.wait(10), real(waves))[1]
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(c.post, "/identify", files=clips("alice", [1, 2]))
        deadline = time.monotonic() + 10
        while eng.batcher.calls == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        second = pool.submit(c.post, "/identify", files=clips("bob", [1, 2]))  # queued: 2 s
        deadline = time.monotonic() + 10
        while eng.batcher._queued < 2 and time.monotonic() < deadline:
            time.sleep(0.001)
        r = c.post("/identify", files=clips("bob", [3]))
        gate.set()
        assert first.result(10).status_code == 200 and second.result(10).status_code == 200
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["error"] == "ServiceBusyError" and "queue is full" in r.json()["detail"]
