"""Diarization stages on synthetic embeddings: windows, clustering, naming, re-segmentation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from speakerrpl.diarization import AgglomerativeClustering, DiarizerSettings, as_scorer
from speakerrpl.diarization.naming import Scorer, name_clusters
from speakerrpl.diarization.resegment import reassign, smooth, turns
from speakerrpl.diarization.windows import WindowEmbedder, plan_windows
from speakerrpl.errors import InvalidInputError


def _voices(counts: list[int], dim: int = 16, noise: float = 0.15, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(len(counts), dim))
    rows = [m + noise * rng.normal(size=(c, dim)) for m, c in zip(means, counts, strict=True)]
    return np.concatenate(rows)


# --- windows ------------------------------------------------------------------------------


def test_windows_cover_each_region_and_end_at_its_end() -> None:
    w = plan_windows([(0.0, 4.0), (5.0, 5.2), (6.0, 7.0)], window=1.5, hop=0.75)
    assert w[0].tolist() == [0.0, 1.5] and w[3].tolist() == [2.25, 3.75]
    assert w[4].tolist() == [2.5, 4.0]  # last one aligned to the region's end
    assert w[-1].tolist() == [6.0, 7.0]  # a short region: one window of its own length
    assert not any(a >= 5.0 and b <= 5.2 for a, b in w)  # shorter than min_window: dropped
    with pytest.raises(InvalidInputError):
        plan_windows([(0.0, 1.0)], window=1.0, hop=2.0)


class _MeanFrontend:
    """Embeds a wave as [mean, length in seconds]: shows which samples each window got."""

    dim, device = 2, "cpu"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def embed(self, waves: list[np.ndarray]) -> np.ndarray:
        self.calls.append(len(waves))
        return np.array([[w.mean(), w.size / 16000] for w in waves], dtype=np.float32)


def test_streamed_windows_get_exactly_their_samples_in_batches() -> None:
    wave = np.repeat(np.arange(10, dtype=np.float32), 16000)  # value = second
    windows = plan_windows([(0.0, 10.0)], window=1.0, hop=0.5)
    frontend = _MeanFrontend()
    embedder = WindowEmbedder(frontend, batch_size=4)
    streamed = embedder.embed_stream(
        (wave[i : i + 7000] for i in range(0, wave.size, 7000)), windows
    )
    whole = embedder.embed(wave, windows)
    np.testing.assert_allclose(streamed, whole)
    expected = [wave[int(a * 16000) : int(b * 16000)].mean() for a, b in windows]
    np.testing.assert_allclose(streamed[:, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(streamed[:, 1], 1.0)
    assert max(frontend.calls) <= 4


# --- clustering ---------------------------------------------------------------------------


def test_ahc_finds_the_number_of_speakers() -> None:
    for counts in ([30], [10, 20], [8, 8, 8, 8, 8]):
        labels = AgglomerativeClustering(threshold=0.5)(_voices(counts))
        assert len(set(labels.tolist())) == len(counts)
        assert labels[0] == 0  # numbered by first appearance


def test_small_clusters_fold_into_the_nearest_and_long_inputs_are_subsampled() -> None:
    x = _voices([20, 20, 1])
    assert len(set(AgglomerativeClustering(0.5)(x).tolist())) == 3
    folded = AgglomerativeClustering(0.5, min_cluster_seconds=2.0)(x, np.ones(len(x)))
    assert len(set(folded.tolist())) == 2
    big = _voices([300, 300, 300], seed=1)
    sub = AgglomerativeClustering(0.5, max_points=100)(big)
    assert len(set(sub.tolist())) == 3 and len(sub) == 900
    assert (sub[:300] == sub[0]).all() and (sub[600:] == sub[600]).all()


def test_degenerate_inputs() -> None:
    assert AgglomerativeClustering()(np.zeros((0, 4))).shape == (0,)
    assert AgglomerativeClustering()(np.ones((1, 4))).tolist() == [0]
    with pytest.raises(InvalidInputError):
        AgglomerativeClustering(threshold=3.0)
    with pytest.raises(InvalidInputError):
        AgglomerativeClustering()(np.ones(4))


# --- naming -------------------------------------------------------------------------------


def test_one_to_one_naming_never_repeats_a_name_and_numbers_strangers() -> None:
    scores = np.array([[0.9, 0.2], [0.8, 0.1], [0.1, 0.7], [0.2, 0.3]])
    naming = name_clusters(scores, ["ann", "bob"], threshold=0.5)
    assert naming.labels == ["ann", "SPEAKER_01", "bob", "SPEAKER_02"]
    assert naming.enrolled == [True, False, True, False]
    np.testing.assert_allclose(naming.scores, [0.9, 0.8, 0.7, 0.3])


def test_assignment_maximises_total_score_not_greedy() -> None:
    # greedy would give ann to cluster 0 (0.95) and leave cluster 1 without a name
    scores = np.array([[0.95, 0.9], [0.9, 0.1]])
    assert name_clusters(scores, ["ann", "bob"], threshold=0.5).labels == ["bob", "ann"]


def test_a_duplicate_shares_a_name_only_beyond_the_margin() -> None:
    scores = np.array([[0.9, 0.1], [0.8, 0.1]])
    assert name_clusters(scores, ["ann", "bob"], 0.5, duplicate_margin=0.2).labels == [
        "ann",
        "ann",
    ]
    assert name_clusters(scores, ["ann", "bob"], 0.5, duplicate_margin=0.35).labels[1] == (
        "SPEAKER_01"
    )


def test_anonymous_naming_and_bad_scores() -> None:
    naming = name_clusters(np.zeros((3, 0)))
    assert naming.labels == ["SPEAKER_01", "SPEAKER_02", "SPEAKER_03"]
    assert all(math.isnan(s) for s in naming.scores)
    with pytest.raises(InvalidInputError):
        name_clusters(np.zeros((2, 3)), ["a", "b"])


def test_as_scorer_accepts_both_identifier_kinds() -> None:
    from speakerrpl.identifier import OpenSetSpeakerIdentifier

    x = _voices([4, 4])
    clf = OpenSetSpeakerIdentifier(method="cosine").fit(x, ["a"] * 4 + ["b"] * 4)
    scorer = as_scorer(clf)
    assert isinstance(scorer, Scorer) and scorer.classes == ("a", "b")
    assert scorer.threshold == clf.threshold_
    np.testing.assert_allclose(scorer.scores(x[:2]), clf.decision_function(x[:2]))

    class Loaded:  # the shape of service.models.LoadedModel
        classes, threshold = ("z",), 0.3

        def scores(self, x: np.ndarray) -> np.ndarray:
            return np.ones((len(x), 1))

    assert as_scorer(Loaded()).classes == ("z",)  # type: ignore[union-attr]
    assert as_scorer(None) is None
    with pytest.raises(InvalidInputError):
        as_scorer(object())


# --- re-segmentation ----------------------------------------------------------------------


def test_reassign_moves_windows_to_the_nearest_centroid() -> None:
    x = _voices([6, 6])
    wrong = np.r_[np.zeros(7, int), np.ones(5, int)]  # window 6 belongs to the second voice
    assert reassign(x, wrong).tolist() == [0] * 6 + [1] * 6


def test_smoothing_and_midpoint_turns() -> None:
    windows = plan_windows([(0.0, 6.0)], window=1.0, hop=0.5)  # 11 windows, centres 0.5..5.5
    labels = np.array([0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 1])
    smoothed = smooth(windows, labels, [(0.0, 6.0)], min_run=2)
    assert smoothed.tolist() == [0] * 7 + [1] * 4
    out = turns(windows, smoothed, [(0.0, 6.0)])
    assert out == [(0.0, 3.75, 0), (3.75, 6.0, 1)]  # midway between centres 3.5 and 4.0


def test_turns_respect_region_gaps() -> None:
    regions = [(0.0, 2.0), (3.0, 5.0)]
    windows = plan_windows(regions, window=1.0, hop=1.0)
    out = turns(windows, np.zeros(len(windows), int), regions)
    assert out == [(0.0, 2.0, 0), (3.0, 5.0, 0)]


def test_settings_reject_bad_values() -> None:
    with pytest.raises(InvalidInputError, match="unknown"):
        DiarizerSettings().replace(windw=1.0)
    with pytest.raises(InvalidInputError):
        DiarizerSettings(hop=2.0, window=1.0)
    with pytest.raises(InvalidInputError):
        DiarizerSettings(vad_threshold=1.0)


# --- identifier-guided clustering ---------------------------------------------------------


def test_a_stranger_merged_into_an_enrolled_cluster_is_split_out() -> None:
    from speakerrpl.diarization.guided import split_rejected

    rng = np.random.default_rng(4)  # alice-stranger cosine distance 0.43, bob ~1 from both
    alice = rng.normal(size=16)
    stranger = alice + 1.2 * rng.normal(size=16)  # close enough for coarse AHC to merge
    bob = rng.normal(size=16)
    x = np.concatenate([m + 0.1 * rng.normal(size=(10, 16)) for m in (alice, stranger, bob)])
    coarse = AgglomerativeClustering(threshold=0.8)
    fine = AgglomerativeClustering(threshold=0.2)
    merged = coarse(x)
    assert len(set(merged.tolist())) == 2  # plain clustering: the stranger joins alice

    def scores(z: np.ndarray) -> np.ndarray:
        zn = z / np.linalg.norm(z, axis=1, keepdims=True)
        refs = np.stack([alice, bob]) / np.linalg.norm(np.stack([alice, bob]), axis=1)[:, None]
        return zn @ refs.T

    scorer = Scorer(("alice", "bob"), threshold=0.8, scores=scores)
    assert scores(x[:20].mean(0, keepdims=True))[0, 0] > 0.8  # the merged cluster passes
    assert scores(x[10:20].mean(0, keepdims=True)).max() < 0.8  # its stranger part does not
    labels, names = split_rejected(x, np.ones(30), merged, ["alice", "bob"], scorer, fine, coarse)
    assert [names[i] for i in labels[:10]] == ["alice"] * 10
    assert [names[i] for i in labels[20:]] == ["bob"] * 10
    assert all(names[i] is None for i in labels[10:20]) and len(set(labels[10:20])) == 1
    # a lenient identifier accepts the stranger's part; the margin still takes it out
    lenient = Scorer(("alice", "bob"), threshold=0.5, scores=scores)
    assert 0.5 < scores(x[10:20].mean(0, keepdims=True))[0, 0] < 0.7
    kept, names = split_rejected(x, np.ones(30), merged, ["alice", "bob"], lenient, fine, coarse)
    assert [names[i] for i in kept[10:20]] == ["alice"] * 10
    out, names = split_rejected(
        x, np.ones(30), merged, ["alice", "bob"], lenient, fine, coarse, margin=0.5
    )
    assert [names[i] for i in out[:10]] == ["alice"] * 10
    assert all(names[i] is None for i in out[10:20])


def _two_speakers(overlap: np.ndarray | None = None) -> tuple[Any, np.ndarray]:
    """An analysed 10 s recording: speaker ``a`` in the first 6 windows, another in the last 6;
    returns it and ``a``'s direction."""
    from speakerrpl.diarization import Diarization

    rng = np.random.default_rng(4)
    a, b = rng.normal(size=8), rng.normal(size=8)
    emb = np.concatenate([a + 0.05 * rng.normal(size=(6, 8)), b + 0.05 * rng.normal(size=(6, 8))])
    regions = [(0.0, 9.75)]
    windows = plan_windows(regions, window=1.5, hop=0.75)[:12]
    extra = {} if overlap is None else {"overlap": overlap}
    analysed = Diarization([], 10.0, regions, windows, embeddings=emb.astype(np.float32), **extra)
    return analysed, a


