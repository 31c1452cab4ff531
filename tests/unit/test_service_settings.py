"""Start-up validation: settings, environment variables and CLI flags fail in one line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from service_toys import KEY, engine, one_torch_thread, tone

from speakerrpl.cli import main
from speakerrpl.cli.serve import check_listen
from speakerrpl.errors import InvalidInputError
from speakerrpl.service.settings import ServiceSettings

__all__ = ["one_torch_thread"]


@pytest.mark.parametrize(
    ("var", "value", "match"),
    [
        ("SPEAKERRPL_TORCH_THREADS", "nan", "finite"),
        ("SPEAKERRPL_TORCH_THREADS", "1.5", "whole number"),
        ("SPEAKERRPL_MAX_CLIP_SECONDS", "nan", "finite"),
        ("SPEAKERRPL_MAX_CLIP_SECONDS", "inf", "finite"),
        ("SPEAKERRPL_MAX_CLIP_SECONDS", "0", "> 0"),
        ("SPEAKERRPL_MAX_UPLOAD_BYTES", "0", ">= 1024"),
        ("SPEAKERRPL_INFERENCE_SLOTS", "0", ">= 1"),
        ("SPEAKERRPL_BATCH_MAX_CLIPS", "0", ">= 1"),
        ("SPEAKERRPL_BATCH_WORKERS", "0", ">= 1"),
        ("SPEAKERRPL_BATCH_WAIT", "2", r"\[0, 1\]"),
        ("SPEAKERRPL_BATCH_QUEUE", "100", ">= max_request_seconds"),
        ("SPEAKERRPL_FAR", "nan", "finite"),
        ("SPEAKERRPL_KEEP_AUDIO", "maybe", "boolean"),
        ("SPEAKERRPL_IDENTIFIER_PARAMS", '{"n_models": 0}', "n_models"),
        ("SPEAKERRPL_IDENTIFIER_PARAMS", '{"no_such_setting": 1}', "no_such_setting"),
        ("SPEAKERRPL_IDENTIFIER_PARAMS", '{"epochs": "many"}', "bad value|epochs"),
        ("SPEAKERRPL_IDENTIFIER_PARAMS", "[1, 2]", "JSON object"),
        ("SPEAKERRPL_IDENTIFIER_PARAMS", "{oops", "not valid JSON"),
        ("SPEAKERRPL_API_KEY", "pässwört-123456", "printable ASCII"),
        ("SPEAKERRPL_API_KEY", "short", "at least 8"),
    ],
)
def test_bad_environment_is_refused_at_start_up(var: str, value: str, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        ServiceSettings.from_env({var: value})


def test_batching_settings_come_from_the_environment() -> None:
    env = {"SPEAKERRPL_BATCH_MAX_CLIPS": "8", "SPEAKERRPL_BATCH_WAIT": "0.01",
           "SPEAKERRPL_BATCH_QUEUE": "300", "SPEAKERRPL_BATCH_WORKERS": "1"}  # fmt: skip
    s = ServiceSettings.from_env(env)
    got = (s.batch_max_clips, s.batch_wait_seconds, s.batch_queue_seconds, s.batch_workers)
    assert got == (8, 0.01, 300.0, 1)


def test_listen_checks() -> None:
    with pytest.raises(InvalidInputError, match=r"1\.\.65535"):
        check_listen("127.0.0.1", 99999, has_key=True, insecure=False)
    with pytest.raises(InvalidInputError, match="without an API key"):
        check_listen("0.0.0.0", 8080, has_key=False, insecure=False)
    check_listen("127.0.0.1", 0 + 18_431, has_key=False, insecure=False)
    check_listen("0.0.0.0", 18_432, has_key=False, insecure=True)  # explicitly insecure


def _cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "env", "match"),
    [
        (["--port", "99999"], {}, "--port must be in 1..65535"),
        (["--max-upload-mb", "nan"], {}, "--max-upload-mb must be a finite number > 0"),
        (["--max-upload-mb", "inf"], {}, "--max-upload-mb must be a finite number > 0"),
        (["--max-upload-mb", "0"], {}, "--max-upload-mb must be a finite number > 0"),
        (["--max-clip-seconds", "nan"], {}, "max_clip_seconds must be a finite number > 0"),
        (["--host", "0.0.0.0"], {"SPEAKERRPL_API_KEY": ""}, "without an API key"),
        ([], {"SPEAKERRPL_TORCH_THREADS": "nan"}, "SPEAKERRPL_TORCH_THREADS"),
        ([], {"SPEAKERRPL_IDENTIFIER_PARAMS": '{"n_models": -1}'}, "n_models"),
        ([], {"SPEAKERRPL_MAX_CLIP_SECONDS": "nan"}, "SPEAKERRPL_MAX_CLIP_SECONDS"),
    ],
)
def test_serve_refuses_bad_flags_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    flags: list[str], env: dict[str, str], match: str,
) -> None:  # fmt: skip
    monkeypatch.delenv("SPEAKERRPL_API_KEY", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code, err = _cli(capsys, "serve", "--registry", tmp_path / "r.db", *flags)
    assert code == 2 and match in err and len(err.strip().splitlines()) == 1, err


def test_serve_stops_on_a_corrupt_model_naming_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.db"
    eng = engine(path)
    for who in ("alice", "bob"):
        eng.enroll(who, [tone(who, s) for s in range(2)])
    with sqlite3.connect(path) as con:
        con.execute("UPDATE model_files SET data = x'00' WHERE name LIKE '%.safetensors'")
    monkeypatch.setenv("SPEAKERRPL_API_KEY", KEY)
    code, err = _cli(capsys, "serve", "--registry", path, "--port", "18433")
    assert code == 2 and f"speakerrpl speakers refit --registry {path}" in err
    assert len(err.strip().splitlines()) == 1


def test_read_commands_never_create_a_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "no-such-dir" / "reg.db"
    for argv in (["speakers", "--registry", typo, "list"],
                 ["speakers", "--registry", typo, "remove", "bob"],
                 ["identify", "--registry", typo, tmp_path / "x.wav"],
                 ["threshold", "--registry", typo, "--far", "0.1"]):  # fmt: skip
        code, err = _cli(capsys, *argv)
        assert code == 2 and "no registry at" in err, err
    assert not typo.parent.exists()
