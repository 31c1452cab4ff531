"""What the proxy does with one utterance: identify the speaker and tag the upstream transcript.

:class:`SpeakerProxy` holds the registry engine, the upstream and the options; it is shared by
every connection (:mod:`speakerrpl.wyoming.handler` keeps the per-connection state). Decisions
come from :func:`speakerrpl.decisions.decision_of`, the one place that defines the confidence.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from speakerrpl import __version__
from speakerrpl.audio import prepare_wave
from speakerrpl.decisions import UNKNOWN, decision_of
from speakerrpl.errors import AudioError, InvalidInputError, SpeakerRPLError
from speakerrpl.wyoming.upstream import Upstream, UpstreamError

if TYPE_CHECKING:
    from wyoming.asr import Transcript
    from wyoming.info import Info

__all__ = ["PROGRAM_NAME", "ProxyOptions", "SpeakerProxy", "decode_pcm"]

logger = logging.getLogger(__name__)

PROGRAM_NAME = "speakerrpl"
_URL = "https://github.com/speakerrpl/speakerrpl"
_DTYPES = {1: "u1", 2: "<i2", 4: "<i4"}


@dataclass(frozen=True)
class ProxyOptions:
    """How transcripts are tagged.

    Args:
        tag_text: prefix the text with ``[name] `` when the speaker is known.
        require_known: answer an empty transcript when the speaker is not enrolled.
        max_seconds: most seconds of audio kept per utterance for identification (the rest is
            still forwarded to the upstream).
        min_speech: seconds of speech needed to identify at all (shorter: ``<unknown>``).
    """

    tag_text: bool = False
    require_known: bool = False
    max_seconds: float = 30.0
    min_speech: float = 0.3

    def __post_init__(self) -> None:
        if not 0 < self.max_seconds < float("inf"):
            raise InvalidInputError(f"max_seconds must be positive, got {self.max_seconds}")
        if not 0 <= self.min_speech < self.max_seconds:
            raise InvalidInputError(
                f"min_speech must be in [0, max_seconds), got {self.min_speech}"
            )


def decode_pcm(pcm: bytes, rate: int, width: int, channels: int) -> np.ndarray:
    """Raw little-endian PCM (Wyoming ``audio-chunk`` payloads) -> ``(frames, channels)`` ints."""
    if width not in _DTYPES:
        raise InvalidInputError(f"unsupported sample width {width} bytes (expected 1, 2 or 4)")
    if channels < 1 or rate <= 0:
        raise InvalidInputError(f"bad audio format: rate={rate}, channels={channels}")
    usable = len(pcm) - len(pcm) % (width * channels)
    return np.frombuffer(pcm[:usable], dtype=_DTYPES[width]).reshape(-1, channels)


class SpeakerProxy:
    """Identify speakers with a registry engine and pass audio to an upstream Wyoming ASR.

    Args:
        engine: a :class:`~speakerrpl.service.engine.SpeakerEngine` (only ``identify`` is used;
            the proxy never writes to the registry).
        upstream: the ASR to forward to.
        options: tagging options.
    """

    def __init__(self, engine: Any, upstream: Upstream, options: ProxyOptions | None = None):
        self.engine = engine
        self.upstream = upstream
        self.options = options or ProxyOptions()
        self._info: Info | None = None

    async def info(self) -> Info:
        """Our ``info``: one ASR program named ``speakerrpl`` with the upstream's languages.

        The upstream is asked every time (so language changes show); when it cannot be reached
        the last answer is reused, and with none an :class:`UpstreamError` is raised.
        """
        from wyoming.info import AsrModel, AsrProgram, Attribution, Info

        try:
            upstream_info = await self.upstream.describe()
        except UpstreamError:
            if self._info is None:
                raise
            logger.warning("upstream unreachable; describing with its last known info")
            return self._info
        if not upstream_info.asr:
            raise UpstreamError(f"{self.upstream.uri} is not a speech-to-text service (no asr)")
        models = [
            AsrModel(name=m.name, attribution=m.attribution, installed=m.installed,
                     description=m.description, version=m.version, languages=list(m.languages))
            for program in upstream_info.asr for m in program.models
        ]  # fmt: skip
        names = ", ".join(p.name for p in upstream_info.asr)
        self._info = Info(
            asr=[
                AsrProgram(
                    name=PROGRAM_NAME,
                    attribution=Attribution(name="speakerrpl", url=_URL),
                    installed=True,
                    description=f"speakerrpl speaker identification in front of {names}",
                    version=__version__,
                    models=models,
                    supports_transcript_streaming=False,
                )
            ]
        )
        return self._info

    def identify(self, pcm: bytes, rate: int, width: int, channels: int) -> dict[str, Any]:
        """Decide who spoke in raw PCM; returns the transcript ``context`` entries.

        Too little audio, or an empty registry, gives ``<unknown>`` with an ``error`` entry
        (the transcript is still returned); nothing here raises for bad audio.
        """
        start = time.perf_counter()
        try:
            frames = decode_pcm(pcm, rate, width, channels)
            wave = prepare_wave(
                frames, rate, min_duration=self.options.min_speech,
                max_duration=self.options.max_seconds + 1.0, source="wyoming audio",
            )  # fmt: skip
            decision = decision_of(self.engine.identify([wave])[0])
            context: dict[str, Any] = decision.to_dict()
        except (AudioError, SpeakerRPLError) as exc:
            logger.info("no identification: %s", exc)
            context = {"speaker": UNKNOWN, "confidence": None, "threshold": None,
                       "error": str(exc)}  # fmt: skip
        context["identify_seconds"] = round(time.perf_counter() - start, 4)
        return context

    def tag(self, transcript: Transcript, context: dict[str, Any]) -> Transcript:
        """The transcript to return: upstream text tagged or emptied, ``context`` merged in."""
        from wyoming.asr import Transcript

        speaker = context["speaker"]
        text = transcript.text
        if self.options.require_known and speaker == UNKNOWN:
            text = ""
        elif self.options.tag_text and speaker != UNKNOWN:
            text = f"[{speaker}] {text}"
        merged = {**(transcript.context or {}), **context}
        return Transcript(text=text, context=merged, language=transcript.language)
