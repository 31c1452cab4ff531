"""Bad requests get a 4xx with a JSON body, never a 500, and never lose a speaker."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from service_support import API_KEY, Server, copy_registry

from speakerrpl.service.registry import SpeakerRegistry

LIMIT = 400_000
ENROLLED = ("alice", "bob")

pytest_plugins = ("service_support",)  # the shared fixtures


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, base_registry: Path, pool_file: Path
) -> Iterator[Server]:
    registry = copy_registry(base_registry, tmp_path_factory.mktemp("robust") / "reg.db")
    env = {"SPEAKERRPL_MAX_UPLOAD_BYTES": str(LIMIT), "SPEAKERRPL_MAX_CLIP_SECONDS": "8",
           "SPEAKERRPL_BODY_TIMEOUT": "2"}  # fmt: skip
    server = Server(registry, pool_file, extra_env=env).start()
    yield server
    server.stop()
    assert API_KEY not in server.log.read_text()
    assert "Traceback" not in server.log.read_text()
    assert SpeakerRegistry(registry).verify() == []


def _wav(seconds: float, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    sf.write(buf, 0.1 * rng.standard_normal(int(seconds * rate)), rate, format="WAV")
    return buf.getvalue()


def _names(client: httpx.Client) -> list[str]:
    return [s["name"] for s in client.get("/speakers").json()["speakers"]]


def test_auth_limits_and_error_bodies(live: Server) -> None:
    wav = ("file", ("x.wav", b"RIFF\x00\x00\x00\x00WAVEjunk", "audio/wav"))
    with (
        live.client(key="wrong-key-000000") as bad,
        live.client(key=None) as anon,
        live.client() as c,
    ):
        assert bad.get("/speakers").status_code == 401
        assert anon.post("/identify", files=[wav]).status_code == 401  # keyed identify
        assert bad.delete("/speakers/alice").status_code == 401
        assert c.post("/identify", files=[wav]).status_code == 422  # corrupt audio
        assert c.post("/identify", files=[("file", ("e.wav", b"", "audio/wav"))]).status_code == 422
        assert c.post("/identify").status_code == 422  # no file field
        long = c.post("/identify", files=[("file", ("l.wav", _wav(10.0), "audio/wav"))])
        assert long.status_code == 413 and long.json()["error"] == "AudioTooLongError"
        big = c.post("/identify", files=[("file", ("b.wav", b"\x00" * (LIMIT + 1), "audio/wav"))])
        assert big.status_code == 413 and big.json()["error"] == "PayloadTooLarge"
        r = c.post("/speakers/bad%3Bname/enrollments", files=[wav])
        assert r.status_code == 400 and r.json()["error"] == "InvalidSpeakerNameError"
        r = c.post(
            "/speakers/carol/enrollments", files=[("file", ("c.wav", _wav(2.0), "audio/wav"))]
        )
        assert r.status_code == 400 and "utterance" in r.json()["detail"]  # 2 clips needed
        assert c.delete("/speakers/nobody").status_code == 404
        assert c.get("/docs").status_code == 200
        assert "/identify" in c.get("/openapi.json").json()["paths"]
        assert _names(c) == list(ENROLLED)


def test_stalled_upload_times_out(live: Server) -> None:
    """A client that announces a body and stops sending is cut off (408), holding nothing."""
    import socket
    import time

    with socket.create_connection(("127.0.0.1", live.port), timeout=10) as s:
        start = time.monotonic()
        s.sendall(b"POST /identify HTTP/1.1\r\nHost: x\r\nX-API-Key: " + API_KEY.encode()
                  + b"\r\nContent-Type: multipart/form-data; boundary=zz\r\n"
                  + b"Content-Length: 300000\r\n\r\n--zz\r\n")  # fmt: skip
        answer = s.recv(4096)
        waited = time.monotonic() - start
        while chunk := s.recv(4096):  # the server closes the connection after the answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408") and b"RequestTimeout" in answer
    assert 1.5 < waited < 10


_path_name = st.one_of(
    st.sampled_from(["carol", "", " ", "..", "../x", "a/b", "<unknown>", "x" * 70, "%00", "ALICE"]),
    st.text(max_size=80),
).filter(lambda n: n.casefold() not in ENROLLED)
_name_path = _path_name.map(lambda n: quote(n, safe=""))
_request = st.one_of(
    _name_path.map(lambda n: ("POST", f"/speakers/{n}/enrollments")),
    _name_path.map(lambda n: ("POST", f"/speakers/{n}/enrollments")),
    _name_path.map(lambda n: ("DELETE", f"/speakers/{n}")),
    st.just(("POST", "/identify")),
    st.just(("POST", "/identify")),
    st.tuples(st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH"]), st.one_of(
        st.sampled_from(["/identify", "/speakers", "/healthz", "/speakers/", "/identify/x"]),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz/%._-0123456789", max_size=30).map(
            lambda p: "/" + p),
    )),
)  # fmt: skip
_bytes = st.one_of(
    st.binary(max_size=2000),
    st.just(b""),
    st.integers(1, 60_000).map(lambda n: _wav(3.0)[:n]),  # truncated real WAV
    st.sampled_from([_wav(0.05), _wav(9.0), b"RIFF" + b"\xff" * 40, b"fLaC" + b"\x00" * 50]),
)
_file = st.tuples(
    st.sampled_from(["file", "file", "files", "", "fïle"]),
    st.text(max_size=20),
    _bytes,
    st.sampled_from(["audio/wav", "application/octet-stream", "text/plain", "", "audio/flac"]),
)
_headers = st.fixed_dictionaries(
    {"X-API-Key": st.sampled_from([API_KEY] * 6 + ["wrong", "", API_KEY + "x", "0" * 40])},
    optional={
        "Content-Type": st.sampled_from(["multipart/form-data", "multipart/form-data; boundary=",
                                         "application/json", "multipart/form-data; boundary=zz"]),
    },
)  # fmt: skip


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    request=_request,
    files=st.lists(_file, min_size=1, max_size=3) | st.just([]),
    raw=st.one_of(st.none(), st.none(), st.none(), st.binary(max_size=500)),
    headers=_headers,
)
def test_fuzz_never_500_never_loses_a_speaker(
    live: Server, request: tuple[str, str], files: list, raw: bytes | None, headers: dict
) -> None:
    method, path = request
    with httpx.Client(base_url=live.url, timeout=120) as c:
        multipart = [(f, (n, b, t)) for f, n, b, t in files] if files and raw is None else None
        if multipart and "Content-Type" in headers:
            headers = {k: v for k, v in headers.items() if k != "Content-Type"}
        r = c.request(method, path, files=multipart, content=raw if not multipart else None,
                      headers=headers)  # fmt: skip
        assert r.status_code < 500, (r.status_code, r.text)
        if r.status_code >= 400:
            assert "error" in r.json()
        event(f"{method} {r.status_code}")
    with live.client() as c:
        assert set(ENROLLED) <= set(_names(c))