def test_diarizer_label_uses_guided_naming_with_an_identifier() -> None:
    from speakerrpl.diarization import Diarizer

    analysed, a = _two_speakers()

    def scores(z: np.ndarray) -> np.ndarray:
        zn = z / np.linalg.norm(z, axis=1, keepdims=True)
        return zn @ (a / np.linalg.norm(a))[:, None]

    diarizer = Diarizer(frontend=_MeanFrontend(), vad=object())
    named = diarizer.label(analysed, Scorer(("ann",), 0.9, scores))
    assert [s.label for s in named.segments] == ["ann", "SPEAKER_01"]
    assert named.segments[0].score > 0.9 > named.segments[1].score
    anonymous = diarizer.label(analysed)
    assert [s.label for s in anonymous.segments] == ["SPEAKER_01", "SPEAKER_02"]


# --- naming of averaged embeddings: the centroid threshold ----------------------------------


def test_centroid_factor_names_a_true_speaker_just_short_of_the_threshold() -> None:
    from speakerrpl.diarization import Diarization, Diarizer
    from speakerrpl.diarization.naming import centroid_scorer

    rng = np.random.default_rng(2)
    alice, off, other = np.eye(16)[:3]  # alice recorded badly: 0.8 alice + 0.6 off-axis
    emb = np.concatenate([0.8 * alice + 0.6 * off + 0.01 * rng.normal(size=(12, 16)),
                          other + 0.01 * rng.normal(size=(12, 16))])  # fmt: skip
    regions = [(0.0, 18.75)]
    windows = plan_windows(regions, window=1.5, hop=0.75)[:24]
    analysed = Diarization([], 19.0, regions, windows, embeddings=emb.astype(np.float32))

    def scores(z: np.ndarray) -> np.ndarray:  # cosine to alice: 0.8 for her, 0 for the other
        return (z / np.linalg.norm(z, axis=1, keepdims=True)) @ alice[:, None]

    scorer = Scorer(("alice",), 0.9, scores)
    assert centroid_scorer(scorer, 0.8).threshold == pytest.approx(0.72)
    labels = {}
    for factor in (1.0, 0.8):
        diarizer = Diarizer(frontend=_MeanFrontend(), vad=object(), guided_threshold=None,
                            centroid_factor=factor)  # fmt: skip
        labels[factor] = [s.label for s in diarizer.label(analysed, scorer).segments]
    assert labels[1.0] == ["SPEAKER_01", "SPEAKER_02"]  # 0.8 < 0.9: a stranger
    assert labels[0.8] == ["alice", "SPEAKER_01"]  # 0.8 >= 0.72; the other stays anonymous
    negative = centroid_scorer(Scorer(("a",), -2.0, scores), 0.5)
    assert negative.threshold == pytest.approx(-3.0)  # always lower, whatever the sign
    with pytest.raises(InvalidInputError, match="centroid_factor"):
        DiarizerSettings(centroid_factor=0.0)


