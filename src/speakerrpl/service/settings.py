"""Settings of the speaker registry engine and the REST service.

One frozen dataclass, validated in ``__post_init__``. :meth:`ServiceSettings.from_env` reads the
``SPEAKERRPL_*`` environment variables (the CLI and the service start from it), so a test can
make refits fast without touching the defaults, which stay the real method::

    SPEAKERRPL_IDENTIFIER_PARAMS='{"n_models": 4, "selection_r": 1, "epochs": 10}'

"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from speakerrpl.errors import InvalidInputError

__all__ = ["ServiceSettings"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _env_bool(value: str, name: str) -> bool:
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise InvalidInputError(f"{name} must be a boolean (1/0, true/false), got {value!r}")


def _env_float(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from None


@dataclass(frozen=True)
class ServiceSettings:
    """How the registry engine fits, and what the REST service accepts.

    Args:
        frontend: speaker-embedding frontend name (``speakerrpl.frontends.get_frontend``).
        method: identifier method passed to ``OpenSetSpeakerIdentifier``.
        identifier_params: extra keyword arguments of the identifier (e.g. fewer members for
            tests); empty means the library defaults, i.e. the real method.
        far: false-acceptance rate the threshold is calibrated to at every refit.
        single_speaker_threshold: cosine threshold used while exactly one speaker is enrolled
            (the ensemble needs two targets).
        min_clips: fewest enrollment clips a speaker may have (the ensemble needs 2).
        keep_audio: also store the enrollment audio (16-bit PCM) in the registry. Off by
            default: voiceprints and recordings are biometric data.
        api_key: key required by mutating endpoints; ``None`` disables them (403).
        identify_requires_key: whether ``POST /identify`` also needs the key.
        max_upload_bytes: largest accepted request body.
        max_clip_seconds: longest accepted clip.
        max_clips: most clips in one request.
        random_state: seed of every refit (refitting the same data gives the same model).
        torch_threads: intra-op threads the CLI and ``serve`` give torch (0: leave torch's
            default). 1 is fastest here: the adapters are small, and the service gets its
            parallelism from concurrent requests.
        inference_slots: most requests embedding audio at once (0: unlimited). Bounding it
            did not help on the shared 2-core VM (see docs/performance.md), so it is off.
        pool_path: an embeddings ``.npz`` (``speakerrpl.embeddings.EmbeddingSet``) used as the
            negative pool instead of ``speakerrpl.synth.pool.default_pool``.

    Example:
        >>> ServiceSettings(far=0.05).far
        0.05
    """

    frontend: str = "campplus"
    method: str = "rpl_v2"
    identifier_params: Mapping[str, Any] = field(default_factory=dict)
    far: float = 0.01
    single_speaker_threshold: float = 0.5
    min_clips: int = 2
    keep_audio: bool = False
    api_key: str | None = None
    identify_requires_key: bool = False
    max_upload_bytes: int = 20_000_000
    max_clip_seconds: float = 60.0
    max_clips: int = 16
    random_state: int = 0
    pool_path: str | None = None
    torch_threads: int = 1
    inference_slots: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.far < 1.0:
            raise InvalidInputError(f"far must be in (0, 1), got {self.far!r}")
        if not -1.0 <= self.single_speaker_threshold <= 1.0:
            raise InvalidInputError(
                f"single_speaker_threshold must be in [-1, 1], got {self.single_speaker_threshold}"
            )
        if self.max_upload_bytes < 1024:
            raise InvalidInputError(
                f"max_upload_bytes must be >= 1024, got {self.max_upload_bytes}"
            )
        if self.max_clip_seconds <= 0:
            raise InvalidInputError(f"max_clip_seconds must be > 0, got {self.max_clip_seconds}")
        if self.min_clips < 1:
            raise InvalidInputError(f"min_clips must be >= 1, got {self.min_clips}")
        if self.inference_slots < 0:
            raise InvalidInputError(f"inference_slots must be >= 0, got {self.inference_slots}")
        if self.torch_threads < 0:
            raise InvalidInputError(f"torch_threads must be >= 0, got {self.torch_threads}")
        if self.max_clips < 1:
            raise InvalidInputError(f"max_clips must be >= 1, got {self.max_clips}")
        if self.api_key is not None and len(self.api_key) < 8:
            raise InvalidInputError("api_key must be at least 8 characters long")
        if not isinstance(self.identifier_params, Mapping):
            raise InvalidInputError(
                f"identifier_params must be a mapping, got {type(self.identifier_params).__name__}"
            )

    def with_overrides(self, **changes: Any) -> ServiceSettings:
        """Return a copy with ``changes`` applied (``None`` values are ignored).

        Example:
            >>> ServiceSettings().with_overrides(far=0.1, api_key=None).far
            0.1
        """
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        """Build settings from ``SPEAKERRPL_*`` environment variables.

        Recognised: ``SPEAKERRPL_FRONTEND``, ``SPEAKERRPL_METHOD``,
        ``SPEAKERRPL_IDENTIFIER_PARAMS`` (JSON object), ``SPEAKERRPL_FAR``,
        ``SPEAKERRPL_KEEP_AUDIO``, ``SPEAKERRPL_API_KEY``, ``SPEAKERRPL_API_KEY_FILE``,
        ``SPEAKERRPL_IDENTIFY_REQUIRES_KEY``, ``SPEAKERRPL_MAX_UPLOAD_BYTES``,
        ``SPEAKERRPL_MAX_CLIP_SECONDS``, ``SPEAKERRPL_POOL`` (pool ``.npz``),
        ``SPEAKERRPL_TORCH_THREADS``, ``SPEAKERRPL_INFERENCE_SLOTS``.

        Example:
            >>> ServiceSettings.from_env({"SPEAKERRPL_FAR": "0.02"}).far
            0.02
        """
        env = os.environ if environ is None else environ
        kw: dict[str, Any] = {}
        if env.get("SPEAKERRPL_POOL"):
            kw["pool_path"] = env["SPEAKERRPL_POOL"]
        if "SPEAKERRPL_TORCH_THREADS" in env:
            kw["torch_threads"] = int(
                _env_float(env["SPEAKERRPL_TORCH_THREADS"], "SPEAKERRPL_TORCH_THREADS")
            )
        if "SPEAKERRPL_INFERENCE_SLOTS" in env:
            slots = env["SPEAKERRPL_INFERENCE_SLOTS"]
            kw["inference_slots"] = int(_env_float(slots, "SPEAKERRPL_INFERENCE_SLOTS"))
        if "SPEAKERRPL_FRONTEND" in env:
            kw["frontend"] = env["SPEAKERRPL_FRONTEND"]
        if "SPEAKERRPL_METHOD" in env:
            kw["method"] = env["SPEAKERRPL_METHOD"]
        if env.get("SPEAKERRPL_IDENTIFIER_PARAMS"):
            kw["identifier_params"] = _parse_params(env["SPEAKERRPL_IDENTIFIER_PARAMS"])
        if "SPEAKERRPL_FAR" in env:
            kw["far"] = _env_float(env["SPEAKERRPL_FAR"], "SPEAKERRPL_FAR")
        if "SPEAKERRPL_KEEP_AUDIO" in env:
            kw["keep_audio"] = _env_bool(env["SPEAKERRPL_KEEP_AUDIO"], "SPEAKERRPL_KEEP_AUDIO")
        if "SPEAKERRPL_IDENTIFY_REQUIRES_KEY" in env:
            kw["identify_requires_key"] = _env_bool(
                env["SPEAKERRPL_IDENTIFY_REQUIRES_KEY"], "SPEAKERRPL_IDENTIFY_REQUIRES_KEY"
            )
        if "SPEAKERRPL_MAX_UPLOAD_BYTES" in env:
            kw["max_upload_bytes"] = int(
                _env_float(env["SPEAKERRPL_MAX_UPLOAD_BYTES"], "SPEAKERRPL_MAX_UPLOAD_BYTES")
            )
        if "SPEAKERRPL_MAX_CLIP_SECONDS" in env:
            kw["max_clip_seconds"] = _env_float(
                env["SPEAKERRPL_MAX_CLIP_SECONDS"], "SPEAKERRPL_MAX_CLIP_SECONDS"
            )
        key = env.get("SPEAKERRPL_API_KEY") or None
        if key is None and env.get("SPEAKERRPL_API_KEY_FILE"):
            key = read_key_file(env["SPEAKERRPL_API_KEY_FILE"])
        kw["api_key"] = key
        return cls(**kw)


def _parse_params(text: str) -> dict[str, Any]:
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"SPEAKERRPL_IDENTIFIER_PARAMS is not valid JSON: {exc}") from None
    if not isinstance(params, dict):
        raise InvalidInputError("SPEAKERRPL_IDENTIFIER_PARAMS must be a JSON object")
    return params


def read_key_file(path: str | Path) -> str:
    """Read an API key from the first line of a file (surrounding whitespace is dropped).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "key"
        >>> _ = p.write_text("s3cret-key-123\\n")
        >>> read_key_file(p)
        's3cret-key-123'
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"cannot read API key file {str(path)!r}: {exc}") from None
    key = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not key:
        raise InvalidInputError(f"API key file {str(path)!r} is empty")
    return key


def apply_torch_threads(settings: ServiceSettings) -> None:
    """Give torch ``settings.torch_threads`` intra-op threads (process-wide; entry points only)."""
    if settings.torch_threads > 0:
        import torch

        torch.set_num_threads(settings.torch_threads)
