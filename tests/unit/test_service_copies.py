"""The service's multi-condition enrollment: copies made, stored, fitted on, or cleanly not."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
from service_toys import FAST, KEY, BandFrontend, _pool_pitches, decoded, tone

from live_server import LiveServer
from speakerrpl.errors import TTSError
from speakerrpl.service.app import create_app
from speakerrpl.service.engine import SpeakerEngine
from speakerrpl.service.settings import ServiceSettings
from speakerrpl.synth import enrollment_copies as copies_module

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Bands192(BandFrontend):
    """192 log band energies: a stand-in of CAM++'s size and name, so the identifier applies
    its CAM++ settings (channel model, tables, copies) to tones."""

    name = "campplus"
    bands = 192


def _pool() -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(16000) / 16000
    waves = [(0.3 * np.sin(2 * np.pi * f * (1 + 0.01 * k) * t)).astype("f4")
             for f in _pool_pitches() for k in range(3)]  # fmt: skip
    return Bands192().embed(waves), np.repeat([f"pool{i}" for i in range(16)], 3)


@pytest.fixture
def talkers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Babble talkers without espeak-ng: tones of pitches no test voice has."""
    made = [tone("stranger", 90 + i, seconds=2.0) for i in range(4)]
    monkeypatch.setattr(copies_module, "babble_talkers", lambda: made)


def _engine(path: Path, **settings: object) -> SpeakerEngine:
    s = ServiceSettings(identifier_params=FAST, min_enroll_speech=0, **settings)  # type: ignore[arg-type]
    return SpeakerEngine(path, s, frontend=Bands192(), pool=_pool())


@pytest.mark.usefixtures("talkers")
def test_each_clip_is_stored_with_its_seven_copies_and_the_model_fitted_on_them(
    tmp_path: Path,
) -> None:
    eng = _engine(tmp_path / "r.db")
    assert eng.enroll("alice", [decoded("alice", s) for s in range(3)])["enrollment_copies"]
    out = eng.enroll("bob", [decoded("bob", s) for s in range(3)])
    assert out["enrollment_copies"] is True and out["warnings"] == []
    snap = eng.registry.snapshot()
    assert {n: c.shape for n, c in snap.copies.items()} == {"alice": (21, 192), "bob": (21, 192)}
    assert eng.identify([decoded("bob", 7)])[0]["best_match"] == "bob"
    # an imported voiceprint has no copies: the household is fitted without them
    out = eng.enroll_embeddings("carol", Bands192().embed([tone("carol", s) for s in range(3)]))
    assert out["enrollment_copies"] is False
    assert eng.remove("carol")["enrollment_copies"] is True
    assert eng.registry.verify() == []


@pytest.mark.usefixtures("talkers")
def test_copies_are_not_made_when_turned_off_or_unusable(tmp_path: Path) -> None:
    off = _engine(tmp_path / "off.db", enrollment_copies=False)
    assert (
        off.enroll("alice", [decoded("alice", s) for s in range(3)])["enrollment_copies"] is False
    )
    assert off.registry.snapshot().copies == {}
    v2 = _engine(tmp_path / "v2.db", method="rpl_v2")  # no cosine part: copies would be unused
    v2.enroll("alice", [decoded("alice", s) for s in range(3)])
    assert v2.registry.snapshot().copies == {}


def test_no_babble_talkers_enrolls_without_copies_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_tts() -> list[np.ndarray]:
        raise TTSError("espeak-ng is not installed")

    monkeypatch.setattr(copies_module, "babble_talkers", no_tts)
    eng = _engine(tmp_path / "r.db")
    out = eng.enroll("alice", [decoded("alice", s) for s in range(3)])
    assert out["enrollment_copies"] is False
    assert [w["code"] for w in out["warnings"]] == ["no-channel-copies"]
    assert "espeak-ng" in out["warnings"][0]["message"]
    assert {s["name"] for s in eng.speakers()} == {"alice"}


@pytest.mark.usefixtures("talkers")
def test_a_voiceprint_carries_the_copies_to_another_registry_over_http(tmp_path: Path) -> None:
    eng = _engine(tmp_path / "a.db", api_key=KEY)
    for who in ("alice", "bob"):
        eng.enroll(who, [decoded(who, s) for s in range(3)])
    other = _engine(tmp_path / "b.db", api_key=KEY)
    other.enroll("alice", [decoded("alice", s) for s in range(3)])
    head = {"X-API-Key": KEY}
    with LiveServer(create_app(eng)) as a, LiveServer(create_app(other)) as b:
        with httpx.Client(base_url=a, headers=head, timeout=60) as ca:
            doc = ca.get("/speakers/bob/voiceprint").json()
            clips = ca.get("/speakers/bob").json()["clips"]
        assert doc["copies_per_clip"] == 7 and [c["n_copies"] for c in clips] == [7, 7, 7]
        with httpx.Client(base_url=b, headers=head, timeout=60) as cb:
            r = cb.put("/speakers/bob/voiceprint", json=doc)
            assert r.status_code == 201 and r.json()["enrollment_copies"] is True, r.text
            for broken in ({**doc, "copies_per_clip": 6}, {**doc, "copies": "%%"}):
                r = cb.put("/speakers/carol/voiceprint", json=broken)
                assert r.status_code == 400 and "malformed voiceprint copies" in r.text
            bare = {k: v for k, v in doc.items() if k not in ("copies", "copies_per_clip")}
            r = cb.put("/speakers/carol/voiceprint", json=bare)
            assert r.status_code == 201 and r.json()["enrollment_copies"] is False
    np.testing.assert_array_equal(other.registry.snapshot().copies["bob"],
                                  eng.registry.snapshot().copies["bob"])  # fmt: skip
