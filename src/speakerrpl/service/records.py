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
    "name_key",
    "validate_speaker_name",
]

MAX_NAME_LENGTH = 64
_NAME_RE = re.compile(r"[^\W_](?:[\w.\- ]*[\w.\-])?")  # used with fullmatch: no "$" newline


class ConcurrentChangeError(RegistryError):
    """The registry changed between the snapshot a model was fitted on and the commit."""


# Letters of these scripts look alike (Latin a, Cyrillic а, Greek α): a name may use one only.
_CONFUSABLE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")
# A small skeleton table (after casefold): Cyrillic and Greek letters drawn like Latin ones.
_SKELETON = str.maketrans(
    "аеорсухіјѕԁһԛԝӏвкмнтгьѵαβεικνορτυχ",
    "aeopcyxijsdhqwlbkmhtrbvabeiknoptux",
)


def _scripts(name: str) -> set[str]:
    return {
        unicodedata.name(c, "?").split(" ")[0] for c in name if unicodedata.category(c)[0] == "L"
    }


def name_key(name: str) -> str:
    """The uniqueness key of a (validated) name: casefolded, look-alike letters mapped to Latin.

    Two names with the same key are one person to the registry (``Alice``/``alice``,
    ``alice``/``аlice`` with a Cyrillic ``а``).

    Example:
        >>> name_key("Аlice") == name_key("alice")  # Cyrillic capital A
        True
    """
    return unicodedata.normalize("NFKC", name).casefold().translate(_SKELETON)


def validate_speaker_name(name: object) -> str:
    """Return ``name`` (NFKC-normalised) if it is a valid speaker name, else raise.

    Valid: 1 to 64 characters; Unicode letters and digits, ``_``, ``-``, ``.`` and single inner
    spaces; starts with a letter or digit, does not end with a space; letters from at most one
    of the look-alike scripts Latin, Cyrillic and Greek. So a name can never be a path (no
    ``/``, ``\\``, leading ``.``), a control sequence, the ``<unknown>`` label, or a disguised
    twin of another name (fullwidth ``ａｌｉｃｅ`` becomes ``alice``; ``аlice`` with a
    Cyrillic ``а`` is refused).

    Example:
        >>> validate_speaker_name("Zoë Smith-Jones")
        'Zoë Smith-Jones'
        >>> validate_speaker_name("ａｌｉｃｅ")
        'alice'
        >>> validate_speaker_name("../etc")
        Traceback (most recent call last):
        ...
        speakerrpl.errors.InvalidSpeakerNameError: invalid speaker name '../etc': ...
    """
    if not isinstance(name, str):
        raise InvalidSpeakerNameError(f"speaker name must be a string, got {type(name).__name__}")
    norm = unicodedata.normalize("NFKC", name)
    if not 1 <= len(norm) <= MAX_NAME_LENGTH or not _NAME_RE.fullmatch(norm) or "  " in norm:
        raise InvalidSpeakerNameError(
            f"invalid speaker name {name[:80]!r}: use 1-{MAX_NAME_LENGTH} letters, digits, "
            "'_', '-', '.' or single spaces, starting with a letter or digit"
        )
    mixed = sorted(_scripts(norm) & set(_CONFUSABLE_SCRIPTS))
    if len(mixed) > 1:
        raise InvalidSpeakerNameError(
            f"invalid speaker name {name[:80]!r}: it mixes {' and '.join(mixed)} letters, "
            "which look alike; write it in one script"
        )
    return norm


@dataclass(frozen=True)
class Enrollment:
    """One enrollment utterance: its embedding, optionally its audio (16-bit PCM), and the
    embeddings (C, D) of its channel copies (:mod:`speakerrpl.synth.enrollment_copies`)."""

    embedding: np.ndarray
    audio: bytes | None = None
    source: str | None = None
    sha256: str | None = None  # of the decoded clip: the same clip is never enrolled twice
    copies: np.ndarray | None = None


@dataclass(frozen=True)
class ModelRecord:
    """The committed model: ``kind`` is ``"identifier"``, ``"empty"`` or
    ``"paused"`` (no usable model until a refit succeeds)."""

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
    copies: Mapping[str, np.ndarray] = field(default_factory=dict)
    """The channel copies' embeddings of the speakers whose every clip has copies."""

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(X, y)``: stacked embeddings and their speaker names."""
        return _stacked(self.embeddings)

    def copy_arrays(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(X_copies, y_copies)`` when every speaker has channel copies, else ``None`` (the
        household is then fitted on its clips alone)."""
        if not self.embeddings or set(self.copies) != set(self.embeddings):
            return None
        return _stacked(self.copies)


def _stacked(groups: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    names = sorted(groups)
    if not names:
        return np.zeros((0, 0), np.float32), np.zeros(0, dtype=object)
    x = np.concatenate([groups[n] for n in names]).astype(np.float32)
    y = np.concatenate([[n] * len(groups[n]) for n in names]).astype(object)
    return x, y
