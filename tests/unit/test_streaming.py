"""StreamingIdentifier on tones (a spectral toy frontend, an energy VAD): chunking, timing of
decisions, updates, reset, input forms. The real Silero + CAM++ path is in
tests/integration/test_streaming_real.py."""

from __future__ import annotations

import numpy as np
import pytest

from speakerrpl.errors import InvalidInputError
from speakerrpl.identifier import OpenSetSpeakerIdentifier
from speakerrpl.streaming import StreamingIdentifier
from toy_audio import EnergyVAD, ToneFrontend, tone

RATE = 16000


@pytest.fixture(scope="module")
def identifier() -> OpenSetSpeakerIdentifier:
    f = ToneFrontend()
    x = f.embed([tone(300), tone(310), tone(1200), tone(1210)])
    return OpenSetSpeakerIdentifier(method="cosine").fit(x, ["alice", "alice", "bob", "bob"])


def stream(ident: OpenSetSpeakerIdentifier, wave: np.ndarray, sizes: list[int], **kw) -> list:
    sid = StreamingIdentifier(ident, ToneFrontend(), vad=EnergyVAD(), **kw)
    made, i, k = [], 0, 0
    while i < len(wave):
        out = sid.feed(wave[i : i + sizes[k % len(sizes)]])
        i, k = i + sizes[k % len(sizes)], k + 1
        if out is not None:
            made.append(out)
    last = sid.finish()
    return made + ([last] if last is not None else [])


def with_silence(wave: np.ndarray, before: float = 1.0) -> np.ndarray:
    return np.concatenate([np.zeros(int(before * RATE), np.float32), wave])


def test_first_decision_after_min_speech_then_updates(identifier) -> None:
    wave = with_silence(tone(300, seconds=3.0))
    made = stream(identifier, wave, [1000], min_speech=1.5, update_every=0.5)
    assert [d.speaker for d in made] == ["alice"] * len(made)
    first = made[0]
    assert 1.5 <= first.speech_seconds < 1.5 + 512 / RATE
    # silence is not speech: the decision comes 1 s of silence + 1.5 s of speech into the stream
    assert abs(first.stream_seconds - 2.5) <= 512 / RATE
    assert [d.index for d in made] == list(range(len(made)))
    steps = np.diff([d.speech_seconds for d in made[:-1]])
    assert np.all((steps >= 0.5) & (steps < 0.5 + 2 * 512 / RATE)) and len(made) >= 3
    assert made[-1].speech_seconds == pytest.approx(2.976, abs=0.04)  # finish(): all 3 s


def test_any_chunk_size_gives_the_same_decisions(identifier) -> None:
    wave = with_silence(tone(1200, seconds=2.5), before=0.3)
    runs = [stream(identifier, wave, sizes) for sizes in ([160], [4096], [1, 511, 7777, 33])]
    summaries = [[(d.speaker, d.speech_seconds, d.stream_seconds) for d in r] for r in runs]
    assert summaries[0] == summaries[1] == summaries[2] and summaries[0][0][0] == "bob"


def test_stranger_silence_and_no_updates(identifier) -> None:
    assert {d.speaker for d in stream(identifier, tone(3000, 2.0), [800])} == {"<unknown>"}
    assert stream(identifier, np.zeros(3 * RATE, np.float32), [800]) == []
    once = stream(identifier, tone(300, 4.0), [800], update_every=0)
    assert len(once) == 2 and once[1].speech_seconds > once[0].speech_seconds  # + finish()


def test_reset_forgets_the_stream(identifier) -> None:
    vad = EnergyVAD()
    sid = StreamingIdentifier(identifier, ToneFrontend(), vad=vad, min_speech=1.0)
    assert sid.feed(tone(300, 1.2)) is not None and sid.decision.speaker == "alice"
    sid.reset()
    assert sid.decision is None and sid.speech_seconds == 0 and vad.resets == 2
    out = sid.feed(tone(1200, 1.2))
    assert out is not None and out.index == 0 and out.speaker == "bob"


def test_input_forms(identifier) -> None:
    wave = tone(300, 2.0)
    pcm = (wave * 32767).astype("<i2")
    for chunk in (pcm.tobytes(), pcm):
        sid = StreamingIdentifier(identifier, ToneFrontend(), vad=EnergyVAD())
        assert sid.feed(chunk) is not None and sid.decision.speaker == "alice"
    slow = tone(300, 2.0, rate=22050)
    sid = StreamingIdentifier(identifier, ToneFrontend(), vad=EnergyVAD(), sample_rate=22050)
    made = [d for i in range(0, len(slow), 1000) if (d := sid.feed(slow[i : i + 1000]))]
    assert made and made[0].speaker == "alice"
    assert made[0].stream_seconds == pytest.approx(1.5, abs=0.1)
    with pytest.raises(InvalidInputError, match="even length"):
        sid.feed(b"\x00\x01\x02")
    with pytest.raises(InvalidInputError, match="NaN"):
        sid.feed(np.array([np.nan], np.float32))
    with pytest.raises(InvalidInputError, match="min_speech"):
        StreamingIdentifier(identifier, ToneFrontend(), vad=EnergyVAD(), min_speech=0)
