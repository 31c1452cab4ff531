"""Evaluation conversations of bench_diarization.py: synthetic ones from the demo corpus, and
the real pocketsphinx recordings spliced into a dialogue (not a test; never collected).

A case is one conversation (seeded), the speakers enrolled in it with their enrollment
embeddings (3 clean utterances each, never used in the conversation; drawn from the clips that
the corpus's ``utterances.tsv`` marks ``enroll`` when it has one) and the strangers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speakerrpl.audio import load_audio
from speakerrpl.data.kaldi import read_data_dir
from speakerrpl.diarization.simulate import (
    Conversation,
    overlap_ratio,
    simulate_conversation,
    trim_silence,
)
from speakerrpl.embeddings import EmbeddingSet

CONDITIONS = ("clean", "noise", "babble", "reverb", "reverb+noise")
POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")
N_ENROLL = 3


@dataclass
class Case:
    """One evaluation conversation."""

    name: str
    conversation: Conversation
    enrolled: list[str]
    strangers: list[str]
    x_enroll: np.ndarray
    y_enroll: list[str]
    condition: str

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "duration_s": round(self.conversation.duration, 1),
            "speakers": len(self.enrolled) + len(self.strangers),
            "enrolled": len(self.enrolled),
            "condition": self.condition,
            "overlap": round(overlap_ratio(self.conversation.reference), 3),
        }


class Corpus:
    """The clean eval utterances of the demo corpus and their CAM++ embeddings."""

    def __init__(self, demo: Path) -> None:
        emb = EmbeddingSet.load(demo / "eval.npz")
        self.row = {u: i for i, u in enumerate(emb.utt_ids.tolist())}
        self.embeddings = emb.embeddings
        self.by_speaker: dict[str, list[Path]] = defaultdict(list)
        self.utt_of: dict[Path, str] = {}
        self.enroll_clips: set[Path] = set()
        roles = _roles(demo / "corpus" / "eval" / "utterances.tsv")
        for utt in read_data_dir(demo / "corpus" / "eval"):
            if "__" not in utt.utt_id:  # condition copies hold a "__<condition>" suffix
                self.by_speaker[utt.speaker].append(utt.path)
                self.utt_of[utt.path] = utt.utt_id
                if roles.get(utt.utt_id, "enroll") == "enroll":
                    self.enroll_clips.add(utt.path)
        pool = EmbeddingSet.load(demo / "pool.npz")
        self.pool = (pool.embeddings, pool.speakers)

    def case(self, seed: int, n_range: tuple[int, int] = (3, 5), rirs: list | None = None) -> Case:
        rng = np.random.default_rng(seed)
        speakers = sorted(self.by_speaker)
        n = int(rng.integers(n_range[0], n_range[1] + 1))
        chosen = [str(s) for s in rng.choice(speakers, size=n, replace=False)]
        k = int(rng.integers(2, min(3, n - 1) + 1))
        enrolled, strangers = chosen[:k], chosen[k:]
        sources, x, y = {}, [], []
        for s in chosen:
            files = [self.by_speaker[s][i] for i in rng.permutation(len(self.by_speaker[s]))]
            if s in enrolled:
                enroll = [f for f in files if f in self.enroll_clips][:N_ENROLL]
                x += [self.embeddings[self.row[self.utt_of[f]]] for f in enroll]
                y += [s] * len(enroll)
                files = [f for f in files if f not in enroll]
            sources[s] = [load_audio(f, min_duration=0) for f in files]
        others = [s for s in speakers if s not in chosen]
        babble = [load_audio(self.by_speaker[s][0], min_duration=0) for s in others[:6]]
        condition = CONDITIONS[seed % len(CONDITIONS)]
        noisy = "noise" in condition or condition == "babble"
        conv = simulate_conversation(
            sources, rng, duration=float(rng.uniform(60, 180)),
            overlap_probability=float(rng.uniform(0.0, 1.0)),
            snr=float(rng.uniform(5, 20)) if noisy else None,
            noise="babble" if condition == "babble" else "coloured", babble_sources=babble,
            rirs=(rirs or []) if "reverb" in condition else [],
        )  # fmt: skip
        return Case(f"seed{seed}", conv, enrolled, strangers, np.stack(x), y, condition)


def _roles(path: Path) -> dict[str, str]:
    """Utterance id -> role (``enroll``/``test``) from ``utterances.tsv`` ({} when absent)."""
    if not path.is_file():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    column = lines[0].split("\t").index("role")
    return {row[0]: row[column] for row in (ln.split("\t") for ln in lines[1:]) if row}


def pocketsphinx_case(frontend: object, corpus: Corpus, enrolled: str) -> Case:
    """The two real pocketsphinx talkers spliced into a dialogue (0.5 s pauses).

    ``enrolled`` (``"librivox"`` or ``"cards"``) is enrolled from its first 2 files together
    with one corpus voice that does not speak; the other talker is the stranger. The reference
    turns are the files with their leading/trailing silence trimmed.
    """
    files = {w: sorted((POCKETSPHINX / w).glob("*.wav")) for w in ("librivox", "cards")}
    stranger = "cards" if enrolled == "librivox" else "librivox"
    talk = {enrolled: files[enrolled][2:], stranger: files[stranger]}
    order = [(w, i) for i in range(5) for w in (enrolled, stranger) if i < len(talk[w])]
    parts, ref, t = [], [], 0.0
    for who, i in order:
        wave = trim_silence(load_audio(talk[who][i]))
        parts += [wave, np.zeros(8000, np.float32)]
        ref.append((round(t, 3), round(t + wave.size / 16000, 3), who))
        t += wave.size / 16000 + 0.5
    x = np.asarray(frontend.embed([load_audio(p) for p in files[enrolled][:2]]))  # type: ignore[attr-defined]
    other = sorted(corpus.by_speaker)[0]
    rows = [corpus.row[corpus.utt_of[f]] for f in corpus.by_speaker[other][:N_ENROLL]]
    x = np.concatenate([x, corpus.embeddings[rows]])
    y = [enrolled] * 2 + [other] * N_ENROLL
    conv = Conversation(np.concatenate(parts), ref)
    return Case(f"pocketsphinx-{enrolled}", conv, [enrolled, other], [stranger], x, y, "real")
