"""``speakerrpl enroll | identify | speakers | threshold`` on real recordings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from service_support import run_cli

from speakerrpl.service.registry import SpeakerRegistry

pytest_plugins = ("service_support",)  # the shared fixtures


def test_cli_registry_workflow(tmp_path: Path, clips: dict, cli_env: None, capsys) -> None:
    reg = tmp_path / "household.db"
    code, out, _ = run_cli(capsys, "enroll", "--registry", reg, "--name", "alice", *clips["alice"])
    assert code == 0 and "enrolled 'alice': 4 clip(s)" in out and "(identifier)" in out
    code, out, _ = run_cli(capsys, "enroll", "--registry", reg, "--name", "bob", *clips["bob"])
    assert code == 0 and "(identifier)" in out and "refit in" in out
    # multi-condition enrollment: every clip's seven channel copies are stored and fitted on
    registry = SpeakerRegistry(reg, read_only=True)
    snap = registry.snapshot()
    for name in ("alice", "bob"):
        assert snap.copies[name].shape == (7 * len(snap.embeddings[name]), 192)
        assert not np.allclose(snap.copies[name][:7], snap.embeddings[name][0], atol=1e-3)
    assert registry.current_model().info["enrollment_copies"] is True

    tests = clips["alice_test"] + clips["bob_test"]
    code, out, _ = run_cli(capsys, "identify", "--registry", reg, "--json", *tests)
    results = json.loads(out)
    assert code == 0 and [r["speaker"] for r in results] == ["alice", "bob", "bob"]
    assert all(r["file"] == str(p) for r, p in zip(results, tests, strict=True))
    code, out, _ = run_cli(capsys, "identify", "--registry", reg, clips["bob_test"][0])
    assert out.split("\t")[1] == "bob" and "threshold=" in out

    code, out, _ = run_cli(capsys, "threshold", "--registry", reg, "--value", "1e9")
    assert code == 0 and "threshold 1000000000" in out
    _, out, _ = run_cli(capsys, "identify", "--registry", reg, clips["bob_test"][0])
    assert out.split("\t")[1] == "<unknown>"
    code, out, _ = run_cli(capsys, "threshold", "--registry", reg, "--far", "0.05")
    assert code == 0

    code, _, err = run_cli(capsys, "enroll", "--registry", reg, "--name", "../x", *clips["alice"])
    assert code == 2 and "invalid speaker name" in err
    code, _, err = run_cli(capsys, "speakers", "--registry", reg, "remove", "carol")
    assert code == 2 and "no enrolled speaker" in err
    code, out, _ = run_cli(capsys, "speakers", "--registry", reg, "remove", "bob")
    assert code == 0 and "1 speaker(s) left" in out
    code, out, _ = run_cli(capsys, "speakers", "--registry", reg, "list")
    assert out.splitlines() == ["alice\t4 clip(s)"]
