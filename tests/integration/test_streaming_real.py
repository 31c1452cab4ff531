"""Streaming identification with Silero VAD and CAM++ on real recordings (registry of two real
people), and ``speakerrpl identify --stream``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from service_support import copy_registry

from speakerrpl.audio import load_audio
from speakerrpl.cli import main
from speakerrpl.service.engine import SpeakerEngine
from speakerrpl.service.settings import ServiceSettings
from speakerrpl.streaming import StreamingIdentifier

pytest_plugins = ("service_support",)  # the shared fixtures


def test_stream_decides_early_and_agrees_with_the_whole_clip(
    base_registry: Path, clips: dict, campplus, one_torch_thread
) -> None:
    engine = SpeakerEngine(base_registry, ServiceSettings(), frontend=campplus)
    model = engine.model()
    sid = StreamingIdentifier(model, campplus, min_speech=1.5, update_every=1.0)
    for name in ("bob_test", "unknown"):
        path = clips[name][-1]
        wave = load_audio(path)
        whole = engine.identify([wave])[0]["speaker"]
        sid.reset()
        for i in range(0, wave.size, 1600):  # 100 ms chunks
            sid.feed(wave[i : i + 1600])
        sid.finish()
        first, last = sid.decisions[0], sid.decisions[-1]
        # speech only: Silero drops the pauses, so the first decision needs >= 1.5 s of stream
        assert first.speech_seconds == pytest.approx(1.5, abs=0.04)
        assert first.stream_seconds >= first.speech_seconds
        assert first.stream_seconds < wave.size / 16000
        assert last.speaker == whole, (name, [d.speaker for d in sid.decisions], whole)
        assert whole == ("bob" if name == "bob_test" else "<unknown>")


def test_identify_stream_cli(
    tmp_path: Path, base_registry: Path, clips: dict, capsys: pytest.CaptureFixture
) -> None:
    import torch

    registry = copy_registry(base_registry, tmp_path / "reg.db")
    quiet = tmp_path / "quiet.wav"
    import soundfile as sf

    sf.write(quiet, np.zeros(16000, dtype=np.float32), 16000)
    threads = torch.get_num_threads()
    try:
        code = main(["identify", "--registry", str(registry), "--stream", "--no-realtime",
                     str(clips["bob_test"][-1]), str(quiet)])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    lines = capsys.readouterr().out.splitlines()
    assert code == 1  # the silent file never gets a decision
    assert lines[0].split("\t")[1] == "decision 0" and "speech=1.5" in lines[0]
    final = [ln for ln in lines if "\tfinal\t" in ln]
    assert len(final) == 1 and final[0].split("\t")[4] == "bob"
    assert "no decision: 0.00 s of speech" in lines[-1]
