"""``speakerrpl wyoming`` as a process, with real CAM++ on a registry of two real people, driven
by the wyoming package's client through a small upstream ASR (all on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from service_support import copy_registry
from wyoming.asr import Transcript
from wyoming.client import AsyncTcpClient
from wyoming.server import AsyncTcpServer

from speakerrpl.audio import load_audio
from wyoming_support import FakeASR, free_port, run, utterance

pytest_plugins = ("service_support",)  # the shared fixtures


async def _wait_for_port(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"proxy exited:\n{log.read_text()}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.2)
    raise RuntimeError(f"proxy did not listen in time:\n{log.read_text()}")


def _proxy(registry: Path, port: int, upstream: int, log: Path, *flags: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "speakerrpl", "-v", "wyoming", "--registry", str(registry),
           "--uri", f"tcp://127.0.0.1:{port}", "--upstream", f"tcp://127.0.0.1:{upstream}",
           *flags]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


def test_proxy_names_real_people_and_tags_text(
    tmp_path: Path, base_registry: Path, clips: dict[str, list[Path]]
) -> None:
    registry = copy_registry(base_registry, tmp_path / "reg.db")
    tests = [clips["alice_test"][0], clips["bob_test"][0], clips["unknown"][0]]
    waves = [load_audio(p) for p in tests]

    async def go() -> list[Transcript]:
        up_port, port = free_port(), free_port()
        upstream = AsyncTcpServer("127.0.0.1", up_port)
        await upstream.start(FakeASR)
        log = tmp_path / "proxy.log"
        proc = _proxy(registry, port, up_port, log, "--tag-text")
        try:
            await _wait_for_port(proc, port, log)
            async with AsyncTcpClient("127.0.0.1", port, read_timeout=60) as client:
                return [Transcript.from_event((await utterance(client, w))[0]) for w in waves]
        finally:
            proc.terminate()
            proc.wait(15)
            await upstream.stop()

    alice, bob, stranger = run(go())  # type: ignore[misc]
    assert alice.text.startswith("[alice] heard ") and alice.context["speaker"] == "alice"
    assert bob.text.startswith("[bob] heard ") and bob.context["speaker"] == "bob"
    assert stranger.text.startswith("heard ") and stranger.context["speaker"] == "<unknown>"
    for t in (alice, bob):
        assert t.context["confidence"] >= t.context["threshold"]
    assert stranger.context["confidence"] < stranger.context["threshold"]


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "speakerrpl", "wyoming", *args],
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    missing = cli("--registry", str(tmp_path / "none.db"), "--upstream", "tcp://127.0.0.1:1")
    assert missing.returncode == 2 and "no registry" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    (tmp_path / "r.db").write_bytes(b"")
    bad = cli("--registry", str(tmp_path / "r.db"), "--upstream", "http://x")
    assert bad.returncode == 2 and "tcp://HOST:PORT" in bad.stderr
    port = cli("--registry", str(tmp_path / "r.db"), "--upstream", "tcp://h:1", "--uri", "tcp://h")
    assert port.returncode == 2 and "needs a host and a port" in port.stderr
