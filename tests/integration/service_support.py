"""Shared helpers of the service tests: real and espeak-ng voices, a live server subprocess."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

PS_DATA = Path("/usr/share/pocketsphinx/test/data")
API_KEY = "test-key-0123456789"
# Small but real SpeakerRPL v2 ensembles keep refits around a second on a busy 2-core machine.
FAST_PARAMS = '{"n_models": 10, "n_calibration": 6}'
SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "She sells sea shells by the sea shore every summer morning.",
    "Please call me back when you have a moment to talk about the plan.",
    "A large number of people gathered in the square to hear the music.",
    "Turn on the kitchen lights and set the timer for twenty minutes.",
)
CAROL_VOICE = "en+Andy"  # the third enrolled speaker (espeak-ng)
UNKNOWN_VOICES = ("en-us+f3", "en-gb-scotland+m5")  # never enrolled, not in the pool
POOL_VARIANTS = ("m1", "m2", "m4", "m6", "f1", "f2", "f4", "Alex", "Annie", "Ed", "Mike",
                 "Gene", "Jacky", "Lee", "Linda", "Michael", "john", "max")  # fmt: skip


def need(path: Path | str, what: str) -> None:
    """Skip the test when a system fixture is missing (scripts/install_system_deps.sh)."""
    if not (Path(path).exists() or shutil.which(str(path))):
        pytest.skip(f"{what} is not installed; run scripts/install_system_deps.sh")


def real_clips() -> dict[str, list[Path]]:
    """Two real people of pocketsphinx-testdata: the 'cards' talker and the librivox reader."""
    need(PS_DATA, "pocketsphinx-testdata")
    cards = sorted((PS_DATA / "cards").glob("*.wav"))
    books = sorted((PS_DATA / "librivox").glob("*.wav"))
    return {"alice": cards[:4], "alice_test": cards[4:], "bob": books[::2], "bob_test": books[1::2]}


def espeak(voice: str, text: str, out: Path) -> Path:
    """Synthesise ``text`` with espeak-ng's ``voice`` into ``out`` (a WAV file)."""
    need("espeak-ng", "espeak-ng")
    if not out.exists():
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(out), text], check=True)
    return out


def synthetic_clips(root: Path) -> dict[str, list[Path]]:
    """Carol (enrolled) and two unknown voices, all espeak-ng."""
    root.mkdir(parents=True, exist_ok=True)
    carol = [espeak(CAROL_VOICE, t, root / f"carol{i}.wav") for i, t in enumerate(SENTENCES)]
    unknown = [
        espeak(v, SENTENCES[4], root / f"unknown{i}.wav") for i, v in enumerate(UNKNOWN_VOICES)
    ]
    return {"carol": carol[:4], "carol_test": carol[4:], "unknown": unknown}


def build_pool(root: Path) -> Path:
    """A small negative pool (espeak-ng variants, 2 clips each) as an embeddings ``.npz``."""
    from speakerrpl.audio import load_audio
    from speakerrpl.embeddings import EmbeddingSet
    from speakerrpl.frontends import get_frontend

    root.mkdir(parents=True, exist_ok=True)
    paths, voices = [], []
    for v in POOL_VARIANTS:
        for i in (0, 2):
            paths.append(espeak(f"en+{v}", SENTENCES[i], root / f"pool_{v}_{i}.wav"))
            voices.append(f"espeak-{v}")
    emb = get_frontend("campplus").embed([load_audio(p) for p in paths])
    out = root / "pool.npz"
    EmbeddingSet(emb, [p.stem for p in paths], voices, "campplus").save(out)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def upload(paths: list[Path]) -> list[tuple[str, tuple[str, bytes, str]]]:
    """Multipart ``file`` fields for httpx."""
    return [("file", (p.name, p.read_bytes(), "audio/wav")) for p in paths]


@dataclass
class Server:
    """``speakerrpl serve`` in a subprocess on a free loopback port."""

    registry: Path
    pool: Path
    params: str = FAST_PARAMS
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.registry.with_suffix(f".{self.port}.log")

    def start(self, timeout: float = 60.0) -> Server:
        self.port = free_port()
        env = dict(os.environ, SPEAKERRPL_API_KEY=API_KEY, SPEAKERRPL_POOL=str(self.pool),
                   SPEAKERRPL_IDENTIFIER_PARAMS=self.params, OMP_NUM_THREADS="1")  # fmt: skip
        env.update(self.extra_env)
        cmd = [sys.executable, "-m", "speakerrpl", "-v", "serve", "--registry", str(self.registry),
               "--port", str(self.port), "--log-level", "warning"]  # fmt: skip
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not start in {timeout} s:\n{self.log.read_text()}")

    def wait_for_log(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log.read_text(errors="replace"):
                return
            time.sleep(0.02)
        raise AssertionError(f"{text!r} not in the server log:\n{self.log.read_text()}")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, key: str | None = API_KEY) -> httpx.Client:
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)


CACHE_VERSION = "v2"  # bump when the voices, the pool or FAST_PARAMS change


@pytest.fixture(scope="session")
def service_dir() -> Path:
    """Cache of generated audio, the pool and a base registry (data/ is git-ignored)."""
    root = Path(__file__).resolve().parents[2] / "data" / "cache" / f"service_tests_{CACHE_VERSION}"
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(scope="session")
def clips(service_dir: Path) -> dict[str, list[Path]]:
    """alice/bob (real people), carol (espeak-ng), unknown voices; enroll and test splits."""
    return {**real_clips(), **synthetic_clips(service_dir / "voices")}


@pytest.fixture(scope="session")
def pool_file(service_dir: Path) -> Path:
    out = service_dir / "pool" / "pool.npz"
    return out if out.exists() else build_pool(service_dir / "pool")


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, pool_file: Path) -> Iterator[None]:
    """The CLI's environment for these tests: the shared pool and the fast recipe."""
    import torch

    monkeypatch.setenv("SPEAKERRPL_POOL", str(pool_file))
    monkeypatch.setenv("SPEAKERRPL_IDENTIFIER_PARAMS", FAST_PARAMS)
    threads = torch.get_num_threads()  # the CLI sets 1 thread, process-wide
    yield
    torch.set_num_threads(threads)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """``speakerrpl ARGV`` in this process: (exit code, stdout, stderr)."""
    from speakerrpl.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="session")
def base_registry(service_dir: Path, clips: dict[str, list[Path]], pool_file: Path) -> Path:
    """A registry with alice and bob enrolled (in-process engine, fast settings)."""
    import json

    from speakerrpl.audio import load_audio
    from speakerrpl.identifier.persistence import FORMAT
    from speakerrpl.service.engine import SpeakerEngine
    from speakerrpl.service.registry import SCHEMA_VERSION
    from speakerrpl.service.settings import ServiceSettings

    # a saved-model format or registry schema change rebuilds it (an older one would be
    # migrated, i.e. written, by the read commands under test)
    path = service_dir / f"base-format{FORMAT}-schema{SCHEMA_VERSION}.db"
    if not path.exists():
        settings = ServiceSettings(
            identifier_params=json.loads(FAST_PARAMS), pool_path=str(pool_file)
        )
        engine = SpeakerEngine(service_dir / "building.db", settings)
        for name in ("alice", "bob"):
            engine.enroll(name, [load_audio(p) for p in clips[name]])
        copy_registry(service_dir / "building.db", path)
    return path


def copy_registry(src: Path, dst: Path) -> Path:
    """Copy a registry file consistently (SQLite backup API)."""
    import sqlite3

    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    return dst
