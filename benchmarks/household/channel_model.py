"""Fit the shipped CAM++ channel model (``speakerrpl/identifier/channel-campplus.npz``).

Takes the demo corpus's pool voices (espeak-ng variants, disjoint from the evaluation voices),
passes each clean pool utterance through seven degraded channels of
:func:`speakerrpl.synth.conditions.apply_condition` (device, codec, phone, far, babble, noise,
music) with seeds and rooms disjoint from the corpus test copies and babble drawn from *other
pool voices*, embeds the copies with CAM++ and fits WCCN
(:func:`speakerrpl.identifier.channel.fit_wccn`) on the clean + degraded embeddings, each
clean utterance grouped with its own copies (channel variability only).
Deterministic for a corpus build (about 2 minutes on 2 cores).

Run:  PYTHONPATH=src python benchmarks/household/channel_model.py [--corpus data/demo]
"""

from __future__ import annotations

import argparse
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf

from speakerrpl.embeddings import EmbeddingSet
from speakerrpl.frontends import get_frontend
from speakerrpl.frontends.base import torch_threads
from speakerrpl.identifier.channel import SHIPPED, fit_wccn
from speakerrpl.synth.channels import room_impulse_responses
from speakerrpl.synth.conditions import apply_condition
from speakerrpl.synth.enrollment_copies import CHANNELS

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"
ROOM_SEED, BABBLE_SEED, CONDITION_SEED = 777, 5, 99  # the corpus test copies use the build seed
N_ROOMS, N_BABBLE = 12, 4


def _read_kaldi(path: Path) -> dict[str, str]:
    return dict(line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())


def channel_copies(pool_dir: Path) -> tuple[list[np.ndarray], list[str]]:
    """Degraded copies of every pool utterance: waves and the id of the clean original."""
    wav = _read_kaldi(pool_dir / "wav.scp")
    speaker = _read_kaldi(pool_dir / "utt2spk")
    waves = {u: sf.read(str(pool_dir / p.strip()), dtype="float32")[0] for u, p in wav.items()}
    rooms = room_impulse_responses(N_ROOMS, np.random.default_rng(ROOM_SEED))
    pick = np.random.default_rng(BABBLE_SEED)
    out_w, out_u = [], []
    for utt in wav:
        others = [v for v in waves if speaker[v] != speaker[utt]]
        sources = [waves[v] for v in pick.choice(others, N_BABBLE, replace=False)]
        for name in CHANNELS:
            rng = np.random.default_rng([CONDITION_SEED, zlib.crc32(f"{utt}|{name}".encode())])
            copy, _ = apply_condition(waves[utt], name, rng, babble_sources=sources, rooms=rooms)
            out_w.append(copy)
            out_u.append(utt)
    return out_w, out_u


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", type=Path, default=DEMO, help="holds pool.npz and corpus/pool")
    ap.add_argument("--out", type=Path, default=SHIPPED["campplus"])
    args = ap.parse_args()
    clean = EmbeddingSet.load(args.corpus / "pool.npz")
    waves, originals = channel_copies(args.corpus / "corpus" / "pool")
    with torch_threads(2):
        copies = get_frontend("campplus").embed(waves)
    x = np.concatenate([clean.embeddings, copies])
    groups = np.concatenate([clean.utt_ids, np.asarray(originals)])
    model = fit_wccn(x, groups)
    model.save(args.out)
    print(f"{len(originals)} channel copies of {len(clean.speakers)} pool utterances -> {args.out}")


if __name__ == "__main__":
    main()
