"""Streaming identification: name the speaker while the audio is still arriving.

:class:`StreamingIdentifier` takes PCM chunks of any size, keeps the frames that voice activity
detection calls speech, and once ``min_speech`` seconds of speech have arrived embeds them and
emits a decision; every further ``update_every`` seconds of speech it decides again on all the
speech so far (up to ``max_speech``), so the decision firms up as the person keeps talking.
``reset()`` starts a new stream. Voice activity comes from :class:`speakerrpl.vad.SileroVAD`
(the ``diarization`` extra) unless another detector is given.

Example:
    >>> sid = StreamingIdentifier(identifier, get_frontend("campplus"))  # doctest: +SKIP
    >>> for chunk in microphone_chunks():  # doctest: +SKIP
    ...     decision = sid.feed(chunk)
    ...     if decision is not None:
    ...         print(decision.speaker, decision.confidence)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from speakerrpl.decisions import Decision, decision_of, identify_embeddings
from speakerrpl.errors import InvalidInputError

__all__ = ["StreamDecision", "StreamingIdentifier", "VoiceActivity"]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
_FRAME = 512  # samples per VAD frame (32 ms), as speakerrpl.vad.SileroVAD


class VoiceActivity(Protocol):
    """What the streaming identifier needs of a voice activity detector (``SileroVAD`` fits)."""

    def reset(self) -> None:
        """Forget the stream."""

    def process_block(self, samples: np.ndarray) -> np.ndarray:
        """Speech probabilities of the next ``len(samples) // 512`` 16 kHz frames."""


@dataclass(frozen=True)
class StreamDecision:
    """A decision emitted by :meth:`StreamingIdentifier.feed`.

    Attributes:
        decision: speaker (name or ``<unknown>``), confidence and threshold
            (see :mod:`speakerrpl.decisions`).
        speech_seconds: seconds of speech it is based on.
        stream_seconds: position in the stream (seconds of audio, counted in whole VAD frames)
            of the speech frame that triggered it.
        compute_seconds: time spent embedding and scoring for it.
        index: 0 for the first decision of the stream, then 1, 2, ...
    """

    decision: Decision
    speech_seconds: float
    stream_seconds: float
    compute_seconds: float
    index: int

    @property
    def speaker(self) -> str:
        """The decided speaker (a name or ``<unknown>``)."""
        return self.decision.speaker

    @property
    def confidence(self) -> float:
        """The decision's confidence (see :mod:`speakerrpl.decisions`)."""
        return self.decision.confidence


