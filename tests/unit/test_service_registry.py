"""Unit tests of the SQLite speaker registry (numpy + sqlite3 only)."""

from __future__ import annotations

import sqlite3
import string

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speakerrpl.errors import (
    InvalidSpeakerNameError,
    ModelMismatchError,
    RegistryError,
    SpeakerNotFoundError,
)
from speakerrpl.service.registry import (
    ConcurrentChangeError,
    Enrollment,
    SpeakerRegistry,
    validate_speaker_name,
)


def _enr(n: int, dim: int = 8, seed: int = 0) -> list[Enrollment]:
    rng = np.random.default_rng(seed)
    return [Enrollment(rng.standard_normal(dim).astype(np.float32)) for _ in range(n)]


def _add(reg: SpeakerRegistry, **speakers: list[Enrollment]) -> int:
    snap = reg.snapshot()
    names = sorted(set(snap.embeddings) | set(speakers))
    return reg.commit(
        snap.data_version, "toy", add=speakers, model_kind="test", model_classes=names,
        model_files={"config.json": b"{}", "weights.safetensors": b"\x00\x01"},
    )  # fmt: skip


@pytest.mark.parametrize(
    "name", ["alice", "Bob", "zoë", "José María", "user_01", "a", "x" * 64, "anne-marie.o", "李雷"]
)
def test_valid_names_pass(name: str) -> None:
    assert validate_speaker_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", " alice", "alice ", "a  b", "../etc", "a/b", "a\\b", ".hidden", "<unknown>", "x" * 65,
     "a'; DROP TABLE speakers;--", "tab\there", "new\nline", "_x", "-x", "nul\x00",
     "0\n", "alice\n"],  # a trailing newline once slipped through "$" (found by hypothesis)
)  # fmt: skip
def test_invalid_names_raise(name: str) -> None:
    with pytest.raises(InvalidSpeakerNameError):
        validate_speaker_name(name)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_string_is_valid_or_rejected_never_a_path(name: str) -> None:
    try:
        out = validate_speaker_name(name)
    except InvalidSpeakerNameError:
        return
    assert 1 <= len(out) <= 64
    assert not set(out) & set("/\\<>'\";\x00\n\r\t")
    assert out[0] not in "._- " and out[-1] != " "


def test_commit_snapshot_roundtrip_and_reopen(tmp_path) -> None:
    path = tmp_path / "reg.db"
    reg = SpeakerRegistry(path)
    alice, bob = _enr(3, seed=1), _enr(2, seed=2)
    v1 = _add(reg, alice=alice)
    v2 = _add(reg, bob=bob)
    assert v2 == v1 + 1
    reg2 = SpeakerRegistry(path)  # reopen: everything is on disk
    snap = reg2.snapshot()
    assert snap.data_version == 2 and snap.frontend == "toy"
    np.testing.assert_array_equal(snap.embeddings["alice"], np.stack([e.embedding for e in alice]))
    assert [s["n_enrollments"] for s in reg2.speakers()] == [3, 2]
    model = reg2.current_model()
    assert model is not None and model.classes == ("alice", "bob")
    assert model.files["weights.safetensors"] == b"\x00\x01"
    assert reg2.verify() == []
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_stale_snapshot_is_refused_and_changes_nothing(tmp_path) -> None:
    reg = SpeakerRegistry(tmp_path / "reg.db")
    _add(reg, alice=_enr(2))
    stale = reg.snapshot().data_version
    _add(reg, bob=_enr(2, seed=3))
    with pytest.raises(ConcurrentChangeError):
        reg.commit(stale, "toy", add={"carol": _enr(1)}, model_kind="t",
                   model_classes=["alice", "bob", "carol"])  # fmt: skip
    assert [s["name"] for s in reg.speakers()] == ["alice", "bob"]
    assert reg.verify() == []


def test_failed_commit_rolls_back_everything(tmp_path) -> None:
    reg = SpeakerRegistry(tmp_path / "reg.db")
    _add(reg, alice=_enr(2))
    before = reg.current_model()
    snap = reg.snapshot()
    with pytest.raises(RegistryError, match="do not match"):  # model lacks the new speaker
        reg.commit(snap.data_version, "toy", add={"bob": _enr(2)}, model_kind="t",
                   model_classes=["alice"])  # fmt: skip
    with pytest.raises(ModelMismatchError):  # other embedding size
        reg.commit(snap.data_version, "toy", add={"bob": _enr(1, dim=4)}, model_kind="t",
                   model_classes=["alice", "bob"])  # fmt: skip
    with pytest.raises(ModelMismatchError):  # other frontend
        reg.commit(snap.data_version, "other", add={"bob": _enr(1)}, model_kind="t",
                   model_classes=["alice", "bob"])  # fmt: skip
    with pytest.raises(SpeakerNotFoundError):
        reg.commit(snap.data_version, "toy", remove=["nobody"], model_kind="t",
                   model_classes=["alice"])  # fmt: skip
    assert reg.snapshot().data_version == snap.data_version
    assert reg.current_model() == before
    assert reg.verify() == []


def test_remove_deletes_embeddings_and_keeps_one_model(tmp_path) -> None:
    path = tmp_path / "reg.db"
    reg = SpeakerRegistry(path)
    _add(reg, alice=_enr(2), bob=_enr(3))
    snap = reg.snapshot()
    reg.commit(
        snap.data_version, "toy", remove=["bob"], model_kind="cosine", model_classes=["alice"]
    )
    assert list(reg.snapshot().embeddings) == ["alice"]
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT COUNT(*) FROM enrollments").fetchone()[0] == 2
        assert con.execute("SELECT COUNT(*) FROM models").fetchone()[0] == 1
    assert reg.verify() == []


def test_hostile_names_are_stored_verbatim_not_executed(tmp_path) -> None:
    reg = SpeakerRegistry(tmp_path / "reg.db")
    name = "Robert.Tables-" + string.ascii_letters[:10]
    _add(reg, **{name: _enr(1)})
    with pytest.raises(InvalidSpeakerNameError):
        _add(reg, **{"x'); DROP TABLE speakers; --": _enr(1)})
    assert [s["name"] for s in reg.speakers()] == [name]


def test_settings_are_committed_with_the_model(tmp_path) -> None:
    reg = SpeakerRegistry(tmp_path / "reg.db")
    _add(reg, alice=_enr(2))
    snap = reg.snapshot()
    reg.commit(snap.data_version, "toy", model_kind="t", model_classes=["alice"],
               settings={"far": "0.05"})  # fmt: skip
    assert reg.get_setting("far") == "0.05"
    assert reg.snapshot().data_version == snap.data_version  # settings are not data


def test_directory_path_is_refused(tmp_path) -> None:
    with pytest.raises(RegistryError, match="directory"):
        SpeakerRegistry(tmp_path)


def test_names_differing_only_in_case_are_refused(tmp_path) -> None:
    reg = SpeakerRegistry(tmp_path / "reg.db")
    _add(reg, Alice=_enr(1))
    with pytest.raises(InvalidSpeakerNameError, match="case"):
        _add(reg, alice=_enr(1))
    _add(reg, Alice=_enr(1, seed=5))  # same spelling extends
    assert reg.speakers() == [dict(reg.speakers()[0], n_enrollments=2)]