# --- overlap: second speakers --------------------------------------------------------------


def test_second_speaker_is_the_nearest_other_one_in_time() -> None:
    from speakerrpl.diarization.overlap import add_second_speakers, overlap_regions

    frames = np.zeros(600)  # 10.1 s of frames
    frames[300:360] = 0.9  # 5.06-6.08 s
    regions = overlap_regions(frames, threshold=0.5)
    assert len(regions) == 1 and regions[0][0] == pytest.approx(5.06, abs=0.02)
    assert overlap_regions(frames, threshold=0.95) == []
    assert overlap_regions(frames, threshold=0.5, min_duration=2.0) == []
    turns_ = [(0.0, 3.0, 0), (3.5, 5.5, 1), (5.5, 9.0, 2)]
    out = add_second_speakers(turns_, regions)
    added = sorted(set(out) - set(turns_))
    assert [t[2] for t in added] == [2, 1]  # 1 is finishing while 2 starts
    assert added[0][:2] == pytest.approx((regions[0][0], 5.5))
    assert added[1][:2] == pytest.approx((5.5, regions[0][1]))
    assert add_second_speakers([(0.0, 9.0, 0)], regions) == [(0.0, 9.0, 0)]  # nobody else
    far = add_second_speakers([(0.0, 6.0, 0), (12.0, 14.0, 1)], regions, reach=3.0)
    assert far == [(0.0, 6.0, 0), (12.0, 14.0, 1)]  # the other speaker is too far away


