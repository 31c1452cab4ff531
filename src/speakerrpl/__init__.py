"""speakerrpl: few-shot open-set speaker identification (SpeakerRPL v2).

Enroll a handful of people from a few seconds of speech each, then say who is speaking, or
that it is a stranger.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["OpenSetSpeakerIdentifier", "__version__", "get_frontend"]


def __getattr__(name: str) -> Any:
    # Lazy re-exports keep `import speakerrpl` cheap (no torch import until needed).
    if name == "OpenSetSpeakerIdentifier":
        from speakerrpl.identifier import OpenSetSpeakerIdentifier

        return OpenSetSpeakerIdentifier
    if name == "get_frontend":
        from speakerrpl.frontends import get_frontend

        return get_frontend
    raise AttributeError(f"module 'speakerrpl' has no attribute {name!r}")
