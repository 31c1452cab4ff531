"""The REST service started for real (uvicorn subprocess on a loopback port), driven over HTTP."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
from service_support import Server, upload

from speakerrpl.service.registry import SpeakerRegistry

pytest_plugins = ("service_support",)  # the shared fixtures


def _identify(client: httpx.Client, paths: list[Path]) -> list[dict]:
    r = client.post("/identify", files=upload(paths))
    assert r.status_code == 200, r.text
    return r.json()["results"]


def _enroll_while_identifying(server: Server, clips: dict) -> tuple[dict, list[tuple[float, dict]]]:
    """Enroll carol in a thread; identify alice's clip until it is done."""
    done: dict = {}

    def enroll() -> None:
        with server.client() as c:
            done["response"] = c.post("/speakers/carol/enrollments", files=upload(clips["carol"]))
        done["t"] = time.monotonic()

    worker = threading.Thread(target=enroll)
    worker.start()
    seen: list[tuple[float, dict]] = []
    with server.client() as c:
        while worker.is_alive():
            seen.append((time.monotonic(), _identify(c, clips["alice_test"])[0]))
            time.sleep(0.2)
    worker.join()
    return done, [(t, res) for t, res in seen if t < done["t"]]


def test_enroll_identify_remove_restart(tmp_path: Path, clips: dict, pool_file: Path) -> None:
    registry = tmp_path / "reg.db"
    server = Server(registry, pool_file).start()
    try:
        with server.client() as c, server.client(key=None) as anon:
            assert c.get("/speakers").json() == {"speakers": []}
            assert c.post("/identify", files=upload(clips["alice_test"])).status_code == 409
            r = anon.post("/speakers/alice/enrollments", files=upload(clips["alice"]))
            assert r.status_code == 401 and r.json()["error"] == "Unauthorized"
            for name in ("alice", "bob"):
                r = c.post(f"/speakers/{name}/enrollments", files=upload(clips[name]))
                assert r.status_code == 201, r.text
            before = c.get("/status").json()["model"]["version"]
            done, during = _enroll_while_identifying(server, clips)
            assert done["response"].status_code == 201, done["response"].text
            # identification went on during the refit with the previous committed model; an
            # answer that lands between the new model's commit and the enrollment's response
            # may carry the new version, but versions never go back
            new = done["response"].json()["model_version"]
            versions = [res["model_version"] for _, res in during]
            assert during and versions[0] == before and new != before
            assert versions == sorted(versions, key=[before, new].index)
            assert all(res["speaker"] == "alice" for _, res in during)

            names = [s["name"] for s in c.get("/speakers").json()["speakers"]]
            assert names == ["alice", "bob", "carol"]
            # voiceprints are private: without the key, nothing is listed or identified
            assert anon.get("/speakers").status_code == 401
            assert anon.post("/identify", files=upload(clips["alice_test"])).status_code == 401
            assert anon.get("/healthz").json() == {"status": "ok"}
            tests = clips["alice_test"] + clips["bob_test"] + clips["carol_test"]
            got = [res["speaker"] for res in _identify(c, tests)]
            assert got == ["alice"] + ["bob"] * len(clips["bob_test"]) + ["carol"]
            unknown = _identify(c, clips["unknown"])
            assert [res["speaker"] for res in unknown] == ["<unknown>"] * len(clips["unknown"])

            r = c.delete("/speakers/carol")
            assert r.status_code == 200 and r.json()["refit"] == "done"
            assert c.delete("/speakers/carol").status_code == 404
            assert _identify(c, clips["carol_test"])[0]["speaker"] != "carol"
            model = c.get("/status").json()["model"]
    finally:
        server.stop()
    assert SpeakerRegistry(registry).verify() == []

    server = Server(registry, pool_file).start()  # restart: the registry is intact
    try:
        with server.client() as c:
            speakers = c.get("/speakers").json()["speakers"]
            assert [(s["name"], s["n_enrollments"]) for s in speakers] == [("alice", 4), ("bob", 3)]
            assert c.get("/status").json()["model"] == model
            assert _identify(c, clips["bob_test"])[0]["speaker"] == "bob"
    finally:
        server.stop()
