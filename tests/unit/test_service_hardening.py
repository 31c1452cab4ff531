"""Registry and engine under faults: removals, disk full, read-only mounts, corrupt models."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from service_toys import FAST, BandFrontend, engine, one_torch_thread, tone

from speakerrpl.errors import (
    CorruptModelError,
    IdentificationPausedError,
    InvalidSpeakerNameError,
    RegistryError,
    RegistryReadOnlyError,
    RegistryUnavailableError,
)
from speakerrpl.service.engine import SpeakerEngine
from speakerrpl.service.registry import SpeakerRegistry, validate_speaker_name
from speakerrpl.service.settings import ServiceSettings

__all__ = ["one_torch_thread"]


def _two(path: Path, **kw: object) -> SpeakerEngine:
    eng = engine(path, **kw)
    for who in ("alice", "bob", "carol"):
        eng.enroll(who, [tone(who, s) for s in range(3)])
    return eng


def test_new_registry_is_private_and_read_commands_never_create_one(tmp_path: Path) -> None:
    path = tmp_path / "new" / "deeper" / "reg.db"
    engine(path).enroll("alice", [tone("alice", s) for s in range(2)])
    for p in (path, path.with_name("reg.db-wal"), path.with_name("reg.db-shm")):
        if p.exists():
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    missing = tmp_path / "typo" / "reg.db"
    with pytest.raises(RegistryError, match="no registry at"):
        SpeakerRegistry(missing, create=False)
    assert not missing.parent.exists()


def test_look_alike_names_are_one_person(tmp_path: Path) -> None:
    assert validate_speaker_name("ａｌｉｃｅ") == "alice"  # fullwidth: NFKC
    with pytest.raises(InvalidSpeakerNameError, match="mixes CYRILLIC and LATIN"):
        validate_speaker_name("\u0430lice")  # Cyrillic а + Latin lice
    assert validate_speaker_name("Вера") == "Вера" and validate_speaker_name("李雷") == "李雷"
    eng = engine(tmp_path / "r.db")
    eng.enroll("alice", [tone("alice", s) for s in range(2)])
    for twin in ("ALICE", "\u0430\u04cf\u0456\u0441\u0435"):  # the last is all Cyrillic
        with pytest.raises(InvalidSpeakerNameError, match="too similar to the enrolled 'alice'"):
            eng.enroll(twin, [tone("bob", s) for s in range(2)])
    assert eng.enroll("ａｌｉｃｅ", [tone("alice", 5)])["speakers"] == ["alice"]  # is alice
    assert [(s["name"], s["n_enrollments"]) for s in eng.speakers()] == [("alice", 3)]


def test_removal_leaves_no_trace_in_the_file_or_wal(tmp_path: Path) -> None:
    path = tmp_path / "reg.db"
    eng = _two(path)
    other = sqlite3.connect(path)  # another open connection (e.g. a second server)
    other.execute("SELECT COUNT(*) FROM speakers").fetchone()
    out = eng.remove("carol")
    assert out["refit"] == "done" and out["speakers"] == ["alice", "bob"]
    for file in (path, path.with_name("reg.db-wal")):
        data = file.read_bytes() if file.exists() else b""
        assert b"carol" not in data, file
    other.close()


def _without_pool(path: Path) -> SpeakerEngine:
    """An engine whose negative pool file is gone (fault injection: every refit fails)."""
    settings = ServiceSettings(identifier_params=FAST, pool_path=str(path.parent / "gone.npz"),
                               min_enroll_speech=0)  # tones are not speech  # fmt: skip
    return SpeakerEngine(path, settings, frontend=BandFrontend())


def test_failed_refit_keeps_the_removal_and_the_rest_identifiable(tmp_path: Path) -> None:
    path = tmp_path / "reg.db"
    probe = [tone("alice", 50), tone("bob", 50)]
    before = [r["speaker"] for r in _two(path).identify(probe)]
    eng = _without_pool(path)
    out = eng.remove("carol")
    assert out["refit"] == "failed" and "gone.npz" in str(out["refit_error"])
    assert out["identification"] == "previous model, restricted"
    assert [s["name"] for s in eng.speakers()] == ["alice", "bob"]  # the removal stands
    after = eng.identify(probe)
    assert [r["speaker"] for r in after] == before == ["alice", "bob"]
    assert set(after[0]["scores"]) == {"alice", "bob"}
    assert eng.model().refit_pending and b"carol" not in path.read_bytes()
    repaired = engine(path)  # the pool is back: a refit repairs
    assert repaired.refit()["kind"] == "identifier" and not repaired.model().refit_pending
    assert repaired.registry.verify() == []


def test_removal_with_an_unreadable_model_pauses_identification(tmp_path: Path) -> None:
    path = tmp_path / "reg.db"
    _two(path)
    with sqlite3.connect(path) as con:
        con.execute("UPDATE model_files SET data = x'00' WHERE name = 'config.json'")
    out = _without_pool(path).remove("bob")
    assert out["refit"] == "failed" and out["identification"] == "paused"
    with pytest.raises(IdentificationPausedError, match="paused"):
        engine(path).identify([tone("alice", 1)])
    assert [s["name"] for s in engine(path).speakers()] == ["alice", "carol"]


def test_corrupt_model_is_detected_and_refit_repairs_it(tmp_path: Path) -> None:
    path = tmp_path / "reg.db"
    _two(path)
    with sqlite3.connect(path) as con:
        con.execute("UPDATE model_files SET data = x'deadbeef' WHERE name LIKE '%.safetensors'")
    eng = engine(path)
    with pytest.raises(CorruptModelError, match="speakerrpl speakers refit --registry"):
        eng.warm_up()
    with pytest.raises(CorruptModelError):
        eng.identify([tone("alice", 1)])
    assert eng.loads == 0
    eng.refit()
    assert eng.identify([tone("alice", 1)])[0]["speaker"] == "alice"


@pytest.fixture
def mount_point(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A fresh tmpfs (size from ``@pytest.mark.parametrize("mount_point", [...], indirect)``)."""
    point = tmp_path / "mnt"
    point.mkdir()
    size = getattr(request, "param", "2m")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=700", "tmpfs",
                           str(point)], capture_output=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield point
    subprocess.run(["umount", "-l", str(point)], check=False)


