"""Diarization with open-set naming: who spoke when, and is it an enrolled person or a stranger.

``Diarizer()(audio, identifier=None) -> [Segment(start, end, label, score), ...]``; labels are
enrolled names or ``SPEAKER_01``, ``SPEAKER_02``, ... See ``docs/diarization.md``.
"""

from speakerrpl.diarization.clustering import AgglomerativeClustering
from speakerrpl.diarization.naming import Naming, Scorer, as_scorer, name_clusters
from speakerrpl.diarization.pipeline import Diarization, Diarizer
from speakerrpl.diarization.segments import Segment, read_rttm, to_json, to_rttm
from speakerrpl.diarization.settings import DiarizerSettings

__all__ = [
    "AgglomerativeClustering",
    "Diarization",
    "Diarizer",
    "DiarizerSettings",
    "Naming",
    "Scorer",
    "Segment",
    "as_scorer",
    "name_clusters",
    "read_rttm",
    "to_json",
    "to_rttm",
]
