"""Plain records of the speaker registry, and the speaker-name rule."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from speakerrpl.errors import InvalidSpeakerNameError, RegistryError

__all__ = [
    "MAX_NAME_LENGTH",
    "ConcurrentChangeError",
    "Enrollment",
    "ModelRecord",
    "Snapshot",
    "validate_speaker_name",
]

MAX_NAME_LENGTH = 64
_NAME_RE = re.compile(r"[^\W_](?:[\w.\- ]*[\w.\-])?")  # used with fullmatch: no "$" newline


class ConcurrentChangeError(RegistryError):
    """The registry changed between the snapshot a model was fitted on and the commit."""


def validate_speaker_name(name: object) -> str:
    """Return ``name`` (NFC-normalised) if it is a valid speaker name, else raise.

    Valid: 1 to 64 characters; Unicode letters and digits, ``_``, ``-``, ``.`` and single inner
    spaces; starts with a letter or digit, does not end with a space. So a name can never be a
    path (no ``/``, ``\\``, leading ``.``), a control sequence, or the ``<unknown>`` label.

    Example:
        >>> validate_speaker_name("Zoë Smith-Jones")
        'Zoë Smith-Jones'
        >>> validate_speaker_name("../etc")
        Traceback (most recent call last):
        ...
        speakerrpl.errors.InvalidSpeakerNameError: invalid speaker name '../etc': ...
    """
    if not isinstance(name, str):
        raise InvalidSpeakerNameError(f"speaker name must be a string, got {type(name).__name__}")
    norm = unicodedata.normalize("NFC", name)
    if not 1 <= len(norm) <= MAX_NAME_LENGTH or not _NAME_RE.fullmatch(norm) or "  " in norm:
        raise InvalidSpeakerNameError(
            f"invalid speaker name {name[:80]!r}: use 1-{MAX_NAME_LENGTH} letters, digits, "
            "'_', '-', '.' or single spaces, starting with a letter or digit"
        )
    return norm


@dataclass(frozen=True)
class Enrollment:
    """One enrollment utterance: its embedding and, optionally, its audio (16-bit PCM)."""

    embedding: np.ndarray
    audio: bytes | None = None
    source: str | None = None


@dataclass(frozen=True)
class ModelRecord:
    """The committed model: ``kind`` is ``"identifier"``, ``"cosine"`` or ``"empty"``."""

    version: int
    data_version: int
    kind: str
    classes: tuple[str, ...]
    info: Mapping[str, object] = field(default_factory=dict)
    files: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class Snapshot:
    """Committed enrollment data at one ``data_version`` (what a refit is computed from)."""

    data_version: int
    frontend: str | None
    embeddings: Mapping[str, np.ndarray]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(X, y)``: stacked embeddings and their speaker names."""
        names = sorted(self.embeddings)
        if not names:
            return np.zeros((0, 0), np.float32), np.zeros(0, dtype=object)
        x = np.concatenate([self.embeddings[n] for n in names]).astype(np.float32)
        y = np.concatenate([[n] * len(self.embeddings[n]) for n in names]).astype(object)
        return x, y
