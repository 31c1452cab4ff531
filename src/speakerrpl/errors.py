"""The one exception hierarchy of speakerrpl.

Every error the library raises on bad input derives from :class:`SpeakerRPLError`, so callers
(the CLI, the REST service) can turn it into a one-line message or a 4xx answer.
"""

from __future__ import annotations


class SpeakerRPLError(Exception):
    """Base class of every error raised by speakerrpl on bad input or state."""


class InvalidInputError(SpeakerRPLError, ValueError):
    """An argument has the wrong shape, type, value or content."""


class NotFittedError(SpeakerRPLError, RuntimeError):
    """An estimator was used before ``fit``."""


class MissingDependencyError(SpeakerRPLError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


# --- audio -------------------------------------------------------------------------------


class AudioError(InvalidInputError):
    """Audio could not be turned into a usable 16 kHz mono waveform."""


class AudioReadError(AudioError):
    """The file is missing, unreadable, or not audio."""


class AudioTooShortError(AudioError):
    """The audio is empty or holds less speech than the configured minimum."""


class AudioNonFiniteError(AudioError):
    """The audio holds NaN or infinite samples."""


class AudioTooLongError(AudioError):
    """The audio is longer than the configured cap."""


class AudioTooLargeError(AudioError):
    """The audio header announces more decoding work (channels x rate x frames) than allowed."""


# --- models ------------------------------------------------------------------------------


class FrontendError(SpeakerRPLError):
    """A speaker-embedding frontend could not be created or run."""


class UnknownFrontendError(FrontendError, KeyError):
    """The frontend name is not in the registry; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelLoadError(FrontendError):
    """Model weights are missing, malformed, or do not match the expected architecture."""


class ModelMismatchError(SpeakerRPLError, ValueError):
    """Saved state does not match what it is used with (frontend, dimension, version)."""


# --- data --------------------------------------------------------------------------------


class DataError(SpeakerRPLError):
    """A corpus, manifest, protocol or embedding file is missing or malformed."""


class CorpusLayoutError(DataError):
    """A corpus directory does not have the expected layout (the message names it)."""


class ProtocolError(DataError):
    """A protocol file is malformed or does not match the embeddings/corpus it is used with."""


class EmbeddingFileError(DataError):
    """An embeddings ``.npz`` file is missing or malformed."""


class TTSError(DataError):
    """A text-to-speech engine failed or is not installed."""


# --- registry / service ------------------------------------------------------------------


class RegistryError(SpeakerRPLError):
    """The persistent speaker registry refused an operation."""


class InvalidSpeakerNameError(RegistryError, InvalidInputError):
    """A speaker name is empty, too long, or has characters outside the allowed set."""


class RegistryUnavailableError(RegistryError):
    """The registry cannot be written now (disk full, read-only file or mount, I/O error)."""


class RegistryReadOnlyError(RegistryUnavailableError):
    """The registry is open read-only: it serves identification but takes no changes."""


class CorruptModelError(RegistryError):
    """The stored model cannot be loaded; the message names the command that refits it."""


class IdentificationPausedError(RegistryError):
    """No usable model: identification is paused until a refit succeeds."""


class ServiceBusyError(SpeakerRPLError):
    """Every decode/inference slot is taken; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SpeakerNotFoundError(RegistryError, KeyError):
    """No enrolled speaker has that name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
