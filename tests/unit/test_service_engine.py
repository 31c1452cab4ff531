"""SpeakerEngine on synthetic embeddings: the real registry and a small real identifier."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from service_toys import FAST, VectorFrontend, vector_pool, vector_speaker

from speakerrpl.errors import InvalidInputError, RegistryError, SpeakerNotFoundError
from speakerrpl.identifier import OpenSetSpeakerIdentifier
from speakerrpl.service.engine import SpeakerEngine
from speakerrpl.service.settings import ServiceSettings

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _moved(clips: list[np.ndarray]) -> list[np.ndarray]:
    """Other clips of the same speaker (the same clips again would be de-duplicated)."""
    return [c + 0.01 for c in clips]


def _engine(path: Path, factory: Any = None, **settings: Any) -> SpeakerEngine:
    s = ServiceSettings(identifier_params=FAST, min_enroll_speech=0, **settings)  # tones
    return SpeakerEngine(
        path, s, frontend=VectorFrontend(), pool=vector_pool(), identifier_factory=factory
    )


def test_enroll_identify_remove_cycle(tmp_path: Path) -> None:
    eng = _engine(tmp_path / "r.db")
    with pytest.raises(RegistryError, match="no speakers"):
        eng.identify(vector_speaker(1, 1))
    assert eng.enroll("alice", vector_speaker(1, 3))["kind"] == "identifier"  # cosine, K = 1
    assert eng.identify(vector_speaker(1, 1))[0]["speaker"] == "alice"
    assert eng.identify(vector_speaker(9, 1))[0]["speaker"] == "<unknown>"
    out = eng.enroll("bob", vector_speaker(2, 3))
    assert out["kind"] == "identifier" and out["speakers"] == ["alice", "bob"]
    got = eng.identify(vector_speaker(1, 1) + vector_speaker(2, 1))
    assert [r["best_match"] for r in got] == ["alice", "bob"]
    assert got[0]["model_version"] == out["model_version"]
    eng.enroll("alice", _moved(vector_speaker(1, 2)))  # extending refits too
    assert {s["name"]: s["n_enrollments"] for s in eng.speakers()} == {"alice": 5, "bob": 3}
    assert eng.remove("alice")["kind"] == "identifier"
    with pytest.raises(SpeakerNotFoundError):
        eng.remove("alice")
    assert eng.remove("bob")["kind"] == "empty"
    with pytest.raises(RegistryError, match="no speakers"):
        eng.identify(vector_speaker(1, 1))
    assert eng.registry.verify() == []


def test_failed_refit_keeps_enrolled_data(tmp_path: Path) -> None:
    eng = _engine(tmp_path / "r.db", min_clips=1)  # let the identifier itself refuse
    eng.enroll("alice", vector_speaker(1, 3))
    eng.enroll("bob", vector_speaker(2, 3))
    before = eng.registry.current_model()
    with pytest.raises(InvalidInputError, match=r"needs >= 2 utterances per speaker"):
        eng.enroll("carol", vector_speaker(3, 1))  # the refit fails: nothing is committed
    assert [s["name"] for s in eng.speakers()] == ["alice", "bob"]
    assert eng.registry.current_model() == before
    assert eng.registry.verify() == []


def test_too_few_clips_are_refused_before_any_work(tmp_path: Path) -> None:
    eng = _engine(tmp_path / "r.db")
    with pytest.raises(InvalidInputError, match="at least 2 enrollment clips"):
        eng.enroll("alice", vector_speaker(1, 1))
    assert eng.speakers() == []
    eng.enroll("alice", vector_speaker(1, 2))
    eng.enroll("alice", _moved(vector_speaker(1, 1)))  # extending by one clip is fine
    assert eng.speakers()[0]["n_enrollments"] == 3


def test_writer_racing_another_process_refits_on_fresh_data(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    other = _engine(path)
    other.enroll("alice", vector_speaker(1, 3))
    raced = []

    def racing_factory(**kw: Any) -> OpenSetSpeakerIdentifier:
        if not raced:  # while we fit, another writer commits bob
            raced.append(other.enroll("bob", vector_speaker(2, 3)))
        return OpenSetSpeakerIdentifier(**kw)

    eng = _engine(path, factory=racing_factory)
    eng.enroll("carol", vector_speaker(3, 3))  # snapshot had alice only: must refit with bob
    model = eng.model()
    assert model.classes == ("alice", "bob", "carol") and raced
    assert eng.registry.verify() == []
    assert other.model().version == model.version  # other readers pick up the new model


def test_threshold_pin_and_recalibrate(tmp_path: Path) -> None:
    eng = _engine(tmp_path / "r.db")
    eng.enroll("alice", vector_speaker(1, 3))
    eng.enroll("bob", vector_speaker(2, 3))
    calibrated = eng.model().threshold
    eng.recalibrate(threshold=123.0)
    assert eng.model().threshold == 123.0
    assert eng.identify(vector_speaker(1, 1))[0]["speaker"] == "<unknown>"
    eng.enroll("carol", vector_speaker(3, 3))
    assert eng.model().threshold == 123.0  # a pinned threshold survives refits
    eng.recalibrate(far=0.2)
    assert eng.model().threshold != 123.0 and eng.registry.get_setting("far") == "0.2"
    assert np.isfinite(calibrated)
    with pytest.raises(InvalidInputError):
        eng.recalibrate(far=1.5)
    with pytest.raises(InvalidInputError):
        eng.recalibrate()


def test_audio_is_kept_only_when_asked(tmp_path: Path) -> None:
    for keep in (False, True):
        path = tmp_path / f"r{keep}.db"
        _engine(path, keep_audio=keep).enroll("alice", vector_speaker(1, 2))
        with sqlite3.connect(path) as con:
            rows = con.execute("SELECT audio FROM enrollments").fetchall()
        assert [r[0] is not None for r in rows] == [keep, keep]


def test_every_k_is_the_estimator_with_its_rule_and_unknown_label(tmp_path: Path) -> None:
    """K = 1 is OpenSetSpeakerIdentifier(method="cosine"), K >= 2 the configured method; both
    are stored, loaded and decided exactly as the estimator does (no service scoring code)."""
    from speakerrpl.identifier.persistence import identifier_from_files

    eng = _engine(tmp_path / "r.db")
    probe = np.stack(vector_speaker(1, 2) + vector_speaker(2, 2) + vector_speaker(9, 2))
    for name, seed, method in (("alice", 1, "cosine"), ("bob", 2, eng.settings.method)):
        eng.enroll(name, vector_speaker(seed, 3))
        record = eng.registry.current_model()
        assert record is not None and record.kind == "identifier"
        ident = identifier_from_files(OpenSetSpeakerIdentifier, record.files)
        assert ident.settings.method == method
        got = [r["speaker"] for r in eng.model().identify(eng.embed(list(probe)))]
        assert got == ident.predict(probe).tolist()
        assert ident.settings.unknown_label in got
    assert ident.threshold_ == pytest.approx(eng.model().threshold)
