"""``speakerrpl serve``: run the REST service (needs the ``service`` extra).

Start-up checks everything before listening: settings (``SPEAKERRPL_*``, flags), the port,
the host (no key: loopback only, unless ``--insecure``), the registry and its stored model
(a corrupt one stops the server with the command that repairs it). Each failure is one line
on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import math
import socket
from typing import Any

from speakerrpl.errors import InvalidInputError

__all__ = ["bound_malloc", "check_listen", "register"]

logger = logging.getLogger(__name__)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen(host: str, port: int, has_key: bool, insecure: bool) -> None:
    """Refuse a bad port, a port in use, or a keyless non-loopback host without ``insecure``.

    Example:
        >>> check_listen("0.0.0.0", 8080, has_key=False, insecure=False)
        Traceback (most recent call last):
        ...
        speakerrpl.errors.InvalidInputError: refusing to serve voiceprints on 0.0.0.0 ...
    """
    if not 0 < port < 65536:
        raise InvalidInputError(f"--port must be in 1..65535, got {port}")
    if not has_key and not _is_loopback(host) and not insecure:
        raise InvalidInputError(
            f"refusing to serve voiceprints on {host} without an API key: set "
            "SPEAKERRPL_API_KEY (or --api-key-file), bind to 127.0.0.1, or pass --insecure"
        )
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(infos[0][4])
    except OSError as exc:
        raise InvalidInputError(f"cannot listen on {host}:{port}: {exc}") from None


def bound_malloc(threshold: int = 1 << 20) -> bool:
    """Fix glibc's mmap threshold so large freed blocks go back to the OS (glibc only).

    glibc raises the threshold after each large free, so later large blocks (CAM++'s activations
    for a long clip, ~4-5 MB per second of audio) come from per-thread arenas that keep the
    memory. Measured with ``benchmarks/bench_hostile_uploads.py`` (one inference slot): peak
    server RSS 1,141 MiB with the dynamic threshold, 622 MiB with it fixed at 1 MiB.
    Returns whether it was applied.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_mmap_threshold = -3  # <malloc.h>
    return bool(mallopt(m_mmap_threshold, threshold))


def _upload_bytes(mb: float | None) -> int | None:
    if mb is None:
        return None
    if not (math.isfinite(mb) and mb > 0):
        raise InvalidInputError(f"--max-upload-mb must be a finite number > 0, got {mb}")
    return int(mb * 1_000_000)


def _serve(args: argparse.Namespace) -> int:
    from speakerrpl._optional import require
    from speakerrpl.service.app import create_app
    from speakerrpl.service.engine import SpeakerEngine
    from speakerrpl.service.settings import ServiceSettings, apply_torch_threads, read_key_file

    uvicorn = require("uvicorn", "service", "the REST service")
    settings = ServiceSettings.from_env().with_overrides(
        api_key=read_key_file(args.api_key_file) if args.api_key_file else None,
        public_identify=True if args.public_identify else None,
        max_upload_bytes=_upload_bytes(args.max_upload_mb),
        max_clip_seconds=args.max_clip_seconds,
    )
    check_listen(args.host, args.port, settings.api_key is not None, args.insecure)
    if settings.api_key is None:
        logger.warning("no API key configured: enrollment and removal are disabled (403)")
    apply_torch_threads(settings)
    bound_malloc()
    engine = SpeakerEngine(args.registry, settings, read_only=True if args.read_only else None)
    engine.warm_up()  # a corrupt stored model stops here, naming the command that refits it
    uvicorn.run(create_app(engine), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def register(subparsers: Any) -> None:
    """Add the ``serve`` subcommand."""
    p = subparsers.add_parser("serve", help="run the REST service (enroll/identify over HTTP)")
    p.add_argument("--registry", required=True, help="speaker registry file (SQLite)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback --host without an API key")  # fmt: skip
    p.add_argument("--api-key-file", default=None, help="file holding the API key "
                   "(else SPEAKERRPL_API_KEY / SPEAKERRPL_API_KEY_FILE)")  # fmt: skip
    p.add_argument("--public-identify", action="store_true",
                   help="with a key: callers without it may identify (redacted)")  # fmt: skip
    p.add_argument("--read-only", action="store_true",
                   help="open the registry read-only (identification only)")  # fmt: skip
    p.add_argument("--max-upload-mb", type=_number, default=None, help="largest request body")
    p.add_argument("--max-clip-seconds", type=_number, default=None, help="longest clip")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=_serve)
