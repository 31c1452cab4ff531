"""Speaker-management endpoints over a real loopback socket (uvicorn in a thread, tone voices):
verify, details and single clips, request thresholds, registry threshold, voiceprint
export/import, enrollment jobs, enrollment hygiene warnings, the typed OpenAPI, /ui."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from service_toys import KEY, BandFrontend, clips, decoded, one_torch_thread, pool  # noqa: F401

from live_server import LiveServer
from speakerrpl.service.app import create_app
from speakerrpl.service.engine import SpeakerEngine
from speakerrpl.service.settings import ServiceSettings


def engine(path: Path, **settings: object) -> SpeakerEngine:
    """Tone voices scored by the cosine method: every refit takes milliseconds."""
    s = ServiceSettings(method="cosine", far=0.2, min_enroll_speech=0, api_key=KEY, **settings)  # type: ignore[arg-type]
    return SpeakerEngine(path, s, frontend=BandFrontend(), pool=pool())


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    eng = engine(tmp_path_factory.mktemp("manage") / "r.db", public_identify=True)
    with LiveServer(create_app(eng)) as url:
        with httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=60) as c:
            for who in ("alice", "bob"):
                r = c.post(f"/speakers/{who}/enrollments", files=clips(who, range(3)))
                assert r.status_code == 201, r.text
        yield url, eng


def client(url: str, key: str | None = KEY) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"X-API-Key": key} if key else {}, timeout=60)


def test_every_new_endpoint_needs_the_key_and_ui_is_public(live) -> None:
    url, _ = live
    with client(url, None) as anon:
        for method, path in (("GET", "/speakers/alice"), ("GET", "/speakers/alice/enrollments"),
                             ("DELETE", "/speakers/alice/enrollments/1"), ("GET", "/threshold"),
                             ("PUT", "/threshold"), ("GET", "/speakers/alice/voiceprint"),
                             ("PUT", "/speakers/alice/voiceprint"), ("GET", "/jobs/x"),
                             ("POST", "/speakers/alice/enrollments/jobs")):  # fmt: skip
            r = anon.request(method, path)
            assert r.status_code == 401 and r.json()["error"] == "Unauthorized", (path, r.text)
        r = anon.post("/verify", data={"name": "alice"}, files=clips("alice", [7]))
        assert r.status_code == 401
        ui = anon.get("/ui")
        assert ui.status_code == 200 and "<title>speakerrpl" in ui.text
        assert "frame-ancestors 'none'" in ui.headers["content-security-policy"]


def test_verify_and_speaker_details(live) -> None:
    url, _ = live
    with client(url) as c:
        yes = c.post("/verify", data={"name": "alice"}, files=clips("alice", [9])).json()
        no = c.post("/verify", data={"name": "alice"}, files=clips("bob", [9])).json()
        assert yes["accepted"] and yes["confidence"] >= yes["threshold"]
        assert not no["accepted"] and no["confidence"] < no["threshold"]
        assert c.post("/verify", data={"name": "zoe"}, files=clips("bob", [9])).status_code == 404
        detail = c.get("/speakers/alice").json()
        assert detail["name"] == "alice" and detail["n_enrollments"] == 3
        assert [k["source"] for k in detail["clips"]] == ["alice0.wav", "alice1.wav", "alice2.wav"]
        assert "embedding" not in detail["clips"][0] and detail["created"] > 0
        assert c.get("/speakers/zoe").status_code == 404


def test_request_threshold_and_floor_on_identify(live) -> None:
    url, _ = live
    with client(url) as c, client(url, None) as anon:
        base = c.post("/identify", files=clips("alice", [11])).json()["results"][0]
        assert base["speaker"] == "alice" and "confidence" in base
        strict = anon.post("/identify", params={"min_confidence": base["score"] + 1},
                           files=clips("alice", [11])).json()["results"][0]  # fmt: skip
        assert strict["speaker"] == "<unknown>" and "score" not in strict  # redacted
        r = anon.post("/identify", params={"threshold": -100}, files=clips("alice", [11]))
        assert r.status_code == 403  # lowering the bar is for key holders
        loose = c.post("/identify", params={"threshold": -100},
                       files=clips("stranger", [1])).json()["results"][0]  # fmt: skip
        assert loose["speaker"] != "<unknown>" and loose["threshold"] == -100


def test_registry_threshold_get_put(live) -> None:
    url, _ = live
    with client(url) as c:
        before = c.get("/threshold").json()
        assert before["pinned"] is False and before["kind"] == "identifier"
        pinned = c.put("/threshold", json={"threshold": 1e6}).json()
        assert pinned["pinned"] and pinned["threshold"] == 1e6
        assert c.post("/identify", files=clips("alice", [3])).json()["results"][0]["speaker"] == (
            "<unknown>"
        )
        assert c.put("/threshold", json={"far": 2.0}).status_code == 422
        assert c.put("/threshold", json={"far": 0.05, "threshold": 1}).status_code == 400
        back = c.put("/threshold", json={"far": 0.05}).json()
        assert not back["pinned"] and back["far"] == 0.05 and back["threshold"] < 1e6


def test_clip_removal_commits_and_keeps_the_minimum(live) -> None:
    url, _ = live
    with client(url) as c:
        r = c.post("/speakers/carol/enrollments", files=clips("carol", range(3)))
        assert r.status_code == 201
        ids = [k["id"] for k in c.get("/speakers/carol/enrollments").json()["clips"]]
        out = c.delete(f"/speakers/carol/enrollments/{ids[0]}")
        assert out.status_code == 200 and out.json()["removed_clip"] == ids[0], out.text
        assert [k["id"] for k in c.get("/speakers/carol").json()["clips"]] == ids[1:]
        assert c.delete(f"/speakers/carol/enrollments/{ids[0]}").status_code == 404
        last = c.delete(f"/speakers/carol/enrollments/{ids[1]}")
        assert last.status_code == 400 and "remove the speaker instead" in last.json()["detail"]
        assert c.delete("/speakers/carol").status_code == 200


def test_voiceprint_export_import_roundtrip(live, tmp_path: Path) -> None:
    url, _ = live
    with client(url) as c:
        doc = c.get("/speakers/bob/voiceprint").json()
    assert doc["format"] == "speakerrpl-voiceprint" and doc["count"] == 3
    assert doc["frontend"] == "bands16" and doc["dim"] == 16
    assert len(base64.b64decode(doc["embeddings"])) == 3 * 16 * 4
    assert doc["copies"] is None  # a 16-d toy frontend: no identifier uses copies of it
    other = engine(tmp_path / "other.db")
    other.enroll("alice", [decoded("alice", s) for s in range(2)])
    with LiveServer(create_app(other)) as url2, client(url2) as c2:
        r = c2.put("/speakers/bob/voiceprint", json=doc)
        assert r.status_code == 201, r.text
        assert c2.get("/speakers/bob").json()["n_enrollments"] == 3
        got = c2.post("/identify", files=clips("bob", [21])).json()["results"][0]
        assert got["best_match"] == "bob"  # scored with the imported embeddings
        wrong = {**doc, "frontend": "campplus"}
        assert c2.put("/speakers/dave/voiceprint", json=wrong).status_code == 409
        short = {**doc, "count": 4}
        assert c2.put("/speakers/dave/voiceprint", json=short).status_code == 400
        assert c2.put("/speakers/dave/voiceprint", json={"format": "x"}).status_code == 422


def test_enrollment_job_202_then_done_or_failed(live) -> None:
    url, _ = live
    with client(url) as c:
        r = c.post("/speakers/dan/enrollments/jobs", files=clips("carol", range(4, 7)))
        assert r.status_code == 202 and r.headers["location"] == f"/jobs/{r.json()['job_id']}"
        state = r.json()
        for _ in range(200):
            state = c.get(state["status_url"]).json()
            if state["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
        assert state["status"] == "done" and "dan" in state["result"]["speakers"]
        bad = c.post("/speakers/eve/enrollments/jobs", files=clips("carol", [30])).json()
        for _ in range(200):
            bad = c.get(bad["status_url"]).json()
            if bad["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
        assert bad["status"] == "failed" and bad["status_code"] == 400
        assert (
            bad["error"]["error"] == "InvalidInputError" and "at least 2" in bad["error"]["detail"]
        )
        assert c.get("/jobs/nope").status_code == 404
        assert c.delete("/speakers/dan").status_code == 200


def test_enrollment_warnings_duplicate_and_other_speaker(live) -> None:
    url, _ = live
    with client(url) as c:
        again = c.post("/speakers/alice/enrollments", files=clips("alice", [0, 5]))
        codes = [w["code"] for w in again.json()["warnings"]]
        assert again.status_code == 201 and codes == ["duplicate"], again.text
        mixed = c.post("/speakers/frank/enrollments",
                       files=clips("carol", [40, 41]) + clips("bob", [42]))  # fmt: skip
        warned = [(w["clip"], w["other"]) for w in mixed.json()["warnings"]]
        assert ("bob42.wav", "bob") in warned and all(w[0] != "carol40.wav" for w in warned)
        assert c.delete("/speakers/frank").status_code == 200


def test_openapi_is_typed(live) -> None:
    url, _ = live
    spec = httpx.get(url + "/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for model in ("VerifyResult", "SpeakerDetail", "ThresholdInfo", "Voiceprint", "JobState",
                  "ChangeResult", "ErrorBody"):  # fmt: skip
        assert model in schemas, model
    verify = spec["paths"]["/verify"]["post"]
    assert verify["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "VerifyResult"
    )
    assert verify["responses"]["401"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ErrorBody"
    )
    assert {"ApiKey", "Bearer"} <= set(spec["components"]["securitySchemes"])
    assert "wav" not in str(spec["paths"].get("/ui", ""))


def test_identify_partial_reports_a_bad_clip_in_its_row(live) -> None:
    url, _ = live
    broken = [("file", ("broken.wav", b"RIFF" + b"\x00" * 40, "audio/wav"))]
    files = clips("alice", [12]) + broken + clips("bob", [12])
    with client(url) as c:
        assert c.post("/identify", files=files).status_code == 422  # default: all or nothing
        r = c.post("/identify", params={"partial": "true"}, files=files)
        assert r.status_code == 200, r.text
        alice, bad, bob = r.json()["results"]
        whole = c.post("/identify", files=clips("alice", [12]) + clips("bob", [12])).json()
    assert [alice, bob] == whole["results"]  # the good clips as if sent alone
    assert alice["speaker"] == "alice" and bob["file"] == "bob12.wav"
    assert bad["file"] == "broken.wav" and bad["speaker"] is None
    assert bad["error"]["error"].startswith("Audio")
