"""A Wyoming speech-to-text proxy that says who spoke (Home Assistant's voice pipeline).

Home Assistant sends the audio of a voice command to ``speakerrpl wyoming``; the proxy forwards
it to the real speech-to-text service (e.g. the faster-whisper add-on), identifies the speaker
from the same audio with a speaker registry, and returns the upstream ``transcript`` with a
``context`` holding ``speaker`` (a name or ``<unknown>``), ``confidence`` and ``threshold``.
See ``docs/home-assistant.md``. Needs the ``wyoming`` extra (``pip install 'speakerrpl[wyoming]'``),
imported on first use: without it, starting the proxy raises an error naming the extra.
"""

from speakerrpl.wyoming.proxy import PROGRAM_NAME, ProxyOptions, SpeakerProxy
from speakerrpl.wyoming.server import run_proxy, start_proxy
from speakerrpl.wyoming.upstream import Upstream, UpstreamError

__all__ = [
    "PROGRAM_NAME",
    "ProxyOptions",
    "SpeakerProxy",
    "Upstream",
    "UpstreamError",
    "run_proxy",
    "start_proxy",
]
