"""Validated settings of the :class:`~speakerrpl.diarization.Diarizer`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from speakerrpl.errors import InvalidInputError

__all__ = ["DiarizerSettings"]


@dataclass(frozen=True)
class DiarizerSettings:
    """Every knob of the diarizer; unknown keys and bad values are errors.

    The defaults of the VAD, clustering, overlap, splitting and naming knobs were chosen on 10
    development conversations (seeds 1000-1009 of ``benchmarks/bench_diarization.py``; see
    ``docs/diarization.md``).

    Args:
        vad_threshold, min_speech, min_silence, vad_pad: speech detection (see
            :func:`speakerrpl.vad.probabilities_to_segments`).
        window, hop: sliding-window length and step in seconds; min_window: shortest speech
            region that is embedded at all.
        batch_size: windows per frontend call.
        cluster_threshold: cosine-distance stopping threshold of agglomerative clustering
            (calibrated on development conversations, see ``docs/diarization.md``).
        min_cluster_seconds: clusters covering less speech are folded into the nearest one.
        max_cluster_points: most windows clustered directly (longer recordings: subsample).
        reassign_iterations: nearest-centroid steps after clustering.
        min_run: shortest run of windows kept between two runs of another label.
        duplicate_margin: how far above the identifier's threshold a second cluster must
            score to share an enrolled name (``inf``: never); plain naming only.
        guided_threshold: with an identifier, the over-clustering threshold inside each named
            cluster whose parts the identifier must accept for the name, else they leave it
            (:mod:`speakerrpl.diarization.guided`); ``None``: no such check.
        split_margin: in [0, 1): how close to the cluster core's score a part must be to stay
            (see :func:`~speakerrpl.diarization.guided.split_rejected`).
        centroid_factor: in (0, 1]: clusters (and the split's parts) are named against the
            threshold ``t - (1 - centroid_factor) * |t|`` instead of the identifier's ``t``
            (:func:`~speakerrpl.diarization.naming.centroid_scorer`): averaged embeddings are
            scored, ``t`` is calibrated on single utterances; 1: the identifier's threshold.
        overlap_threshold: overlap probability (pyannote segmentation-3.0,
            :mod:`speakerrpl.diarization.overlap`) from which a second speaker is added (the
            nearest other one in time); ``None``: one speaker per instant, no model run.
        min_overlap: shortest overlap region kept, seconds.
        chunk_seconds: audio read per chunk when streaming.
    """

    vad_threshold: float = 0.5
    min_speech: float = 0.25
    min_silence: float = 0.3
    vad_pad: float = 0.03
    window: float = 1.5
    hop: float = 0.75
    min_window: float = 0.25
    batch_size: int = 64
    cluster_threshold: float = 0.65
    min_cluster_seconds: float = 4.0
    max_cluster_points: int = 4000
    reassign_iterations: int = 2
    min_run: int = 2
    duplicate_margin: float = math.inf
    guided_threshold: float | None = 0.5
    split_margin: float = 0.0
    centroid_factor: float = 0.5
    overlap_threshold: float | None = 0.8
    min_overlap: float = 0.1
    chunk_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not 0.0 < self.vad_threshold < 1.0:
            raise InvalidInputError(f"vad_threshold must be in (0, 1), got {self.vad_threshold}")
        if not 0.0 < self.hop <= self.window:
            raise InvalidInputError(f"expected 0 < hop <= window, got {self.hop}, {self.window}")
        if self.min_window < 0.15:
            raise InvalidInputError(f"min_window must be >= 0.15 s, got {self.min_window}")
        if not 0.0 < self.cluster_threshold < 2.0:
            raise InvalidInputError(
                f"cluster_threshold must be in (0, 2), got {self.cluster_threshold}"
            )
        for name in ("batch_size", "max_cluster_points"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.chunk_seconds < 1.0:
            raise InvalidInputError(f"chunk_seconds must be >= 1, got {self.chunk_seconds}")
        if self.guided_threshold is not None and not 0.0 < self.guided_threshold < 2.0:
            raise InvalidInputError(
                f"guided_threshold must be in (0, 2) or None, got {self.guided_threshold}"
            )
        if not 0.0 <= self.split_margin < 1.0:
            raise InvalidInputError(f"split_margin must be in [0, 1), got {self.split_margin}")
        if self.overlap_threshold is not None and not 0.0 < self.overlap_threshold < 1.0:
            raise InvalidInputError(
                f"overlap_threshold must be in (0, 1) or None, got {self.overlap_threshold}"
            )
        if self.min_overlap < 0:
            raise InvalidInputError(f"min_overlap must be >= 0, got {self.min_overlap}")
        if not 0.0 < self.centroid_factor <= 1.0:
            raise InvalidInputError(
                f"centroid_factor must be in (0, 1], got {self.centroid_factor}"
            )
        if self.duplicate_margin < 0 or self.min_cluster_seconds < 0:
            raise InvalidInputError("duplicate_margin and min_cluster_seconds must be >= 0")

    def replace(self, **changes: Any) -> DiarizerSettings:
        """A copy with ``changes``; unknown keys raise :class:`InvalidInputError`."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise InvalidInputError(f"unknown diarizer settings: {unknown}")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict."""
        return asdict(self)
