"""The package structure of docs/architecture.md: imports between packages point one way and
never reach into another package's private names."""

from __future__ import annotations

import ast
from pathlib import Path

import speakerrpl

ROOT = Path(speakerrpl.__file__).parent
SHARED = {"_optional"}  # the root package's own helper for optional extras, used by every stage


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""  # "" = the root facade (speakerrpl/__init__)


def _imports() -> list[tuple[str, str, list[str]]]:
    """(importing module, imported module, imported names) for every speakerrpl import."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        module = ".".join(("speakerrpl", *path.relative_to(ROOT).with_suffix("").parts))
        module = module.removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] == "speakerrpl":
                    found.append((module, node.module, [a.name for a in node.names]))
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("speakerrpl")]
                found += [(module, name, []) for name in names]
    return found


# top to bottom: a package imports only packages below it (so there are no cycles)
LAYERS = (
    "__main__", "cli", "wyoming", "streaming", "service", "diarization", "evaluation", "identifier",
    "synth",
    "embeddings", "nn", "frontends", "data", "vad", "decisions", "audio", "metrics", "vectors",
    "runtime", "_optional", "errors",
)  # fmt: skip


def test_imports_between_packages_point_down_the_layers() -> None:
    """The root facade (speakerrpl/__init__) re-exports lazily and is not a layer."""
    edges = {(_package(a), _package(b)) for a, b, _ in _imports()}
    edges = {(a, b) for a, b in edges if a and b and a != b}
    assert {p for e in edges for p in e} <= set(LAYERS)
    upward = sorted((a, b) for a, b in edges if LAYERS.index(a) > LAYERS.index(b))
    assert not upward


def test_no_private_names_across_packages() -> None:
    leaks = []
    for src, dst, names in _imports():
        if _package(src) == _package(dst) or _package(dst) in SHARED:
            continue
        private_module = any(p.startswith("_") for p in dst.split(".")[1:])
        private_names = [n for n in names if n.startswith("_") and not n.startswith("__")]
        if private_module or private_names:
            leaks.append((src, dst, private_names))
    assert not leaks


def test_no_merge_conflict_markers_in_sources_or_docs() -> None:
    """A conflict left inside a docstring still imports; this catches it."""
    repo = ROOT.parent.parent
    files = [*ROOT.rglob("*.py"), *(repo / "docs").glob("*.md"), repo / "README.md"]
    marked = [
        f"{path.name}:{n}"
        for path in files
        if path.is_file()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if line.startswith(("<<<<<<< ", ">>>>>>> ")) or line == "======="
    ]
    assert not marked
