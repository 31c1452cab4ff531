"""Household-size study: fit each configuration on seeded folds and keep every score it needs.

Eval speakers are split once into a *development* half (tuning, rule choice) and a *report*
half (confirmation); protocols are drawn over one half only, so tuned choices are never checked
on the voices they were chosen with. Each fit stores, for its kept members' fusion over all
training classes, the scores of: the enrollment, every pool voice the fit did not use as a
class, and the known / unknown tests of each condition. Calibration rules are then compared
offline on those stored scores (:mod:`benchmarks.household.rules`), without refitting.

Run:  PYTHONPATH=src python benchmarks/household/study.py --half dev --k 4 20 --folds 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from speakerrpl.data.condition_ids import CONDITIONS as CORPUS_CONDITIONS
from speakerrpl.data.protocols import Protocol, make_corpus_protocol
from speakerrpl.embeddings import EmbeddingSet
from speakerrpl.evaluation.units import uses_cohort
from speakerrpl.frontends import get_frontend
from speakerrpl.frontends.base import torch_threads
from speakerrpl.identifier import OpenSetSpeakerIdentifier
from speakerrpl.identifier.tails import FRONTEND
from speakerrpl.identifier.training_set import reserve_calibration
from speakerrpl.synth.pool import default_pool
from speakerrpl.vectors import centroids

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"
OUT = Path("/tmp/i12s")
CONDITIONS = ("clean", *CORPUS_CONDITIONS)

CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    # the reference: plain cosine on raw embeddings
    "cosine": {"method": "cosine", "channel_compensation": False},
    "cosine_wccn": {"method": "cosine", "channel_compensation": True},
    "cosine_asnorm": {"method": "cosine", "score_norm": "asnorm", "channel_compensation": False},
    "cosine_asnorm_wccn": {
        "method": "cosine", "score_norm": "asnorm", "channel_compensation": True,
    },
    "rpl_v2": {"method": "rpl_v2", "channel_compensation": False},
    "rpl_v2_wccn": {"method": "rpl_v2", "channel_compensation": True},
    "rpl_v1_f30": {"method": "rpl_v1", "selection": "none", "channel_compensation": False},
    "softmax_f30": {
        "method": "softmax", "selection": "none", "cosine_blend": False,
        "channel_compensation": False,
    },
    "softmax_f30_wccn": {
        "method": "softmax", "selection": "none", "cosine_blend": False,
        "channel_compensation": True,
    },
    "softmax_f30_wccn_aug": {
        "method": "softmax", "selection": "none", "cosine_blend": False,
        "channel_compensation": True, "augment": 4, "augment_noise": 0.6,
    },
    "softmax_aug": {
        "method": "softmax", "augment": 4, "augment_noise": 0.6, "cosine_blend": False,
        "channel_compensation": False,
    },
    "logitnorm_f30": {"method": "logitnorm", "selection": "none", "channel_compensation": False},
    "arpl_f30": {"method": "arpl", "selection": "none", "channel_compensation": False},
    "rpl_v1_plus_f30": {
        "method": "rpl_v1_plus", "selection": "none", "channel_compensation": False,
    },
    "rpl_v2_repaired": {
        "method": "rpl_v2",
        "centre_init": "sphere",
        "tau": 0.04,
        "radius_plain": True,
        "channel_compensation": False,
    },
}  # fmt: skip
"""name -> identifier keywords. Every configuration but ``default`` pins channel compensation
(``*_wccn``: on); ``--extra '{"channel_compensation": true}'`` measures any of them on
compensated embeddings (the tables of ``COMPENSATED_TAILS``)."""


#: each half's seed: fold protocols use ``SEEDS[half] + K``, fits ``SEEDS[half] + 1000 K + f``
SEEDS = {"dev": 100, "report": 200, "all": 300, "devplus": 400}


def source_voice(name: str) -> str:
    """The voice a corpus identity was made from: ``pico-it-IT-vtdown`` -> ``pico-it-IT``."""
    return re.sub(r"-(vtup|vtdown)$", "", str(name))


def split_speakers(speakers: list[str], seed: int = 12) -> dict[str, list[str]]:
    """A fixed half/half split of the eval speakers, stratified by engine (id prefix)."""
    rng = random.Random(seed)
    by_engine: dict[str, list[str]] = {}
    for s in sorted(set(speakers)):
        by_engine.setdefault(s.split("-")[0], []).append(s)
    dev, rep = [], []
    for members in by_engine.values():
        rng.shuffle(members)
        dev += members[::2]
        rep += members[1::2]
    return {"dev": sorted(dev), "report": sorted(rep)}


def with_extra_voices(
    demo: EmbeddingSet, extra: EmbeddingSet, with_report: bool = False
) -> EmbeddingSet:
    """The demo corpus's development half plus every voice of ``extra`` the demo corpus lacks.

    ``extra`` is another corpus build (``speakerrpl corpus build --size full``: 64 more voices,
    mostly MBROLA); none of its added voices is in the report half, so tails measured on the
    union stay independent of the report tables. ``with_report`` keeps the report half too
    (for :func:`with_report_strangers`).
    """
    halves = split_speakers(demo.speakers.tolist())
    kept = set(halves["dev"]) | (set(halves["report"]) if with_report else set())
    added = set(extra.speakers.tolist()) - set(demo.speakers.tolist())
    a, b = np.isin(demo.speakers, sorted(kept)), np.isin(extra.speakers, sorted(added))
    return EmbeddingSet(
        np.concatenate([demo.embeddings[a], extra.embeddings[b]]),
        np.concatenate([demo.utt_ids[a], extra.utt_ids[b]]).tolist(),
        np.concatenate([demo.speakers[a], extra.speakers[b]]).tolist(),
        demo.frontend,
    )


def development_voices(demo: EmbeddingSet, full: EmbeddingSet) -> EmbeddingSet:
    """The clean clips of every voice outside the demo's report half (the devplus voices)."""
    voices = with_extra_voices(demo, full)
    clean = np.asarray(["__" not in u for u in voices.utt_ids.tolist()])
    return EmbeddingSet(
        voices.embeddings[clean],
        voices.utt_ids[clean].tolist(),
        voices.speakers[clean].tolist(),
        voices.frontend,
    )


