"""Enrollment hygiene: refuse clips with too little speech, flag clips that sound like someone else.

Two checks the engine runs on every enrollment (duplicate clips are handled by the engine itself,
by content hash):

- :func:`check_speech`: each clip must hold at least ``min_speech`` seconds of speech after voice
  activity detection (Silero VAD from :mod:`speakerrpl.vad` when its extra is installed, else the
  energy detector of :func:`speakerrpl.audio.speech_duration`); otherwise the enrollment is
  refused with the measured duration.
- :func:`cross_matches`: a clip that the model refitted with it scores higher for another
  enrolled person than for the person it is enrolled as is flagged in the answer (it was still
  enrolled): perhaps the wrong file, or two people recorded together. The model was trained on
  the clip as its own person's, so a flag is a strong sign.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from speakerrpl.errors import AudioTooShortError, MissingDependencyError, ModelLoadError

__all__ = ["check_speech", "cross_matches", "enrollment_warnings", "speech_seconds"]

logger = logging.getLogger(__name__)

_VAD: list[Any] = []  # one Silero session per process (or [None] when it is not installed)


def _silero() -> Any:
    if not _VAD:
        try:
            from speakerrpl.vad import SileroVAD

            _VAD.append(SileroVAD())
        except (MissingDependencyError, ModelLoadError) as exc:
            logger.warning("Silero VAD unavailable (%s); measuring speech by energy", exc)
            _VAD.append(None)
    return _VAD[0]


def speech_seconds(wave: np.ndarray, vad: Any = "auto") -> tuple[float, str]:
    """Seconds of speech in a 16 kHz clip and the detector that measured it.

    Args:
        wave: 16 kHz mono float waveform.
        vad: a ``SileroVAD``-like object (``speech_segments``), ``None`` for the energy
            detector, or ``"auto"``: Silero when installed, else energy.

    Example:
        >>> t = np.arange(16000) / 16000
        >>> round(speech_seconds(0.1 * np.sin(2 * np.pi * 200 * t), vad=None)[0], 2)
        0.98
    """
    detector = _silero() if vad == "auto" else vad
    if detector is None:
        from speakerrpl.audio import speech_duration

        return speech_duration(np.asarray(wave, dtype=np.float32)), "energy"
    segments = detector.speech_segments(np.asarray(wave, dtype=np.float32))
    return float(sum(b - a for a, b in segments)), "silero-vad"


def check_speech(
    waves: Sequence[np.ndarray],
    sources: Sequence[str] | None,
    min_speech: float,
    vad: Any = "auto",
) -> list[float]:
    """Refuse the enrollment when a clip has under ``min_speech`` seconds of speech.

    Returns the speech seconds of each clip.

    Raises:
        AudioTooShortError: names every short clip with its measured speech.
    """
    if min_speech <= 0:
        return []
    measured = [speech_seconds(w, vad) for w in waves]
    short = [
        f"{sources[i] if sources else f'clip {i}'}: {s:.2f} s"
        for i, (s, _) in enumerate(measured)
        if s < min_speech
    ]
    if short:
        how = measured[0][1]
        raise AudioTooShortError(
            f"too little speech after voice activity detection ({how}) in "
            f"{len(short)} clip(s) ({'; '.join(short)}); each enrollment clip needs at least "
            f"{min_speech:g} s"
        )
    return [s for s, _ in measured]


def cross_matches(
    model: Any, name: str, embeddings: np.ndarray, sources: Sequence[str] | None
) -> list[dict[str, Any]]:
    """Warnings for clips that ``model`` places with another enrolled person.

    Args:
        model: the model committed with these clips (``LoadedModel``), or ``None``.
        name: who the clips are enrolled as.
        embeddings: ``(N, D)`` embeddings of the new clips.
        sources: their file names (or ``None``).

    Returns:
        One ``{"clip", "code": "matches-other-speaker", "other", "message"}`` per flagged clip.
    """
    if model is None or model.kind not in ("identifier", "cosine") or not model.classes:
        return []
    classes = list(model.classes)
    scores = model.scores(np.asarray(embeddings, dtype=np.float32))
    out = []
    for i, row in enumerate(scores):
        others = [(float(row[k]), c) for k, c in enumerate(classes) if c != name]
        if not others:
            continue
        best, other = max(others)
        own = float(row[classes.index(name)]) if name in classes else None
        if (own is not None and best > own) or (own is None and best >= model.threshold):
            clip = sources[i] if sources else f"clip {i}"
            against = f"than {name!r}" if own is not None else "(accepted as them)"
            out.append({"clip": clip, "code": "matches-other-speaker", "other": other,
                        "message": f"{clip} sounds more like {other!r} {against}: "
                                   "is it the right file?"})  # fmt: skip
    return out


def enrollment_warnings(
    model: Any,
    name: str,
    embeddings: np.ndarray,
    sources: Sequence[str] | None,
    duplicates: int,
) -> list[dict[str, Any]]:
    """The ``warnings`` of an enrollment answer: ignored duplicates and cross matches."""
    out: list[dict[str, Any]] = []
    if duplicates:
        out.append({"clip": None, "code": "duplicate", "other": None,
                    "message": f"{duplicates} clip(s) already enrolled for {name!r} were "
                               "ignored (same audio content)"})  # fmt: skip
    return out + cross_matches(model, name, embeddings, sources)
