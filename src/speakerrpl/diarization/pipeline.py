"""The :class:`Diarizer`: VAD -> windows -> embeddings -> clustering -> naming -> turns.

Every stage is a replaceable part given to the constructor: ``vad`` (anything with
``speech_probabilities`` + ``reset``/``process_block``, default :class:`~speakerrpl.vad.SileroVAD`),
``frontend`` (a speaker-embedding frontend, default CAM++), ``clusterer`` (a callable
``(embeddings, durations) -> labels``, default :class:`AgglomerativeClustering`). Naming uses
the identifier given to each call. Files are streamed in chunks twice (VAD, then windows), so
memory stays bounded for recordings of hours.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from speakerrpl.diarization.clustering import AgglomerativeClustering
from speakerrpl.diarization.guided import cluster_means, split_rejected
from speakerrpl.diarization.naming import (
    Naming,
    Scorer,
    as_scorer,
    centroid_scorer,
    name_clusters,
    stranger_label,
)
from speakerrpl.diarization.overlap import add_second_speakers, overlap_regions
from speakerrpl.diarization.resegment import reassign, smooth, turns
from speakerrpl.diarization.segments import Segment
from speakerrpl.diarization.settings import DiarizerSettings
from speakerrpl.diarization.stream import audio_chunks
from speakerrpl.diarization.windows import SAMPLE_RATE, WindowEmbedder, plan_windows
from speakerrpl.errors import AudioNonFiniteError, InvalidInputError
from speakerrpl.runtime import resolve_device
from speakerrpl.vad import FRAME_SAMPLES, probabilities_to_segments

__all__ = ["Diarization", "Diarizer"]

logger = logging.getLogger(__name__)

Audio = np.ndarray | str | Path


@dataclass
class Diarization:
    """A diarization result: the turns, the duration and what each stage found."""

    segments: list[Segment]
    duration: float
    regions: list[tuple[float, float]] = field(default_factory=list)
    windows: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    window_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    naming: Naming | None = None
    embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    overlap: np.ndarray = field(default_factory=lambda: np.zeros(0))


class Diarizer:
    """Who spoke when, with enrolled names or ``SPEAKER_xx`` for strangers.

    Args:
        settings: a :class:`DiarizerSettings`; keyword arguments override its fields.
        frontend: speaker-embedding frontend (default ``get_frontend("campplus", ...)``).
        vad: voice activity detector (default :class:`~speakerrpl.vad.SileroVAD`).
        overlap_detector: per-frame overlap probabilities, used when the settings'
            ``overlap_threshold`` is set (default
            :class:`~speakerrpl.diarization.overlap.OverlapDetector`).
        clusterer: ``(embeddings, durations) -> labels`` (default from the settings).
        device: device of the default frontend (``"cuda"`` puts the embedding stage on a GPU);
            checked at once (:class:`~speakerrpl.errors.InvalidInputError` for an unknown
            device, or CUDA where there is none).
        num_threads: threads of the default frontend and overlap detector.

    Example:
        >>> diarizer = Diarizer()  # doctest: +SKIP
        >>> diarizer("meeting.wav", identifier=fitted)  # doctest: +SKIP
        [Segment(start=0.42, end=5.1, label='alice', score=1.7), ...]
    """

    def __init__(
        self,
        settings: DiarizerSettings | None = None,
        *,
        frontend: Any = None,
        vad: Any = None,
        overlap_detector: Any = None,
        clusterer: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
        device: str = "cpu",
        num_threads: int | None = None,
        **overrides: Any,
    ) -> None:
        self.settings = (settings or DiarizerSettings()).replace(**overrides)
        self._frontend, self._vad, self._overlap = frontend, vad, overlap_detector
        s = self.settings
        self.clusterer = clusterer or AgglomerativeClustering(
            s.cluster_threshold, s.min_cluster_seconds, s.max_cluster_points
        )
        self.device, self.num_threads = resolve_device(device), num_threads

    @property
    def frontend(self) -> Any:
        """The embedding frontend (created on first use)."""
        if self._frontend is None:
            from speakerrpl.frontends import get_frontend

            self._frontend = get_frontend(
                "campplus", device=self.device, num_threads=self.num_threads
            )
        return self._frontend

    @property
    def vad(self) -> Any:
        """The voice activity detector (created on first use)."""
        if self._vad is None:
            from speakerrpl.vad import SileroVAD

            self._vad = SileroVAD()
        return self._vad

    @property
    def overlap_detector(self) -> Any:
        """The overlap detector (created on first use)."""
        if self._overlap is None:
            from speakerrpl.diarization.overlap import OverlapDetector

            self._overlap = OverlapDetector(num_threads=self.num_threads or 1)
        return self._overlap

    def __call__(self, audio: Audio, identifier: Any = None) -> list[Segment]:
        """Turns ``(start, end, label, score)`` of a 16 kHz waveform or an audio file."""
        return self.run(audio, identifier).segments

    def run(self, audio: Audio, identifier: Any = None) -> Diarization:
        """Like ``__call__``, returning every stage's output (:class:`Diarization`)."""
        return self.label(self.analyse(audio), identifier)

    def analyse(self, audio: Audio) -> Diarization:
        """The identifier-free stages: speech regions, windows and their embeddings.

        The result has no segments yet; :meth:`label` adds them (with any identifier, any
        number of times: the embeddings are the expensive part).
        """
        chunks = self._chunk_source(audio)
        s = self.settings
        probs, duration = self._speech_probabilities(chunks())
        regions = probabilities_to_segments(
            probs, s.vad_threshold, s.min_speech, s.min_silence, s.vad_pad
        )
        regions = [(a, min(b, round(duration, 3))) for a, b in regions if a < duration]
        windows = plan_windows(regions, s.window, s.hop, s.min_window)
        emb = np.zeros((0, 0), dtype=np.float32)
        overlap = np.zeros(0)
        if len(windows):
            emb = WindowEmbedder(self.frontend, s.batch_size).embed_stream(chunks(), windows)
            if s.overlap_threshold is not None:
                overlap = self.overlap_detector.probabilities(chunks())
        return Diarization([], duration, regions, windows, embeddings=emb, overlap=overlap)

    def label(self, analysed: Diarization, identifier: Any = None) -> Diarization:
        """Cluster, name and segment the windows of an :meth:`analyse` result."""
        s, windows, emb = self.settings, analysed.windows, analysed.embeddings
        if len(windows) == 0:
            return analysed
        durations = np.diff(windows, axis=1)[:, 0]
        scorer = as_scorer(identifier)
        if scorer is not None:
            scorer = centroid_scorer(scorer, s.centroid_factor)
        labels = np.asarray(self.clusterer(emb, durations), dtype=np.int64)
        labels = reassign(emb, labels, s.reassign_iterations)
        labels = smooth(windows, labels, analysed.regions, s.min_run)
        labels = reassign(emb, labels, 0)  # renumber 0..C-1
        naming = self._name(emb, labels, durations, scorer)
        if scorer is not None and s.guided_threshold is not None:
            fine = AgglomerativeClustering(s.guided_threshold, 0.0, s.max_cluster_points)
            names = [
                lab if ok else None for lab, ok in zip(naming.labels, naming.enrolled, strict=True)
            ]
            labels, names = split_rejected(
                emb, durations, labels, names, scorer, fine, self.clusterer, s.split_margin
            )
            labels = smooth(windows, labels, analysed.regions, s.min_run)
            naming = _guided_naming(emb, labels, durations, names, scorer)
            labels = reassign(emb, labels, 0)  # renumber 0..C-1 as naming did
        pieces = turns(windows, labels, analysed.regions)
        if s.overlap_threshold is not None and analysed.overlap.size:
            found = overlap_regions(analysed.overlap, s.overlap_threshold, s.min_overlap)
            pieces = add_second_speakers(pieces, found)
        out = [
            Segment(round(a, 3), round(b, 3), naming.labels[c], float(naming.scores[c]))
            for a, b, c in sorted(pieces)
        ]
        return replace(analysed, segments=out, window_labels=labels, naming=naming)

    def _chunk_source(self, audio: Audio) -> Callable[[], Iterator[np.ndarray]]:
        seconds = self.settings.chunk_seconds
        if isinstance(audio, (str, Path)):
            path = Path(audio)
            return lambda: audio_chunks(path, seconds)
        wave = np.asarray(audio)
        if wave.ndim != 1 or not np.issubdtype(wave.dtype, np.floating):
            raise InvalidInputError(
                f"expected a 1-D float waveform at 16 kHz or a file path, got {wave.dtype} "
                f"array of shape {wave.shape}"
            )
        if not np.isfinite(wave).all():
            raise AudioNonFiniteError("the waveform holds NaN or infinite samples")
        wave = wave.astype(np.float32, copy=False)
        size = max(FRAME_SAMPLES, int(seconds * SAMPLE_RATE))
        return lambda: (wave[i : i + size] for i in range(0, wave.size, size))

    def _speech_probabilities(self, chunks: Iterable[np.ndarray]) -> tuple[np.ndarray, float]:
        vad, rest, total, out = self.vad, np.zeros(0, np.float32), 0, []
        vad.reset()
        for chunk in chunks:
            total += chunk.size
            data = np.concatenate([rest, chunk])
            whole = data.size // FRAME_SAMPLES * FRAME_SAMPLES
            out.append(vad.process_block(data[:whole]))
            rest = data[whole:]
        if rest.size:
            out.append(vad.process_block(np.pad(rest, (0, FRAME_SAMPLES - rest.size))))
        vad.reset()
        probs = np.concatenate(out) if out else np.zeros(0, np.float32)
        return probs, total / SAMPLE_RATE

    def _name(
        self, emb: np.ndarray, labels: np.ndarray, durations: np.ndarray, scorer: Scorer | None
    ) -> Naming:
        count = int(labels.max()) + 1
        if scorer is None:
            return name_clusters(np.zeros((count, 0)))
        scores = np.asarray(scorer.scores(cluster_means(emb, labels, durations)), np.float64)
        margin = self.settings.duplicate_margin
        return name_clusters(scores, scorer.classes, scorer.threshold, margin)


def _guided_naming(
    emb: np.ndarray,
    labels: np.ndarray,
    durations: np.ndarray,
    names: list[str | None],
    scorer: Scorer,
) -> Naming:
    """Naming of guided labels: enrolled names kept, strangers numbered by first appearance."""
    present, first = np.unique(labels, return_index=True)
    kept = [names[int(c)] for c in present]
    order = np.argsort(first)
    anonymous = [int(i) for i in order if kept[i] is None]
    strangers = {i: stranger_label(k) for k, i in enumerate(anonymous)}
    final = [name if name is not None else strangers[i] for i, name in enumerate(kept)]
    _, dense = np.unique(labels, return_inverse=True)
    scores = np.asarray(scorer.scores(cluster_means(emb, dense, durations)), np.float64)
    return Naming(final, scores.max(axis=1), [n is not None for n in kept])
