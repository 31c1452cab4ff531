"""Multi-condition enrollment: do channel copies of the enrollment audio lower EER?

Every enrollment candidate of the demo corpus (the clean utterances that have no test copies)
is passed through the seven degraded channels of ``speakerrpl.synth.enrollment_copies``
(device, codec, phone, far, babble, noise, music; the library's rooms and seeds, the product's
copies) with babble of 4 demo *pool* voices per clip (the product's talkers are its own
espeak-ng voices, ``babble_talkers``), and embedded with CAM++ once (``--copies``, about
4 minutes on 2 cores). Then, on the study's folds of ``--half``, each configuration is fitted
twice, on the 3 clean enrollment clips per target and on those plus their 21 channel copies,
and the EER of every condition is printed (mean over folds). Thresholds are not evaluated:
the stranger tails were measured with clean enrollment. A third variant (``shift``) needs no
enrollment audio: each clean clip's unit embedding is moved by the displacement (copy minus
clean, unit embeddings) one random pool utterance showed in each of the seven channels
(``--pool-shifts``, the channel model's pool copies, about 2 minutes to embed once).

Run:  PYTHONPATH=src python benchmarks/household/enrollment_copies.py --half dev --k 4 20 \
          --configs default cosine_wccn cosine
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf
from channel_model import _read_kaldi, channel_copies  # type: ignore[import-not-found]
from study import CONDITIONS, CONFIGS, DEMO, SEEDS, protocol_for  # type: ignore[import-not-found]

from speakerrpl.embeddings import EmbeddingSet
from speakerrpl.frontends import get_frontend
from speakerrpl.frontends.base import torch_threads
from speakerrpl.identifier import OpenSetSpeakerIdentifier
from speakerrpl.metrics import eer, identification_trials
from speakerrpl.synth.enrollment_copies import BABBLE_SEED, CHANNELS, N_BABBLE
from speakerrpl.synth.enrollment_copies import channel_copies as clip_copies
from speakerrpl.vectors import l2_normalize


def enrollment_candidates(corpus: EmbeddingSet) -> list[str]:
    """Clean utterances without test copies: the ones protocols enroll from."""
    ids = corpus.utt_ids.tolist()
    tested = {u.split("__")[0] for u in ids if "__" in u}
    return [u for u in ids if "__" not in u and u not in tested]


def build_copies(corpus_dir: Path, out: Path, skip_voices: set[str] | None = None) -> EmbeddingSet:
    """Channel copies of every enrollment candidate (of voices not in ``skip_voices``),
    embedded; ids ``<utt>##<channel>``."""
    corpus = EmbeddingSet.load(corpus_dir / "eval.npz")
    speaker = dict(zip(corpus.utt_ids.tolist(), corpus.speakers.tolist(), strict=True))
    eval_dir, pool_dir = corpus_dir / "corpus" / "eval", corpus_dir / "corpus" / "pool"
    wav = _read_kaldi(eval_dir / "wav.scp")
    pool = [sf.read(str(pool_dir / p.strip()), dtype="float32")[0]
            for p in _read_kaldi(pool_dir / "wav.scp").values()]  # fmt: skip
    pick = np.random.default_rng(BABBLE_SEED)
    waves, ids = [], []
    for utt in enrollment_candidates(corpus):
        if skip_voices and speaker[utt] in skip_voices:
            continue
        clean = sf.read(str(eval_dir / wav[utt].strip()), dtype="float32")[0]
        babble = [pool[i] for i in pick.choice(len(pool), N_BABBLE, replace=False)]
        waves += clip_copies(clean, utt, babble)
        ids += [f"{utt}##{name}" for name in CHANNELS]
    with torch_threads(2):
        emb = get_frontend("campplus").embed(waves)
    copies = EmbeddingSet(emb, ids, [speaker[u.split("##")[0]] for u in ids], "campplus")
    copies.save(out)
    return copies


def devplus_copies(demo_copies: EmbeddingSet, extra_corpus: Path, out: Path) -> EmbeddingSet:
    """The demo copies plus those of the voices only ``extra_corpus`` (a ``--size full`` build)
    has: the enrollment copies of ``study.py --half devplus``."""
    demo_voices = set(EmbeddingSet.load(DEMO / "eval.npz").speakers.tolist())
    extra = build_copies(extra_corpus, out.with_suffix(".extra.npz"), skip_voices=demo_voices)
    merged = EmbeddingSet(
        np.concatenate([demo_copies.embeddings, extra.embeddings]),
        [*demo_copies.utt_ids.tolist(), *extra.utt_ids.tolist()],
        [*demo_copies.speakers.tolist(), *extra.speakers.tolist()],
        demo_copies.frontend,
    )
    merged.save(out)
    return merged


