"""Micro-batched identification with the real CAM++: concurrent requests through the app share
embedding calls and get the answers each would get alone (within float rounding)."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from fastapi.testclient import TestClient
from service_support import API_KEY, FAST_PARAMS, copy_registry

from speakerrpl.audio import load_audio
from speakerrpl.service.app import create_app
from speakerrpl.service.engine import SpeakerEngine
from speakerrpl.service.settings import ServiceSettings

pytest_plugins = ("service_support",)  # the shared fixtures


def _wav(path: Path, seconds: float | None) -> tuple[str, tuple[str, bytes, str]]:
    wave = load_audio(path)
    if seconds is not None:
        wave = wave[: int(seconds * 16000)]  # equal lengths: they share forward passes
    buf = io.BytesIO()
    sf.write(buf, wave, 16000, format="WAV", subtype="PCM_16")
    return ("file", (f"{path.stem}-{seconds}.wav", buf.getvalue(), "audio/wav"))


def _scores(results: list[dict[str, Any]]) -> list[list[float]]:
    """Each clip's score and its raw scores against every enrolled speaker."""
    return [[r["score"], *(r["scores"][k] for k in sorted(r["scores"]))] for r in results]


def _app(registry: Path, **settings: Any) -> tuple[TestClient, SpeakerEngine]:
    s = ServiceSettings(identifier_params=json.loads(FAST_PARAMS), api_key=API_KEY, **settings)
    engine = SpeakerEngine(registry, s)
    return TestClient(create_app(engine), headers={"X-API-Key": API_KEY}), engine


def test_concurrent_identify_with_campplus_equals_one_at_a_time(
    tmp_path: Path, base_registry: Path, clips: dict
) -> None:
    registry = copy_registry(base_registry, tmp_path / "reg.db")
    tests = clips["alice_test"] + clips["bob_test"] + clips["carol_test"] + clips["unknown"]
    requests = [[_wav(p, 3.0)] for p in tests] + [[_wav(tests[0], None), _wav(tests[1], 3.0)]]
    alone, eng1 = _app(registry, batch_wait_seconds=0.0)
    expected = []
    for files in requests:
        r = alone.post("/identify", files=files)
        assert r.status_code == 200, r.text
        expected.append(r.json()["results"])
    assert eng1.batcher.calls == len(requests)  # one at a time: each request alone

    together, eng = _app(  # one worker: every clip joins one call (no split across workers)
        registry, batch_wait_seconds=1.0, batch_max_clips=len(requests) + 1, batch_workers=1
    )
    with ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(lambda f: together.post("/identify", files=f), requests))
    assert [a.status_code for a in answers] == [200] * len(requests)
    assert eng.batcher.calls < len(requests) and eng.batcher.largest >= 4
    for answer, want in zip(answers, expected, strict=True):
        got = answer.json()["results"]
        assert [(r["file"], r["speaker"]) for r in got] == [(r["file"], r["speaker"]) for r in want]
        assert [sorted(r["scores"]) for r in got] == [sorted(r["scores"]) for r in want]
        np.testing.assert_allclose(_scores(got), _scores(want), rtol=1e-4, atol=1e-5)
    speakers = [r["speaker"] for a in answers[: len(tests)] for r in a.json()["results"]]
    assert speakers[: len(clips["alice_test"])] == ["alice"] * len(clips["alice_test"])