class StreamingIdentifier:
    """Identify the speaker of a stream of PCM chunks, deciding as soon as enough speech came.

    Args:
        identifier: a fitted ``OpenSetSpeakerIdentifier`` or a registry model
            (``SpeakerEngine.model()``); see :func:`speakerrpl.decisions.identify_embeddings`.
        frontend: the embedding frontend the identifier was fitted with (``embed(waves)``).
        sample_rate: rate of the chunks given to :meth:`feed` (resampled to 16 kHz inside).
        min_speech: seconds of speech before the first decision (default 1.5).
        update_every: seconds of further speech between updated decisions (0: no updates).
        max_speech: most seconds of speech kept (the earliest are kept).
        vad: a :class:`VoiceActivity` detector; default ``SileroVAD()``.
        vad_threshold: speech probability that opens a speech stretch; it closes after
            ``hangover`` seconds below ``vad_threshold - 0.15``.
        hangover: seconds of low probability kept at the end of a speech stretch.
    """

    def __init__(
        self,
        identifier: Any,
        frontend: Any,
        *,
        sample_rate: int = SAMPLE_RATE,
        min_speech: float = 1.5,
        update_every: float = 0.5,
        max_speech: float = 20.0,
        vad: VoiceActivity | None = None,
        vad_threshold: float = 0.5,
        hangover: float = 0.1,
    ) -> None:
        if not 0.1 <= min_speech <= max_speech:
            raise InvalidInputError(
                f"min_speech must be in [0.1, max_speech={max_speech}], got {min_speech}"
            )
        if update_every < 0 or not 0 < vad_threshold < 1 or hangover < 0 or sample_rate <= 0:
            raise InvalidInputError(
                "update_every and hangover must be >= 0, vad_threshold in (0, 1), "
                f"sample_rate > 0; got {update_every}, {hangover}, {vad_threshold}, {sample_rate}"
            )
        self.identifier = identifier
        self.frontend = frontend
        self.sample_rate = int(sample_rate)
        self.min_speech = float(min_speech)
        self.update_every = float(update_every)
        self.max_speech = float(max_speech)
        self.vad_threshold = float(vad_threshold)
        self.hangover_frames = max(1, round(hangover * SAMPLE_RATE / _FRAME))
        if vad is None:
            from speakerrpl.vad import SileroVAD

            vad = SileroVAD()
        self.vad = vad
        self.reset()

    def reset(self) -> None:
        """Start a new stream: forget the audio, the speech and the decisions."""
        self.vad.reset()
        self._pending = np.zeros(0, dtype=np.float32)
        self._speech: list[np.ndarray] = []
        self._n_speech = 0
        self._n_fed = 0
        self._in_speech, self._quiet = False, 0
        self._next_at = self.min_speech
        self.decisions: list[StreamDecision] = []
        self._resampler: Any = None
        if self.sample_rate != SAMPLE_RATE:
            import soxr

            self._resampler = soxr.ResampleStream(self.sample_rate, SAMPLE_RATE, 1, dtype="float32")

    @property
    def decision(self) -> StreamDecision | None:
        """The latest decision of this stream, or ``None`` before the first one."""
        return self.decisions[-1] if self.decisions else None

    @property
    def speech_seconds(self) -> float:
        """Seconds of speech collected so far."""
        return self._n_speech / SAMPLE_RATE

    def feed(self, chunk: np.ndarray | bytes) -> StreamDecision | None:
        """Add a chunk (float in [-1, 1], int16 array, or 16-bit little-endian PCM bytes).

        Returns the latest decision made while taking this chunk, if any (the first once
        ``min_speech`` seconds of speech arrived, then one every ``update_every`` seconds of
        speech); the decision points do not depend on how the stream is cut into chunks.
        """
        samples = self._to_float(chunk)
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples)
        pending = np.concatenate([self._pending, samples])
        usable = pending.size - pending.size % _FRAME
        self._pending = pending[usable:]
        before = len(self.decisions)
        if usable:
            self._take_frames(pending[:usable])
        return self.decisions[-1] if len(self.decisions) > before else None

    def finish(self) -> StreamDecision | None:
        """End of stream: decide on the speech since the last decision, if any and enough.

        Returns the new decision, or ``None`` (no new speech, or never ``min_speech``).
        """
        last = self.decision
        if self.speech_seconds < self.min_speech:
            return None
        if last is not None and last.speech_seconds >= min(self.speech_seconds, self.max_speech):
            return None
        return self._decide()

    def _to_float(self, chunk: np.ndarray | bytes) -> np.ndarray:
        if isinstance(chunk, (bytes, bytearray, memoryview)):
            if len(chunk) % 2:
                raise InvalidInputError("PCM bytes must be 16-bit samples (an even length)")
            chunk = np.frombuffer(bytes(chunk), dtype="<i2")
        arr = np.asarray(chunk)
        if arr.ndim != 1:
            raise InvalidInputError(f"expected mono samples shaped (n,), got {arr.shape}")
        if arr.dtype.kind == "i":
            return (arr.astype(np.float32) / 32768.0).astype(np.float32)
        if arr.dtype.kind != "f":
            raise InvalidInputError(f"expected float or int16 samples, got dtype {arr.dtype}")
        arr = arr.astype(np.float32, copy=False)
        if not np.all(np.isfinite(arr)):
            raise InvalidInputError("audio holds NaN or infinite samples")
        return arr

    def _take_frames(self, frames: np.ndarray) -> None:
        """VAD on whole frames; keep those inside speech stretches (hysteresis); decide when due."""
        probs = np.asarray(self.vad.process_block(frames), dtype=np.float32)
        low = max(self.vad_threshold - 0.15, 0.01)
        cap = int(self.max_speech * SAMPLE_RATE)
        for i, p in enumerate(probs):
            self._n_fed += _FRAME
            if not self._in_speech:
                self._in_speech, self._quiet = bool(p >= self.vad_threshold), 0
            elif p < low:
                self._quiet += 1
                self._in_speech = self._quiet < self.hangover_frames
            else:
                self._quiet = 0
            if not self._in_speech or self._n_speech + _FRAME > cap:
                continue
            self._speech.append(frames[i * _FRAME : (i + 1) * _FRAME])
            self._n_speech += _FRAME
            if self.speech_seconds + 1e-9 >= self._next_at:
                self._decide()

    def _decide(self) -> StreamDecision:
        start = time.perf_counter()
        speech = np.concatenate(self._speech)
        embedding = np.asarray(self.frontend.embed([speech]), dtype=np.float32)
        decision = decision_of(identify_embeddings(self.identifier, embedding)[0])
        made = StreamDecision(
            decision=decision,
            speech_seconds=self.speech_seconds,
            stream_seconds=self._n_fed / SAMPLE_RATE,
            compute_seconds=time.perf_counter() - start,
            index=len(self.decisions),
        )
        self.decisions.append(made)
        step = self.update_every if self.update_every > 0 else float("inf")
        self._next_at = self.speech_seconds + step
        logger.debug("decision %d: %s after %.2f s of speech", made.index, decision.speaker,
                     made.speech_seconds)  # fmt: skip
        return made