def protocol_for(eval_set: EmbeddingSet, half: str, k: int, n_folds: int, seed: int) -> Any:
    """Folds of ``k`` targets over one half; every other speaker of the half is an unknown.

    ``half`` is ``dev`` or ``report`` (of the demo corpus), or ``all`` / ``devplus``: every
    speaker of ``eval_set``."""
    halves = split_speakers(eval_set.speakers.tolist())
    keep = halves[half] if half in halves else sorted(set(eval_set.speakers.tolist()))
    other = set(eval_set.speakers.tolist()) - set(keep)
    return make_corpus_protocol(
        eval_set.utt_ids.tolist(),
        eval_set.speakers.tolist(),
        n_targets=k,
        n_enroll=3,
        n_unknowns=len(keep) - k,
        n_folds=n_folds,
        seed=seed,
        conditions=list(CONDITIONS),
        exclude_speakers=other,
    )


def with_report_strangers(
    eval_set: EmbeddingSet, report: list[str], k: int, n_folds: int, seed: int
) -> Protocol:
    """Folds of ``k`` targets drawn from every voice but ``report``, whose strangers are the
    ``report`` voices (every test utterance of each): a tail measured on development voices
    checked on strangers no choice has used, at household sizes the report half alone cannot
    hold (K = 100)."""
    others = set(eval_set.speakers.tolist()) - set(report)
    households = make_corpus_protocol(
        eval_set.utt_ids.tolist(),
        eval_set.speakers.tolist(),
        n_targets=k,
        n_enroll=3,
        n_unknowns=0,
        n_folds=n_folds,
        seed=seed,
        conditions=list(CONDITIONS),
        exclude_speakers=set(report),
    )
    everyone = make_corpus_protocol(  # one fold: every report voice's tests
        eval_set.utt_ids.tolist(),
        eval_set.speakers.tolist(),
        n_targets=1,
        n_enroll=3,
        n_unknowns=len(report) - 1,
        n_folds=1,
        seed=seed,
        conditions=list(CONDITIONS),
        exclude_speakers=others,
    ).folds[0]
    strangers = sorted(everyone.test_known + everyone.test_unknown)
    folds = [replace(f, test_unknown=strangers) for f in households.folds]
    return Protocol(folds, households.conditions, {**households.params, "strangers": "report"})


