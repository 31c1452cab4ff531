"""``POST /diarize`` through FastAPI's TestClient, on real recordings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("onnxruntime")
pytest_plugins = ("service_support", "diarize_support")


def _client(registry: Path, pool_file: Path):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient
    from service_support import FAST_PARAMS

    from speakerrpl.service.app import create_app
    from speakerrpl.service.engine import SpeakerEngine
    from speakerrpl.service.settings import ServiceSettings

    settings = ServiceSettings(identifier_params=json.loads(FAST_PARAMS), pool_path=str(pool_file))
    return TestClient(create_app(SpeakerEngine(registry, settings)))


def test_diarize_names_enrolled_speakers(
    tmp_path: Path, base_registry: Path, pool_file: Path, dialogue: tuple[Path, list]
) -> None:
    from service_support import copy_registry

    client = _client(copy_registry(base_registry, tmp_path / "r.db"), pool_file)
    path, _ = dialogue
    answer = client.post("/diarize", files={"file": ("talk.wav", path.read_bytes(), "audio/wav")})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["file"] == "talk.wav" and body["model_version"] >= 1
    assert {"alice", "bob"} <= set(body["speakers"])
    assert all(s["end"] > s["start"] for s in body["segments"])
    # no API key: a stranger's turns carry no score (it would tell how close they are to whom)
    for seg in body["segments"]:
        named = seg["label"] in ("alice", "bob")
        assert (seg["score"] is not None) == named, seg


def test_empty_registry_is_anonymous_and_bad_uploads_are_4xx(
    tmp_path: Path, pool_file: Path, dialogue: tuple[Path, list]
) -> None:
    client = _client(tmp_path / "empty.db", pool_file)
    path, _ = dialogue
    answer = client.post("/diarize", files={"file": ("talk.wav", path.read_bytes(), "audio/wav")})
    assert answer.status_code == 200 and answer.json()["model_version"] is None
    assert all(lab.startswith("SPEAKER_") for lab in answer.json()["speakers"])
    bad = client.post("/diarize", files={"file": ("x.wav", b"not audio at all", "audio/wav")})
    assert bad.status_code == 422 and bad.json()["error"] == "AudioReadError"
    assert "/tmp" not in bad.json()["detail"]
    empty = client.post("/diarize", files={"file": ("x.wav", b"", "audio/wav")})
    assert empty.status_code == 422
    missing = client.post("/diarize")
    assert missing.status_code == 422 and missing.json()["error"] == "RequestValidationError"