def pool_shifts(out: Path) -> np.ndarray:
    """(utterances, channels, D) displacements of the pool's channel copies from their clean
    originals, on unit embeddings (the channel model's copies, ``channel_model.py``)."""
    if not out.is_file():
        clean = EmbeddingSet.load(DEMO / "pool.npz")
        waves, originals = channel_copies(DEMO / "corpus" / "pool")
        with torch_threads(2):
            copies = get_frontend("campplus").embed(waves)
        index = {u: i for i, u in enumerate(clean.utt_ids.tolist())}
        np.savez(out, clean=clean.embeddings[[index[u] for u in originals]], copies=copies)
    with np.load(out) as data:
        clean, copies = l2_normalize(data["clean"]), l2_normalize(data["copies"])
    return (copies - clean).reshape(-1, len(CHANNELS), clean.shape[1])


def condition_eers(est: OpenSetSpeakerIdentifier, fold, targets, emb, index) -> list[float]:
    order = [est.classes_.index(t) for t in targets]
    known_y = np.asarray(
        [targets.index(s) for s in emb.speakers[[index[u] for u in fold.test_known]]]
    )
    out = []
    for cond in CONDITIONS:
        sfx = "" if cond == "clean" else f"__{cond}"
        known = est.decision_function(emb.embeddings[[index[u + sfx] for u in fold.test_known]])
        unknown = est.decision_function(emb.embeddings[[index[u + sfx] for u in fold.test_unknown]])
        scores, labels = identification_trials(known[:, order], known_y, unknown[:, order])
        out.append(100 * eer(scores, labels))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--half", default="dev", choices=("dev", "report"))
    ap.add_argument("--k", type=int, nargs="+", default=[4, 20])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--configs", nargs="+", default=["default", "cosine_wccn", "cosine"])
    ap.add_argument("--copies", type=Path, default=Path("/tmp/enrollment_copies.npz"))
    ap.add_argument("--pool-shifts", type=Path, default=Path("/tmp/pool_channel_shifts.npz"))
    ap.add_argument(
        "--devplus-copies",
        type=Path,
        default=None,
        help="also write the copies study.py --half devplus needs here (then stop)",
    )
    ap.add_argument("--extra-corpus", type=Path, default=Path("/tmp/i13corpus/full"))
    args = ap.parse_args()
    emb, pool = EmbeddingSet.load(DEMO / "eval.npz"), EmbeddingSet.load(DEMO / "pool.npz")
    copies = (
        EmbeddingSet.load(args.copies) if args.copies.is_file() else build_copies(DEMO, args.copies)
    )
    if args.devplus_copies:
        merged = devplus_copies(copies, args.extra_corpus, args.devplus_copies)
        print(f"{len(merged.utt_ids)} copies -> {args.devplus_copies}")
        return
    shifts = pool_shifts(args.pool_shifts)
    index = {u: i for i, u in enumerate(emb.utt_ids.tolist())}
    of_clip: dict[str, list[int]] = {}
    for i, u in enumerate(copies.utt_ids.tolist()):
        of_clip.setdefault(u.split("##")[0], []).append(i)
    print("K config enrollment " + " ".join(CONDITIONS) + " mean")
    with torch_threads(1):
        for k in args.k:
            seed = SEEDS[args.half] + k
            rows: dict[tuple[str, str], list[list[float]]] = {}
            for f, fold in enumerate(protocol_for(emb, args.half, k, args.folds, seed).folds):
                targets = list(fold.targets)
                clips = [u for t in targets for u in fold.enroll[t]]
                x = emb.embeddings[[index[u] for u in clips]]
                y = np.repeat(targets, [len(fold.enroll[t]) for t in targets])
                extra = [j for u in clips for j in of_clip[u]]
                x_multi = np.concatenate([x, copies.embeddings[extra]])
                y_multi = np.concatenate([y, copies.speakers[extra]])
                pick = np.random.default_rng(f).integers(0, len(shifts), (len(x), len(CHANNELS)))
                moved = l2_normalize(x)[:, None, :] + shifts[pick, np.arange(len(CHANNELS))]
                x_shift = np.concatenate([x, moved.reshape(-1, x.shape[1])])
                y_shift = np.concatenate([y, np.repeat(y, len(CHANNELS))])
                variants = {
                    "clean": (x, y),
                    "multi": (x_multi, y_multi),
                    "shift": (x_shift, y_shift),
                }
                for name in args.configs:
                    for how, (xs, ys) in variants.items():
                        fold_seed = SEEDS[args.half] + 1000 * k + f
                        est = OpenSetSpeakerIdentifier(**CONFIGS[name], random_state=fold_seed)
                        est.fit(xs, ys, pool=(pool.embeddings, pool.speakers))
                        rows.setdefault((name, how), []).append(
                            condition_eers(est, fold, targets, emb, index)
                        )
            for (name, how), values in rows.items():
                m = np.asarray(values).mean(axis=0)
                print(f"{k} {name} {how} " + " ".join(f"{v:.2f}" for v in m) + f" {m.mean():.2f}",
                      flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