def _fused_all_classes(
    est: OpenSetSpeakerIdentifier, x: np.ndarray, keep: np.ndarray
) -> np.ndarray:
    xp = est._prep(x)
    lg = est._member_logits(xp, all_members=True, all_classes=True)
    return lg[keep].mean(axis=0)


def fit_one(
    name: str, params: dict[str, Any], fold: Any, fold_seed: int, inputs: dict[str, Any]
) -> dict[str, np.ndarray]:
    """Fit one configuration on one fold; return the stored score arrays."""
    emb, index, pool = inputs["eval"], inputs["index"], inputs["pool"]
    targets = list(fold.targets)
    enroll_ids = [u for t in targets for u in fold.enroll[t]]
    xe = emb.embeddings[[index[u] for u in enroll_ids]]
    ye = np.asarray([t for t in targets for _ in fold.enroll[t]])
    x_fit, y_fit, extra = xe, ye, {}
    if inputs.get("copies") is not None:  # multi-condition enrollment: each clip's copies
        copies, of_clip = inputs["copies"], inputs["copies_of"]
        rows = [j for u in enroll_ids for j in of_clip[u]]
        if inputs["copies_to"] == "centroids":  # as the product does: fit(..., copies=)
            extra = {"copies": (copies.embeddings[rows], copies.speakers[rows])}
        else:  # as enrollment rows, for the adapters too
            x_fit = np.concatenate([xe, copies.embeddings[rows]])
            y_fit = np.concatenate([ye, copies.speakers[rows]])
    start = time.perf_counter()
    est = OpenSetSpeakerIdentifier(**params, random_state=fold_seed)
    if inputs.get("cohort") is not None and uses_cohort(params):
        extra["cohort"] = (inputs["cohort"].embeddings, inputs["cohort"].speakers)
    est.fit(x_fit, y_fit, pool=(pool.embeddings, pool.speakers), **extra)
    fit_s = time.perf_counter() - start
    cal_voices, _ext_voices = reserve_calibration(
        pool.speakers.tolist(), est.settings.n_calibration, fold_seed
    )
    free = np.isin(pool.speakers, cal_voices)
    cohort = centroids(pool.embeddings[~free], pool.speakers[~free].tolist())[1]
    kept = np.asarray(est.members_)
    every = np.arange(est.settings.n_members)
    out: dict[str, np.ndarray] = {
        "fit_s": np.asarray(fit_s),
        "threshold": np.asarray(est.threshold_),
        "n_classes": np.asarray(len(est.training_classes_)),
        "enroll_y": np.asarray([targets.index(t) for t in ye]),
        "pool_free_spk": pool.speakers[free],
        "training_classes": np.asarray(est.training_classes_),
        "decision": np.asarray(json.dumps(est.decision_.to_dict())),
    }
    spk = emb.speakers[[index[u] for u in fold.test_known]]
    out["known_y"] = np.asarray([targets.index(s) for s in spk])
    out["unknown_speakers"] = emb.speakers[[index[u] for u in fold.test_unknown]]
    sets = {"enroll": xe, "pool_free": pool.embeddings[free]}
    for cond in CONDITIONS:
        suffix = "" if cond == "clean" else f"__{cond}"
        sets[f"known|{cond}"] = emb.embeddings[[index[u + suffix] for u in fold.test_known]]
        sets[f"unknown|{cond}"] = emb.embeddings[[index[u + suffix] for u in fold.test_unknown]]
    for key, x in sets.items():
        out[f"{key}|sel"] = _fused_all_classes(est, x, kept).astype(np.float32)
        out[f"{key}|final"] = est.decision_function(x).astype(np.float32)  # what predict uses
        if est.ensemble_ is None:
            xn = x / np.linalg.norm(x, axis=1, keepdims=True)
            out[f"{key}|cohort"] = (xn @ cohort.T).astype(np.float32)
        if len(kept) != len(every):
            out[f"{key}|all"] = _fused_all_classes(est, x, every).astype(np.float32)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--half", default="dev", choices=("dev", "report", "all", "devplus"))
    ap.add_argument(
        "--extra-voices",
        type=Path,
        default=Path("/tmp/i13corpus/full/eval.npz"),
        help="devplus: embeddings of a --size full build, whose added voices join the dev half",
    )
    ap.add_argument(
        "--report-strangers",
        action="store_true",
        help="devplus: targets from the development voices, strangers the report half's",
    )
    ap.add_argument(
        "--pool",
        default="demo",
        choices=("demo", "default"),
        help="the demo corpus's pool (the tables') or default_pool(campplus) (deployments')",
    )
    ap.add_argument(
        "--enroll-copies",
        type=Path,
        default=None,
        help="multi-condition enrollment: enrollment_copies.py's copies file (demo voices only)",
    )
    ap.add_argument(
        "--copies-to",
        choices=("training", "centroids"),
        default="training",
        help="--enroll-copies as enrollment rows (adapters and centroids; <half>-multi) or "
        "through fit(copies=) into the cosine centroids only, as the service does "
        "(<half>-copies)",
    )
    ap.add_argument(
        "--cohort-voices",
        action="store_true",
        help="--half report: AS-norm configs normalise against the development voices "
        "(development_voices of --extra-voices) instead of the pool's",
    )
    ap.add_argument("--k", type=int, nargs="+", default=[4, 20])
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS))
    ap.add_argument("--extra", default="{}", help="JSON identifier keywords for every config")
    ap.add_argument("--tag", default="")
    ap.add_argument("--out", type=Path, default=OUT, help="where the fits' scores go")
    args = ap.parse_args()
    extra = json.loads(args.extra)
    demo = EmbeddingSet.load(DEMO / "eval.npz")
    report = split_speakers(demo.speakers.tolist())["report"]
    if args.report_strangers and args.half != "devplus":
        ap.error("--report-strangers needs --half devplus")
    if args.cohort_voices and args.half != "report":
        ap.error("--cohort-voices needs --half report (the cohort is the other voices)")
    emb = demo
    if args.half == "devplus":
        added = EmbeddingSet.load(args.extra_voices)
        emb = with_extra_voices(demo, added, with_report=args.report_strangers)
    label = "devplus-report-strangers" if args.report_strangers else args.half
    pool = EmbeddingSet.load(DEMO / "pool.npz")
    if args.pool == "default":  # what a deployment gets: speakerrpl.synth.pool.default_pool
        x_pool, voices = default_pool(get_frontend(FRONTEND))
        ids = [f"pool-{i}" for i in range(len(voices))]
        pool = EmbeddingSet(x_pool, ids, voices.tolist(), FRONTEND)
        label += "-default-pool"
    inputs = {
        "eval": emb,
        "pool": pool,
        "index": {u: i for i, u in enumerate(emb.utt_ids.tolist())},
    }
    if args.enroll_copies:  # enrollment_copies.py's channel copies of every enrollment clip
        copies = EmbeddingSet.load(args.enroll_copies)
        of_clip: dict[str, list[int]] = {}
        for i, u in enumerate(copies.utt_ids.tolist()):
            of_clip.setdefault(u.split("##")[0], []).append(i)
        inputs |= {"copies": copies, "copies_of": of_clip, "copies_to": args.copies_to}
        label += "-multi" if args.copies_to == "training" else "-copies"
    if args.cohort_voices:
        inputs["cohort"] = development_voices(demo, EmbeddingSet.load(args.extra_voices))
    seed = SEEDS[args.half]
    seed += 100 if args.report_strangers else 0  # other households than the tails saw
    with torch_threads(1):
        for k in args.k:
            if args.report_strangers:
                proto = with_report_strangers(emb, report, k, args.folds, seed + k)
            else:
                proto = protocol_for(emb, args.half, k, args.folds, seed + k)
            for name in args.configs:
                params = {**CONFIGS[name], **extra}
                tag = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]
                for f, fold in enumerate(proto.folds):
                    path = args.out / label / f"{name}{args.tag}-{tag}" / f"k{k:03d}-f{f}.npz"
                    if path.is_file():
                        continue
                    arrays = fit_one(name, params, fold, seed + 1000 * k + f, inputs)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    np.savez_compressed(path, **arrays)
                    (path.parent / "params.json").write_text(json.dumps(params))
                    print(f"{name} K={k} fold {f}: fit {float(arrays['fit_s']):.1f} s", flush=True)


if __name__ == "__main__":
    main()
