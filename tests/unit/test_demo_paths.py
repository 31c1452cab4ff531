"""``examples/demo.py`` writes only under gitignored data/ and results/ unless asked to."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo():
    spec = importlib.util.spec_from_file_location("speakerrpl_demo", ROOT / "examples" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ignored(path: Path) -> bool:
    rel = path.relative_to(ROOT)
    done = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", "-q", str(rel / "x.wav")], check=False
    )
    return done.returncode == 0


@pytest.mark.parametrize(("size", "full"), [("demo", False), ("demo", True), ("tiny", False)])
def test_default_outputs_are_gitignored_and_nothing_is_published(demo, size, full) -> None:
    data, results, docs = demo.output_paths(size, full, None, None, None)
    assert docs is None
    assert data.parent == ROOT / "data" and results.parent == ROOT / "results"
    if (ROOT / ".git").exists():
        assert _ignored(data) and _ignored(results)


def test_publishing_only_when_asked(demo, tmp_path) -> None:
    data, results, docs = demo.output_paths("tiny", False, str(tmp_path / "d"), None, "x/r.md")
    assert data == tmp_path / "d" and docs == Path("x/r.md")
    assert results == ROOT / "results" / "demo-tiny"


def test_make_demo_does_not_publish_but_make_docs_does() -> None:
    makefile = (ROOT / "Makefile").read_text()
    demo_recipe = makefile.split("\ndemo:")[1].split("\n\n")[0]
    docs_recipe = makefile.split("\ndocs:")[1].split("\n\n")[0]
    assert "--docs" not in demo_recipe and "docs/" not in demo_recipe
    assert "--docs docs/demo-results.md" in docs_recipe
