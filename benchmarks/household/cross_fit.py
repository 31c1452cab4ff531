"""Do the stranger tails hold for *other* development strangers? A cross-fitted check.

For each K, the strangers of every development fold are split in two by source voice (a voice
and its vocal-tract-shifted copies stay together); the tail of the blended default (for each
cosine weight ``w``) is fitted on one half of every fold exactly as ``tables.py`` does
(``heaviest_tail``, with its in-sample raise) and the other half's clean-channel strangers
accepted at ``--far`` are counted, then the halves swap. A tail that only fits the strangers
it saw shows up as a cross-fitted FA above the request. Mean EER over the conditions is
printed beside it (all strangers).

Run:  PYTHONPATH=src python benchmarks/household/cross_fit.py /tmp/i12c/devplus
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
from study import DEMO, SEEDS, protocol_for, source_voice, with_extra_voices  # type: ignore[import-not-found]
from tables import Scorer, blended, condition_eers, heaviest_tail, load_fits, n_targets

from speakerrpl.embeddings import EmbeddingSet
from speakerrpl.identifier.blend import CosineBlend, blend_weight
from speakerrpl.identifier.calibration import StrangerTail
from speakerrpl.identifier.tails import COMPENSATED_TAILS

FOLDS = {1: 20, 2: 20, 4: 20, 8: 20, 20: 10, 50: 5, 100: 20}  # as the tables were measured
WEIGHTS = (0.0, 0.1, 0.3, 0.5, 0.7, 1.0)


def stranger_halves(speakers: np.ndarray, seed: int) -> np.ndarray:
    """True for the strangers of one half, split by source voice."""
    groups = sorted({source_voice(s) for s in speakers})
    random.Random(seed).shuffle(groups)
    first = set(groups[::2])
    return np.asarray([source_voice(s) in first for s in speakers])


def fold_of(name: str) -> int:
    """The fold of a study file name: ``k004-f12.npz`` -> 12."""
    return int(name.split("-f")[1].split(".")[0])


def only(s: Scorer, keep: np.ndarray) -> Scorer:
    return {key: v[keep] if key.startswith("unknown|") else v for key, v in s.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dev", type=Path, help="devplus study directory")
    ap.add_argument("--cosine", default="cosine_wccn")
    ap.add_argument("--adapter", default="softmax_f30_wccn")
    ap.add_argument("--far", type=float, default=0.01)
    ap.add_argument("--extra-voices", type=Path, default=Path("/tmp/i13corpus/full/eval.npz"))
    args = ap.parse_args()
    emb = with_extra_voices(
        EmbeddingSet.load(DEMO / "eval.npz"), EmbeddingSet.load(args.extra_voices)
    )
    index = {u: i for i, u in enumerate(emb.utt_ids.tolist())}
    fits = load_fits(args.dev)
    cos, ad = fits[args.cosine], fits[args.adapter]
    for k, n_folds in FOLDS.items():
        folds = sorted((fold_of(n), n) for n in cos if n_targets(cos[n]) == k and n in ad)
        names = [n for _, n in folds]
        if k < 2 or not names:
            continue
        proto = protocol_for(emb, "devplus", k, n_folds, SEEDS["devplus"] + k)
        halves = []
        for fold, _ in folds:
            spk = emb.speakers[[index[u] for u in proto.folds[fold].test_unknown]]
            halves.append(stranger_halves(spk, fold))
        shipped = blend_weight("softmax", k, "compensated")
        for w in sorted({*WEIGHTS, shipped}):
            blend = CosineBlend(w, COMPENSATED_TAILS["cosine"][k], COMPENSATED_TAILS["softmax"][k])
            scores = [blended(cos[n], ad[n], blend) for n in names]
            accepted = []
            for side in (True, False):
                fitted = [only(s, h == side) for s, h in zip(scores, halves, strict=True)]
                tail = heaviest_tail(fitted, k, args.far)
                thr = StrangerTail.from_table({k: tail}).score_threshold(args.far, k)
                for s, h in zip(scores, halves, strict=True):
                    accepted.append(
                        100 * float(np.mean(s["unknown|clean"][h != side].max(1) >= thr))
                    )
            eers = float(np.mean([condition_eers(s).mean() for s in scores]))
            mark = " (the default's weight)" if w == shipped else ""
            print(f"K={k:3d} w={w:.1f}{mark}: cross-fitted FA clean {np.mean(accepted):.2f} ± "
                  f"{np.std(accepted):.2f} %, mean EER {eers:.2f} %", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
