"""The REST app in-process (TestClient): the access rule, redaction, limits, OpenAPI."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from service_toys import KEY, clips, engine, enrolled, one_torch_thread, tone, wav

from speakerrpl.service.app import create_app
from speakerrpl.service.engine import SpeakerEngine

__all__ = ["enrolled", "one_torch_thread"]  # fixtures used by name


def _client(path: Path, **settings: Any) -> tuple[TestClient, SpeakerEngine]:
    eng = engine(path, **settings)
    return TestClient(create_app(eng)), eng


KEYS: dict[str, dict[str, Any]] = {
    "none": {},
    "wrong": {"X-API-Key": "wrong-key-0000"},
    "key": {"X-API-Key": KEY},
    "bearer": {"Authorization": f"Bearer {KEY}"},
    "latin1": {"X-API-Key": "clé-wrong-000".encode()},  # non-ASCII bytes on the wire
}
ROUTES = {
    "healthz": ("GET", "/healthz", None),
    "status": ("GET", "/status", None),
    "list": ("GET", "/speakers", None),
    "identify": ("POST", "/identify", "alice"),
    "enroll": ("POST", "/speakers/alice/enrollments", "alice"),
    "remove": ("DELETE", "/speakers/nobody", None),
    "refit": ("POST", "/refit", None),
}
# the auth matrix of docs/service.md: (key configured?, public_identify?) -> route -> status
# for a caller without the key; a key holder always passes (201/200/404 by route).
ANON = {
    (True, False): {"healthz": 200, "status": 401, "list": 401, "identify": 401, "enroll": 401,
                    "remove": 401, "refit": 401},
    (True, True): {"healthz": 200, "status": 401, "list": 401, "identify": 200, "enroll": 401,
                   "remove": 401, "refit": 401},
    (False, False): {"healthz": 200, "status": 200, "list": 200, "identify": 200, "enroll": 403,
                     "remove": 403, "refit": 403},
}  # fmt: skip
HOLDER = {"healthz": 200, "status": 200, "list": 200, "identify": 200, "enroll": 200,
          "remove": 404, "refit": 200}  # fmt: skip


def _call(c: TestClient, route: str, headers: dict[str, str]) -> Any:
    method, path, who = ROUTES[route]
    files = clips(who, [0, 1]) if who else None  # alice's enrolled clips: a no-op enrollment
    return c.request(method, path, files=files, headers=headers)


@pytest.mark.parametrize(("configured", "public"), list(ANON))
def test_auth_matrix(enrolled: Path, tmp_path: Path, configured: bool, public: bool) -> None:
    from service_support_copy import copy_registry

    path = copy_registry(enrolled, tmp_path / "reg.db")
    c, _ = _client(path, api_key=KEY if configured else None, public_identify=public)
    for route, expected in ANON[(configured, public)].items():
        for who in ("none", "wrong", "latin1") + (() if configured else ("key",)):
            r = _call(c, route, KEYS[who])
            assert r.status_code == expected, (route, who, r.text)
            if expected >= 400:
                assert r.json()["error"] in ("Unauthorized", "Forbidden")
    if configured:
        for who in ("key", "bearer"):
            for route, expected in HOLDER.items():
                assert _call(c, route, KEYS[who]).status_code == expected, (route, who)


def test_rejections_reveal_nothing_without_the_key(enrolled: Path, tmp_path: Path) -> None:
    from service_support_copy import copy_registry

    path = copy_registry(enrolled, tmp_path / "reg.db")
    c, _ = _client(path, api_key=KEY, public_identify=True)
    files = clips("stranger", [7]) + clips("alice", [9])
    anon = c.post("/identify", files=files).json()["results"]
    assert anon[0] == {"speaker": "<unknown>", "model_version": anon[0]["model_version"],
                       "file": "stranger7.wav"}  # fmt: skip
    assert anon[1]["speaker"] == "alice" and set(anon[1]) == {"speaker", "score", "model_version",
                                                               "file"}  # fmt: skip
    full = c.post("/identify", files=files, headers=KEYS["key"]).json()["results"]
    assert full[0]["speaker"] == "<unknown>" and set(full[0]["scores"]) == {"alice", "bob"}
    assert full[0]["best_match"] in ("alice", "bob")


def test_healthz_reveals_nothing_and_answers_head(enrolled: Path) -> None:
    c, _ = _client(enrolled, api_key=KEY)
    assert c.get("/healthz").json() == {"status": "ok"}
    head = c.head("/healthz")
    assert head.status_code == 200 and head.content == b""
    status = c.get("/status", headers=KEYS["key"]).json()
    assert status["speakers"] == 2 and status["model"]["kind"] == "identifier"
    assert "reg.db" not in c.get("/status", headers=KEYS["key"]).text


def test_openapi_lists_errors_and_the_key_scheme(enrolled: Path) -> None:
    c, _ = _client(enrolled, api_key=KEY)
    spec = c.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                 "description": "the server's API key"}  # fmt: skip
    assert schemes["Bearer"]["scheme"] == "bearer"
    op = spec["paths"]["/identify"]["post"]
    for code in ("400", "401", "403", "404", "409", "413", "422", "503"):
        ref = op["responses"][code]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ErrorBody"), code
    assert {"ApiKey": []} in op["security"]
    assert "security" not in spec["paths"]["/healthz"]["get"]


def test_hostile_headers_are_refused_before_decoding(enrolled: Path) -> None:
    c, _ = _client(enrolled, api_key=KEY, max_request_seconds=2.5)
    h = KEYS["key"]
    bomb = wav(np.zeros((int(0.2 * 655_350), 8), "f4"), 655_350, "FLAC")  # 8 ch x 655,350 Hz
    r = c.post("/identify", files=[("file", ("bomb.flac", bomb, "audio/flac"))], headers=h)
    assert r.status_code == 413 and r.json()["error"] == "AudioTooLargeError"
    assert "655350 Hz" in r.json()["detail"]
    r = c.post("/identify", files=clips("alice", [20, 21, 22]), headers=h)  # 3 x 1 s > 2.5 s
    assert r.status_code == 413 and "in one request" in r.json()["detail"]


def test_busy_slots_answer_503_with_retry_after(enrolled: Path) -> None:
    c, eng = _client(enrolled, api_key=KEY, inference_slots=1, slot_wait_seconds=0.0)
    with eng.work_slot():  # another request holds the only slot
        r = c.post("/identify", files=clips("alice", [5]), headers=KEYS["key"])
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["error"] == "ServiceBusyError"
    assert c.post("/identify", files=clips("alice", [5]), headers=KEYS["key"]).status_code == 200


def test_upload_cap_is_enforced_while_streaming(enrolled: Path) -> None:
    c, _ = _client(enrolled, api_key=KEY, max_upload_bytes=50_000)

    def chunks() -> Iterator[bytes]:  # no Content-Length: only counting can stop it
        for _ in range(100):
            yield b"x" * 10_000

    r = c.post("/identify", content=chunks(), headers={**KEYS["key"], "content-type": "x/y"})
    assert r.status_code == 413 and r.json()["error"] == "PayloadTooLarge"


def test_enrollment_retry_is_idempotent(enrolled: Path, tmp_path: Path) -> None:
    from service_support_copy import copy_registry

    path = copy_registry(enrolled, tmp_path / "reg.db")
    c, eng = _client(path, api_key=KEY)
    first = c.post("/speakers/carol/enrollments", files=clips("carol", [0, 1]), headers=KEYS["key"])
    again = c.post("/speakers/carol/enrollments", files=clips("carol", [0, 1]), headers=KEYS["key"])
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["duplicates"] == 2
    assert again.json()["model_version"] == first.json()["model_version"]  # no refit
    assert {s["name"]: s["n_enrollments"] for s in eng.speakers()}["carol"] == 2
    r = c.post("/speakers/dave/enrollments", files=clips("carol", [0, 5]), headers=KEYS["key"])
    assert r.status_code == 400 and "another speaker" in r.json()["detail"]


def test_one_model_load_per_version_from_memory(
    enrolled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    from service_support_copy import copy_registry

    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))  # model data must never land here
    path = copy_registry(enrolled, tmp_path / "reg.db")
    eng = engine(path)
    waves = [tone("alice", 30)]
    start = threading.Barrier(12)

    def client() -> None:
        start.wait()
        assert eng.identify(waves)[0]["speaker"] == "alice"

    for version in (1, 2):  # 12 concurrent identifications per committed version
        threads = [threading.Thread(target=client) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert eng.loads == version
        if version == 1:
            eng.enroll("carol", [tone("carol", s) for s in (0, 1)])
    assert list(spool.iterdir()) == []


def test_bodies_held_by_all_requests_are_capped() -> None:
    """The in-flight budget: a second upload beyond it is answered 503 while the first is
    held; once the first is answered its bytes are released."""
    import asyncio

    from speakerrpl.service.app import BodyLimitMiddleware

    release = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:  # holds its request
        await receive()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    limited = BodyLimitMiddleware(app, limit=6_000, timeout=5.0, budget=10_000)

    async def request(size: int) -> int:
        sent: list[dict[str, Any]] = []
        body = [{"type": "http.request", "body": b"x" * size, "more_body": False}]

        async def receive() -> dict[str, Any]:
            return body.pop() if body else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await limited({"type": "http", "headers": []}, receive, send)
        return int(sent[0]["status"])

    async def scenario() -> tuple[int, int, int]:
        first = asyncio.create_task(request(6_000))
        await asyncio.sleep(0.05)
        second = await request(6_000)  # 12,000 > 10,000 held
        release.set()
        answered = await first
        third = await request(6_000)  # the first was answered: its bytes are free again
        return answered, second, third

    assert asyncio.run(scenario()) == (200, 503, 200)
    assert limited.inflight == 0
