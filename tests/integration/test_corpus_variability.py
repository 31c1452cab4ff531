"""Within-speaker variability keeps the identity: CAM++ on utterances with drawn prosody."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from speakerrpl.synth.engines import VoiceSpec, synthesize_many
from speakerrpl.synth.prosody import draw_prosody

TEXTS = [
    "Please turn on the lights in the kitchen.",
    "What is the weather going to be like tomorrow morning?",
    "Set a timer for twenty minutes and remind me to call my sister.",
    "Play some quiet music in the living room.",
    "How long does it take to drive to the station from here?",
]
VOICES = [
    VoiceSpec("flite-slt", "flite", "slt", "en", "F", "eval"),
    VoiceSpec("flite-awb", "flite", "awb", "en", "M", "eval"),
    VoiceSpec("pico-en-US", "pico", "en-US", "en", "F", "eval"),
    VoiceSpec("mbrola-us1", "mbrola", "mb-us1", "en", "F", "eval"),
    VoiceSpec("mbrola-us2", "mbrola", "mb-us2", "en", "M", "eval"),
    VoiceSpec("espeak-Alex", "espeak", "en-us+Alex", "en", "M", "eval", {"rate": 165}),
]


@pytest.mark.slow
@pytest.mark.skipif(
    any(shutil.which(c) is None for c in ("flite", "pico2wave", "mbrola", "espeak-ng")),
    reason="TTS engines: scripts/install_system_deps.sh",
)
def test_same_voice_stays_closer_than_other_voices(campplus) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    waves, labels = [], []
    for i, spec in enumerate(VOICES):
        prosodies = [draw_prosody(rng, spec.engine) for _ in TEXTS]
        waves += synthesize_many(spec, TEXTS, prosodies)
        labels += [i] * len(TEXTS)
    emb = np.asarray(campplus.embed(waves), dtype=np.float64)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    cos = emb @ emb.T
    y = np.asarray(labels)
    upper = np.triu(np.ones_like(cos, dtype=bool), k=1)
    same = cos[upper & (y[:, None] == y[None, :])]
    other = cos[upper & (y[:, None] != y[None, :])]
    assert np.median(same) > np.median(other) + 0.2
    # per voice, too: its own median pair beats its median pair with any other voice
    for v in range(len(VOICES)):
        own = cos[np.ix_(y == v, y == v)][np.triu_indices(len(TEXTS), 1)]
        for w in range(len(VOICES)):
            if w != v:
                assert np.median(own) > np.median(cos[np.ix_(y == v, y == w)])
    # and the drawn prosody does vary the embeddings (not one fixed rendering)
    assert np.median(same) < 0.98