def test_disk_full_is_reported_not_hidden(mount_point: Path) -> None:
    eng = engine(mount_point / "reg.db", keep_audio=True)
    eng.enroll("alice", [tone("alice", s) for s in range(2)])
    with pytest.raises(RegistryUnavailableError, match="database or disk is full"):
        eng.enroll("bob", [tone("bob", s, seconds=20.0) for s in range(4)])  # 2.5 MB of audio
    assert [s["name"] for s in eng.speakers()] == ["alice"]
    assert eng.identify([tone("alice", 9)])[0]["speaker"] == "alice"
    # over HTTP: 503 with the cause in the JSON body, not a 500
    from fastapi.testclient import TestClient
    from service_toys import KEY, wav

    from speakerrpl.service.app import create_app

    web = engine(mount_point / "reg.db", keep_audio=True, api_key=KEY)
    files = [("file", (f"b{s}.wav", wav(tone("bob", s, seconds=20.0)), "audio/wav"))
             for s in range(4)]  # fmt: skip
    r = TestClient(create_app(web)).post(
        "/speakers/bob/enrollments", files=files, headers={"X-API-Key": KEY}
    )
    assert r.status_code == 503 and r.json()["error"] == "RegistryUnavailableError"
    assert "disk is full" in r.json()["detail"]


@pytest.mark.parametrize("mount_point", ["64m"], indirect=True)
def test_read_only_mount_serves_identification(mount_point: Path) -> None:
    path = mount_point / "reg.db"
    _two(path)
    subprocess.run(["mount", "-o", "remount,ro", str(mount_point)], check=True)
    eng = engine(path)
    assert eng.registry.read_only
    assert [s["name"] for s in eng.speakers()] == ["alice", "bob", "carol"]
    assert eng.identify([tone("bob", 9)])[0]["speaker"] == "bob"
    with pytest.raises(RegistryReadOnlyError, match="read-only"):
        eng.enroll("dave", [tone("carol", s) for s in (7, 8)])
    with pytest.raises(RegistryReadOnlyError):
        eng.remove("alice")
    assert not os.access(mount_point, os.W_OK)
    assert np.isfinite(eng.model().threshold)
    # the service on it: identification works, changes answer 503 with the reason
    from fastapi.testclient import TestClient
    from service_toys import KEY, clips

    from speakerrpl.service.app import create_app

    ro = SpeakerEngine(path, ServiceSettings(api_key=KEY), frontend=BandFrontend())
    c = TestClient(create_app(ro))
    h = {"X-API-Key": KEY}
    r = c.post("/identify", files=clips("bob", [11]), headers=h)
    assert r.status_code == 200 and r.json()["results"][0]["speaker"] == "bob"
    r = c.post("/speakers/dave/enrollments", files=clips("carol", [1, 2]), headers=h)
    assert r.status_code == 503 and r.json()["error"] == "RegistryReadOnlyError"
    assert c.get("/status", headers=h).json()["read_only"] is True


@pytest.mark.parametrize("mount_point", ["64m"], indirect=True)
def test_read_only_registry_from_the_cli(
    mount_point: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from service_toys import wav

    from speakerrpl.cli import main

    path = mount_point / "reg.db"
    _two(path)
    subprocess.run(["mount", "-o", "remount,ro", str(mount_point)], check=True)
    assert main(["speakers", "--registry", str(path), "list"]) == 0
    assert capsys.readouterr().out.split() == ["alice", "3", "clip(s)", "bob", "3", "clip(s)",
                                               "carol", "3", "clip(s)"]  # fmt: skip
    clip = tmp_path / "x.wav"
    clip.write_bytes(wav(tone("carol", 40, seconds=2.0)))
    assert main(["enroll", "--registry", str(path), "--name", "dave", str(clip)]) == 2
    err = capsys.readouterr().err
    assert "read-only" in err and len(err.strip().splitlines()) == 1
