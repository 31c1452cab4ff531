"""Enrollment hygiene helpers: speech measured after VAD, clips that sound like someone else."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speakerrpl.errors import AudioTooShortError
from speakerrpl.service.engine import SpeakerEngine
from speakerrpl.service.hygiene import check_speech, cross_matches, speech_seconds
from speakerrpl.service.settings import ServiceSettings
from toy_audio import ToneFrontend, tone

PS = Path("/usr/share/pocketsphinx/test/data")


def test_silero_measures_less_speech_than_the_clip_and_none_in_a_tone() -> None:
    pytest.importorskip("onnxruntime")
    from speakerrpl.audio import load_audio

    wave = load_audio(sorted((PS / "librivox").glob("*.wav"))[0])
    seconds, how = speech_seconds(wave)
    assert how == "silero-vad" and 1.0 < seconds < wave.size / 16000
    assert speech_seconds(tone(300, 2.0))[0] < 0.3  # a tone is not speech for Silero
    assert speech_seconds(tone(300, 2.0), vad=None) == (pytest.approx(1.99, abs=0.02), "energy")


def test_check_speech_refuses_with_the_measured_duration() -> None:
    waves = [tone(300, 2.0), tone(300, 0.4)]
    assert check_speech(waves, ["a.wav", "b.wav"], 0.0, vad=None) == []
    with pytest.raises(AudioTooShortError, match=r"b\.wav: 0\.\d\d s.*at least 1 s"):
        check_speech(waves, ["a.wav", "b.wav"], 1.0, vad=None)
    assert check_speech(waves[:1], None, 1.0, vad=None)[0] == pytest.approx(1.99, abs=0.02)


@pytest.fixture(scope="module")
def two_people(tmp_path_factory: pytest.TempPathFactory) -> SpeakerEngine:
    f = ToneFrontend()
    pool = (f.embed([tone(hz) for hz in (500, 700, 900, 1500, 1800, 2100)]),
            np.array(["p1", "p2", "p3", "p4", "p5", "p6"]))  # fmt: skip
    settings = ServiceSettings(method="cosine", min_enroll_speech=0)  # tones are not speech
    eng = SpeakerEngine(tmp_path_factory.mktemp("hyg") / "r.db", settings, frontend=f, pool=pool)
    eng.enroll("alice", [tone(300), tone(305)])
    eng.enroll("bob", [tone(1200), tone(1210)])
    return eng


def test_cross_matches_flags_clips_of_another_person(two_people: SpeakerEngine) -> None:
    model = two_people.model()
    f = ToneFrontend()
    clips = f.embed([tone(1205), tone(302)])
    flagged = cross_matches(model, "alice", clips, ["bobby.wav", "alice3.wav"])
    assert [(w["clip"], w["other"]) for w in flagged] == [("bobby.wav", "bob")]
    new = cross_matches(model, "carol", f.embed([tone(303), tone(2600)]), None)
    assert [(w["clip"], w["other"]) for w in new] == [("clip 0", "alice")]
    assert "accepted as them" in new[0]["message"]
    assert cross_matches(None, "alice", clips, None) == []