class _FixedOverlap:
    """An overlap detector that says 'two people' from 4.0 to 5.0 s."""

    def probabilities(self, chunks: object) -> np.ndarray:
        p = np.zeros(int(10.0 / (270 / 16000)))
        p[int(4.0 * 16000 / 270) : int(5.0 * 16000 / 270)] = 0.9
        return p


def test_diarizer_adds_the_second_speaker_where_overlap_is_detected() -> None:
    from speakerrpl.diarization import Diarizer

    analysed, _ = _two_speakers(overlap=_FixedOverlap().probabilities(None))
    plain = Diarizer(frontend=_MeanFrontend(), vad=object(), overlap_threshold=None)
    single = plain.label(analysed).segments
    assert len(single) == 2 and single[0].end == pytest.approx(single[1].start)
    double = Diarizer(frontend=_MeanFrontend(), vad=object())  # the default: 0.8
    segs = double.label(analysed).segments
    assert len(segs) == 4  # each speaker gets the other's part of the overlap
    for instant in (4.2, 4.95):  # inside the overlap: both speakers; outside: one
        assert {s.label for s in segs if s.start <= instant < s.end} == {s.label for s in single}
    for instant in (3.5, 5.5):
        assert len({s.label for s in segs if s.start <= instant < s.end}) == 1
    time_of = {s.label: sum(t.end - t.start for t in segs if t.label == s.label) for s in segs}
    assert sum(time_of.values()) == pytest.approx(9.75 + 1.0, abs=0.05)
    with pytest.raises(InvalidInputError, match="overlap_threshold"):
        DiarizerSettings(overlap_threshold=1.5)


def test_the_embedding_device_is_checked_when_the_diarizer_is_made() -> None:
    import torch

    from speakerrpl.diarization import Diarizer

    with pytest.raises(InvalidInputError, match="expected device"):
        Diarizer(device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInputError, match="CUDA is not available"):
            Diarizer(device="cuda")
    assert Diarizer(device="cpu").device == "cpu"
