"""``speakerrpl serve``: run the REST service (needs the ``service`` extra)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

__all__ = ["register"]

logger = logging.getLogger(__name__)


def _serve(args: argparse.Namespace) -> int:
    from speakerrpl._optional import require
    from speakerrpl.service.app import create_app
    from speakerrpl.service.engine import SpeakerEngine
    from speakerrpl.service.settings import (
        ServiceSettings,
        apply_torch_threads,
        read_key_file,
    )

    uvicorn = require("uvicorn", "service", "the REST service")
    settings = ServiceSettings.from_env().with_overrides(
        api_key=read_key_file(args.api_key_file) if args.api_key_file else None,
        identify_requires_key=True if args.identify_requires_key else None,
        max_upload_bytes=int(args.max_upload_mb * 1_000_000) if args.max_upload_mb else None,
        max_clip_seconds=args.max_clip_seconds,
    )
    if settings.api_key is None:
        logger.warning("no API key configured: enrollment and removal are disabled (403)")
    apply_torch_threads(settings)
    engine = SpeakerEngine(args.registry, settings)
    engine.warm_up()
    uvicorn.run(create_app(engine), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def register(subparsers: Any) -> None:
    """Add the ``serve`` subcommand."""
    p = subparsers.add_parser("serve", help="run the REST service (enroll/identify over HTTP)")
    p.add_argument("--registry", required=True, help="speaker registry file (SQLite)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--api-key-file", default=None, help="file holding the API key "
                   "(else SPEAKERRPL_API_KEY / SPEAKERRPL_API_KEY_FILE)")  # fmt: skip
    p.add_argument("--identify-requires-key", action="store_true",
                   help="require the API key for /identify too")  # fmt: skip
    p.add_argument("--max-upload-mb", type=float, default=None, help="largest request body")
    p.add_argument("--max-clip-seconds", type=float, default=None, help="longest clip")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=_serve)
