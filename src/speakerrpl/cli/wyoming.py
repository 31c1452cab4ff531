"""``speakerrpl wyoming``: a Wyoming speech-to-text proxy that tags who spoke (Home Assistant).

Needs the ``wyoming`` extra. The registry is only read; engine settings come from the
``SPEAKERRPL_*`` environment variables, as for ``speakerrpl identify``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any

__all__ = ["register"]

logger = logging.getLogger(__name__)


def _wyoming(args: argparse.Namespace) -> int:
    from speakerrpl._optional import require

    require("wyoming", "wyoming", "the Home Assistant (Wyoming) proxy")
    from speakerrpl.errors import RegistryError
    from speakerrpl.service.engine import SpeakerEngine
    from speakerrpl.service.settings import ServiceSettings, apply_torch_threads
    from speakerrpl.wyoming import ProxyOptions, SpeakerProxy, Upstream, run_proxy
    from speakerrpl.wyoming.server import proxy_server

    if not Path(args.registry).is_file():
        raise RegistryError(f"no registry at {args.registry!r}: enroll speakers first")
    proxy_server(args.uri)  # check the address before loading any model
    upstream = Upstream(args.upstream, connect_timeout=args.connect_timeout,
                        timeout=args.upstream_timeout)  # fmt: skip
    settings = ServiceSettings.from_env()
    apply_torch_threads(settings)
    engine = SpeakerEngine(args.registry, settings, create=False)  # only read
    engine.warm_up()
    options = ProxyOptions(tag_text=args.tag_text, require_known=args.require_known,
                           max_seconds=min(settings.max_clip_seconds, 30.0))  # fmt: skip
    print(f"speakerrpl wyoming: listening on {args.uri}, upstream {args.upstream}", flush=True)
    try:
        asyncio.run(run_proxy(SpeakerProxy(engine, upstream, options), args.uri))
    except OSError as exc:
        raise RegistryError(f"cannot listen on {args.uri}: {exc}") from None
    return 0


def register(subparsers: Any) -> None:
    """Add the ``wyoming`` subcommand."""
    p = subparsers.add_parser(
        "wyoming", help="Wyoming speech-to-text proxy naming the speaker (Home Assistant)"
    )
    p.add_argument("--uri", default="tcp://127.0.0.1:10350",
                   help="where to listen (default tcp://127.0.0.1:10350)")  # fmt: skip
    p.add_argument("--registry", required=True, help="speaker registry file (SQLite, read only)")
    p.add_argument("--upstream", required=True,
                   help="the real speech-to-text service, e.g. tcp://HOST:10300")  # fmt: skip
    p.add_argument("--tag-text", action="store_true", help="prefix the text with '[name] '")
    p.add_argument("--require-known", action="store_true",
                   help="return an empty transcript when the speaker is not enrolled")  # fmt: skip
    p.add_argument("--connect-timeout", type=float, default=5.0,
                   help="seconds to wait for the upstream connection (default 5)")  # fmt: skip
    p.add_argument("--upstream-timeout", type=float, default=30.0,
                   help="seconds to wait for each upstream step and the transcript "
                   "(default 30)")  # fmt: skip
    p.set_defaults(func=_wyoming)
