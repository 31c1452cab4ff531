"""Crash safety: kill -9 at any point leaves the previous consistent registry state."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from service_support import Server, copy_registry, upload

from speakerrpl.service.registry import SpeakerRegistry

# A writer that commits forever: add or remove a speaker with a few MB of "model" whose content
# records the data it was fitted on, so a torn write would be detectable.
WRITER = r"""
import hashlib, json, sys, numpy as np
from speakerrpl.service.registry import Enrollment, SpeakerRegistry
reg = SpeakerRegistry(sys.argv[1])
rng = np.random.default_rng(int(sys.argv[2]))
i = 0
while True:
    snap = reg.snapshot()
    names = sorted(snap.embeddings)
    add, remove = {}, []
    if len(names) > 3 and rng.random() < 0.4:
        remove = [names[int(rng.integers(len(names)))]]
    else:
        add = {f"spk{rng.integers(8)}": [Enrollment(rng.standard_normal(16)) for _ in range(3)]}
    classes = sorted((set(names) | set(add)) - set(remove))
    blob = rng.bytes(int(rng.integers(1, 4)) * 1_000_000)
    tag = json.dumps({"classes": classes, "sha": hashlib.sha256(blob).hexdigest()})
    reg.commit(snap.data_version, "toy", add=add, remove=remove, model_kind="test",
               model_classes=classes, model_files={"tag.json": tag.encode(), "blob": blob})
    i += 1
    print(i, flush=True)
"""

pytest_plugins = ("service_support",)  # the shared fixtures


def _check_model_content(reg: SpeakerRegistry) -> None:
    import hashlib

    model = reg.current_model()
    if model is None:
        return
    tag = json.loads(model.files["tag.json"])
    assert tag["classes"] == [s["name"] for s in reg.speakers()]
    assert tag["sha"] == hashlib.sha256(model.files["blob"]).hexdigest()


def test_sigkill_during_commits_never_corrupts(tmp_path: Path) -> None:
    path = tmp_path / "reg.db"
    rng = random.Random(0)
    for round_ in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(round_)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        proc.stdout.readline()  # at least one commit done
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        reg = SpeakerRegistry(path)
        assert reg.verify() == [], f"round {round_}"
        _check_model_content(reg)
    assert reg.snapshot().data_version > 6  # every round committed at least once


def test_sigkill_during_http_enrollment_keeps_previous_state(
    tmp_path: Path, base_registry: Path, pool_file: Path, clips: dict
) -> None:
    registry = copy_registry(base_registry, tmp_path / "reg.db")
    before = SpeakerRegistry(registry).current_model()
    assert before is not None
    slow = '{"n_models": 8, "selection_r": 1, "epochs": 2000}'  # a refit that takes long
    server = Server(registry, pool_file, params=slow).start()
    errors: list[BaseException] = []

    def enroll() -> None:
        try:
            with server.client() as c:
                c.post("/speakers/carol/enrollments", files=upload(clips["carol"]))
        except Exception as exc:  # the server dies under the request
            errors.append(exc)

    worker = threading.Thread(target=enroll)
    worker.start()
    try:
        server.wait_for_log("refitting on data v")
        time.sleep(0.3)
        server.kill()
    finally:
        server.stop()
        worker.join(30)
    assert errors, "the enrollment finished before the kill; make the refit slower"
    reg = SpeakerRegistry(registry)
    assert reg.verify() == []
    assert [s["name"] for s in reg.speakers()] == ["alice", "bob"]
    assert reg.current_model() == before  # the previous model, byte for byte
