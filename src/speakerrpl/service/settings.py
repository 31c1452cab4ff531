"""Settings of the speaker registry engine and the REST service.

One frozen dataclass, validated in ``__post_init__``. :meth:`ServiceSettings.from_env` reads the
``SPEAKERRPL_*`` environment variables (the CLI and the service start from it), so a test can
make refits fast without touching the defaults, which stay the real method::

    SPEAKERRPL_IDENTIFIER_PARAMS='{"n_models": 4, "selection_r": 1, "epochs": 10}'

"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from speakerrpl.errors import InvalidInputError
from speakerrpl.nn.methods import DEFAULT_METHOD

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
        number = float(value)
    except ValueError:
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InvalidInputError(f"{name} must be a finite number, got {value!r}")
    return number


def _env_int(value: str, name: str) -> int:
    number = _env_float(value, name)
    if number != int(number):
        raise InvalidInputError(f"{name} must be a whole number, got {value!r}")
    return int(number)


def _positive(value: float, name: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise InvalidInputError(f"{name} must be a finite number > 0, got {value!r}")


def check_api_key(key: str) -> None:
    """Refuse keys that could never authenticate: HTTP headers carry printable ASCII only.

    Example:
        >>> check_api_key("pässwört-1234")
        Traceback (most recent call last):
        ...
        speakerrpl.errors.InvalidInputError: the API key must be printable ASCII ...
    """
    if len(key) < 8:
        raise InvalidInputError("the API key must be at least 8 characters long")
    if not all(33 <= ord(c) <= 126 for c in key):
        raise InvalidInputError(
            "the API key must be printable ASCII without spaces (HTTP headers cannot carry "
            "other characters reliably); generate one with "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


@dataclass(frozen=True)
class ServiceSettings:
    """How the registry engine fits, and what the REST service accepts.

    Args:
        frontend: speaker-embedding frontend name (``speakerrpl.frontends.get_frontend``).
        method: identifier method passed to ``OpenSetSpeakerIdentifier`` (default: the
            library's default method, with its cosine blend where it was measured).
        identifier_params: extra keyword arguments of the identifier (e.g. fewer members for
            tests); empty means the library defaults, i.e. the real method. Validated here,
            at start-up, not at the first refit.
        far: false-acceptance rate the threshold is calibrated to at every refit.
        min_clips: fewest enrollment clips a speaker may have (the ensemble needs 2).
        keep_audio: also store the enrollment audio (16-bit PCM) in the registry. Off by
            default: voiceprints and recordings are biometric data.
        api_key: key required by every endpoint that reveals, uses or changes voiceprints
            (printable ASCII, >= 8 characters); ``None``: changes are refused (403) and the
            server only binds to loopback (unless ``serve --insecure``).
        public_identify: with a key configured, let callers without the key use
            ``POST /identify`` (answers without other people's scores or ``best_match``).
        max_upload_bytes: largest accepted request body (enforced while it streams in).
        max_inflight_bytes: most request-body bytes held by all requests in progress together
            (more answer 503 with ``Retry-After``): bounds memory under many uploads.
        body_timeout_seconds: longest time a request body may take to arrive.
        max_clip_seconds: longest accepted clip.
        max_request_seconds: most audio seconds in one request (all clips together).
        max_clips: most clips in one request.
        random_state: seed of every refit (refitting the same data gives the same model).
        torch_threads: intra-op threads the CLI and ``serve`` give torch (0: leave torch's
            default). 1 is fastest here: the adapters are small, and the service gets its
            parallelism from concurrent requests.
        inference_slots: most requests decoding audio (and enrollments embedding it) at once,
            process-wide (each may hold ~250 MB of CAM++ activations for a 60 s clip).
        slot_wait_seconds: how long a request waits for a slot before a 503 (Retry-After).
        batch_max_clips: most clips of concurrent identify requests embedded by one call of the
            frontend (:mod:`speakerrpl.service.batcher`); 1 embeds each clip alone.
        batch_wait_seconds: longest time the oldest waiting identify request waits for others
            to join its batch (0, the default: take only what is already waiting; on the CPU a
            batched forward pass costs as much per clip as single ones, so waiting only adds
            latency).
        batch_workers: threads running batches at once (each a frontend call; one per core).
        batch_queue_seconds: most audio waiting for the batcher (64 KB per second once
            decoded); beyond, 503 (Retry-After). At least ``max_request_seconds``, so that one
            request always fits an empty queue.
        min_enroll_speech: seconds of speech (after voice activity detection, see
            :mod:`speakerrpl.service.hygiene`) each enrollment clip needs; 0 turns it off.
        pool_path: an embeddings ``.npz`` (``speakerrpl.embeddings.EmbeddingSet``) used as the
            negative pool instead of ``speakerrpl.synth.pool.default_pool``.
        warm_updates: an enrollment or removal updates the stored model warm
            (``OpenSetSpeakerIdentifier.update``: seconds, not a cold retrain; a cold fit
            after ``MAX_WARM_UPDATES`` in a row, on a settings change or when the update
            fails). ``False``: every change refits cold, so no model weight was ever trained
            with a removed person's clips (a warm removal keeps adapter layers they shaped).
        enrollment_copies: multi-condition enrollment: each enrollment clip is also passed
            through seven degraded channels (:mod:`speakerrpl.synth.enrollment_copies`) and
            the copies' embeddings are stored with it and enter the cosine centroids
            (``OpenSetSpeakerIdentifier.fit(copies=)``), where the identifier settings use
            them (:attr:`~speakerrpl.identifier.settings.IdentifierSettings.takes_copies`:
            the default and ``cosine`` on CAM++). A household is fitted with copies only when
            every clip has them (clips enrolled before, or imported voiceprints, have none).

    Example:
        >>> ServiceSettings(far=0.05).far
        0.05
    """

    frontend: str = "campplus"
    method: str = DEFAULT_METHOD
    identifier_params: Mapping[str, Any] = field(default_factory=dict)
    far: float = 0.01
    min_clips: int = 2
    keep_audio: bool = False
    api_key: str | None = None
    public_identify: bool = False
    max_upload_bytes: int = 20_000_000
    max_inflight_bytes: int = 100_000_000
    body_timeout_seconds: float = 60.0
    max_clip_seconds: float = 60.0
    max_request_seconds: float = 180.0
    max_clips: int = 16
    random_state: int = 0
    pool_path: str | None = None
    torch_threads: int = 1
    inference_slots: int = 2
    slot_wait_seconds: float = 5.0
    batch_max_clips: int = 4
    batch_wait_seconds: float = 0.0
    batch_queue_seconds: float = 600.0
    batch_workers: int = 2
    min_enroll_speech: float = 0.5
    warm_updates: bool = True
    enrollment_copies: bool = True

    def __post_init__(self) -> None:
        if not (isinstance(self.far, (int, float)) and 0.0 < self.far < 1.0):
            raise InvalidInputError(f"far must be in (0, 1), got {self.far!r}")
        if not isinstance(self.max_upload_bytes, int) or self.max_upload_bytes < 1024:
            raise InvalidInputError(
                f"max_upload_bytes must be an integer >= 1024, got {self.max_upload_bytes!r}"
            )
        if not isinstance(self.max_inflight_bytes, int) or (
            self.max_inflight_bytes < self.max_upload_bytes
        ):
            raise InvalidInputError(
                f"max_inflight_bytes must be >= max_upload_bytes, got {self.max_inflight_bytes!r}"
            )
        for name in ("max_clip_seconds", "max_request_seconds", "body_timeout_seconds"):
            _positive(getattr(self, name), name)
        if not (math.isfinite(self.min_enroll_speech) and self.min_enroll_speech >= 0):
            raise InvalidInputError(f"min_enroll_speech must be >= 0, got {self.min_enroll_speech}")
        if not (math.isfinite(self.slot_wait_seconds) and self.slot_wait_seconds >= 0):
            raise InvalidInputError(f"slot_wait_seconds must be >= 0, got {self.slot_wait_seconds}")
        for name, low in (("min_clips", 1), ("inference_slots", 1), ("torch_threads", 0),
                          ("max_clips", 1), ("batch_max_clips", 1), ("batch_workers", 1),
                          ):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise InvalidInputError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.api_key is not None:
            check_api_key(self.api_key)
        if not isinstance(self.identifier_params, Mapping):
            raise InvalidInputError(
                f"identifier_params must be a mapping, got {type(self.identifier_params).__name__}"
            )
        _check_identifier_params(self.method, self.identifier_params)
        _check_batching(self)

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
        ``SPEAKERRPL_PUBLIC_IDENTIFY``, ``SPEAKERRPL_MAX_UPLOAD_BYTES``,
        ``SPEAKERRPL_MAX_INFLIGHT_BYTES``, ``SPEAKERRPL_BODY_TIMEOUT``,
        ``SPEAKERRPL_MAX_CLIP_SECONDS``,
        ``SPEAKERRPL_MAX_REQUEST_SECONDS``, ``SPEAKERRPL_POOL`` (pool ``.npz``),
        ``SPEAKERRPL_TORCH_THREADS``, ``SPEAKERRPL_INFERENCE_SLOTS``,
        ``SPEAKERRPL_SLOT_WAIT``, ``SPEAKERRPL_BATCH_MAX_CLIPS``, ``SPEAKERRPL_BATCH_WAIT``,
        ``SPEAKERRPL_BATCH_QUEUE``, ``SPEAKERRPL_BATCH_WORKERS``,
        ``SPEAKERRPL_MIN_ENROLL_SPEECH``, ``SPEAKERRPL_WARM_UPDATES``. Every value is checked:
        ``nan``, ``inf`` or a fraction where a whole number is expected are errors.

        Example:
            >>> ServiceSettings.from_env({"SPEAKERRPL_FAR": "0.02"}).far
            0.02
        """
        env = os.environ if environ is None else environ
        kw: dict[str, Any] = {}
        for var, (name, parse) in _ENV.items():
            if env.get(var, "").strip():
                kw[name] = parse(env[var], var)
        key = env.get("SPEAKERRPL_API_KEY") or None
        if key is None and env.get("SPEAKERRPL_API_KEY_FILE"):
            key = read_key_file(env["SPEAKERRPL_API_KEY_FILE"])
        kw["api_key"] = key
        return cls(**kw)


def _check_batching(s: ServiceSettings) -> None:
    queue = s.batch_queue_seconds
    if not (math.isfinite(queue) and queue >= s.max_request_seconds):
        raise InvalidInputError(
            f"batch_queue_seconds must be >= max_request_seconds ({s.max_request_seconds:g}), "
            f"got {queue}"
        )
    if not (math.isfinite(s.batch_wait_seconds) and 0 <= s.batch_wait_seconds <= 1):
        raise InvalidInputError(f"batch_wait_seconds must be in [0, 1], got {s.batch_wait_seconds}")


def _text(value: str, name: str) -> str:
    return value.strip()


def _check_identifier_params(method: str, params: Mapping[str, Any]) -> None:
    from speakerrpl.identifier.settings import IdentifierSettings

    try:
        IdentifierSettings.from_dict({"method": method, **dict(params)})
    except InvalidInputError as exc:
        raise InvalidInputError(f"SPEAKERRPL_IDENTIFIER_PARAMS / method: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"SPEAKERRPL_IDENTIFIER_PARAMS has a bad value: {exc}") from None


def _parse_params(text: str, name: str = "SPEAKERRPL_IDENTIFIER_PARAMS") -> dict[str, Any]:
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"SPEAKERRPL_IDENTIFIER_PARAMS is not valid JSON: {exc}") from None
    if not isinstance(params, dict):
        raise InvalidInputError("SPEAKERRPL_IDENTIFIER_PARAMS must be a JSON object")
    return params


_ENV: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "SPEAKERRPL_POOL": ("pool_path", _text),
    "SPEAKERRPL_TORCH_THREADS": ("torch_threads", _env_int),
    "SPEAKERRPL_INFERENCE_SLOTS": ("inference_slots", _env_int),
    "SPEAKERRPL_SLOT_WAIT": ("slot_wait_seconds", _env_float),
    "SPEAKERRPL_BATCH_MAX_CLIPS": ("batch_max_clips", _env_int),
    "SPEAKERRPL_BATCH_WAIT": ("batch_wait_seconds", _env_float),
    "SPEAKERRPL_BATCH_QUEUE": ("batch_queue_seconds", _env_float),
    "SPEAKERRPL_BATCH_WORKERS": ("batch_workers", _env_int),
    "SPEAKERRPL_FRONTEND": ("frontend", _text),
    "SPEAKERRPL_METHOD": ("method", _text),
    "SPEAKERRPL_IDENTIFIER_PARAMS": ("identifier_params", _parse_params),
    "SPEAKERRPL_FAR": ("far", _env_float),
    "SPEAKERRPL_KEEP_AUDIO": ("keep_audio", _env_bool),
    "SPEAKERRPL_PUBLIC_IDENTIFY": ("public_identify", _env_bool),
    "SPEAKERRPL_MAX_UPLOAD_BYTES": ("max_upload_bytes", _env_int),
    "SPEAKERRPL_MAX_INFLIGHT_BYTES": ("max_inflight_bytes", _env_int),
    "SPEAKERRPL_BODY_TIMEOUT": ("body_timeout_seconds", _env_float),
    "SPEAKERRPL_MAX_CLIP_SECONDS": ("max_clip_seconds", _env_float),
    "SPEAKERRPL_MAX_REQUEST_SECONDS": ("max_request_seconds", _env_float),
    "SPEAKERRPL_MIN_ENROLL_SPEECH": ("min_enroll_speech", _env_float),
    "SPEAKERRPL_WARM_UPDATES": ("warm_updates", _env_bool),
    "SPEAKERRPL_ENROLLMENT_COPIES": ("enrollment_copies", _env_bool),
}


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
