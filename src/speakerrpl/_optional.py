"""Lazy imports of optional dependencies with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from speakerrpl.errors import MissingDependencyError


def require(module: str, extra: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``extra``.

    Args:
        module: dotted module name to import.
        extra: the ``speakerrpl[extra]`` that provides it.
        purpose: what it is needed for, shown in the message.

    Example:
        >>> require("json", extra="core").__name__
        'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f" (needed for {purpose})" if purpose else ""
        raise MissingDependencyError(
            f"optional dependency {module!r} is not installed{what}; "
            f"install it with: pip install 'speakerrpl[{extra}]'"
        ) from exc
