"""The registry engine updates its model warm on enroll / remove, with cold fallbacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from service_toys import FAST, VectorFrontend, vector_pool, vector_speaker

from speakerrpl.errors import InvalidInputError
from speakerrpl.identifier import OpenSetSpeakerIdentifier
from speakerrpl.service.engine import SpeakerEngine
from speakerrpl.service.settings import ServiceSettings

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _engine(path: Path, **settings: Any) -> SpeakerEngine:
    # toy vectors: no measured stranger tail, so the tail is fitted at enrollment; the toy
    # recipe is tuned for rpl_v2's class extension (the library default is tested directly)
    settings.setdefault("method", "rpl_v2")
    s = ServiceSettings(identifier_params=FAST, min_enroll_speech=0, **settings)
    return SpeakerEngine(path, s, frontend=VectorFrontend(), pool=vector_pool())


def _stored(eng: SpeakerEngine) -> OpenSetSpeakerIdentifier:
    from speakerrpl.identifier.persistence import identifier_from_files

    record = eng.registry.current_model()
    assert record is not None
    return identifier_from_files(OpenSetSpeakerIdentifier, record.files)


def test_enroll_and_remove_update_the_stored_model_warm(tmp_path: Path) -> None:
    eng = _engine(tmp_path / "r.db")
    eng.enroll("alice", vector_speaker(1, 3))  # K = 1: the centroid model
    assert eng.enroll("bob", vector_speaker(2, 3))["update"] == "cold"  # from cosine: cold
    assert eng.enroll("carol", vector_speaker(3, 3))["update"] == "warm"
    assert _stored(eng).n_updates_ == 1
    got = eng.identify(vector_speaker(1, 1) + vector_speaker(2, 1) + vector_speaker(3, 1))
    assert [r["speaker"] for r in got] == ["alice", "bob", "carol"]
    out = eng.remove("bob")
    assert out["refit"] == "done" and out["update"] == "warm"
    assert eng.model().classes == ("alice", "carol") and not eng.model().refit_pending
    assert eng.identify(vector_speaker(2, 1))[0]["speaker"] == "<unknown>"
    assert _stored(eng).classes_ == ["alice", "carol"]
    assert eng.refit()["update"] == "cold"  # an explicit refit is always cold
    assert eng.registry.verify() == []


def test_warm_updates_can_be_switched_off(tmp_path: Path) -> None:
    eng = _engine(tmp_path / "r.db", warm_updates=False)
    for seed, name in enumerate(["alice", "bob", "carol"], start=1):
        out = eng.enroll(name, vector_speaker(seed, 3))
    assert out["update"] == "cold"
    assert eng.remove("bob")["update"] == "cold"
    assert ServiceSettings.from_env({"SPEAKERRPL_WARM_UPDATES": "0"}).warm_updates is False


def test_a_settings_change_refits_cold(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    eng = _engine(path)
    eng.enroll("alice", vector_speaker(1, 3))
    eng.enroll("bob", vector_speaker(2, 3))
    other = _engine(path, random_state=7)  # another seed: another model
    assert other.enroll("carol", vector_speaker(3, 3))["update"] == "cold"


def test_a_refused_update_changes_nothing(tmp_path: Path) -> None:
    eng = _engine(tmp_path / "r.db", min_clips=1)  # let the identifier itself refuse
    for seed, name in enumerate(["alice", "bob"], start=1):
        eng.enroll(name, vector_speaker(seed, 3))
    before = eng.registry.current_model()
    with pytest.raises(InvalidInputError, match=r"needs >= 2 utterances per speaker"):
        eng.enroll("carol", vector_speaker(3, 1))
    assert eng.registry.current_model() == before
    assert [s["name"] for s in eng.speakers()] == ["alice", "bob"]
