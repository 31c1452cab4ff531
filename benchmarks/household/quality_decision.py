"""The quality-aware decision (the default) through the public API, on the report folds.

Fits ``OpenSetSpeakerIdentifier()`` per report fold exactly as a user would (the demo pool, or
with ``--pool default`` the deployments' ``default_pool(get_frontend("campplus"))``, so the
pool guard applies; ``--copies``: each enrollment clip's seven channel copies through
``fit(copies=)``, as the service enrolls) and reads both decisions from the same fit: the
quality-aware one (``predict``) and the single stranger tail of the previous default
(``decision_.accepts(best)`` without a posterior: ``calibration="tail"``'s threshold). Per
condition: strangers accepted (FA) and targets missed or misnamed (FR), mean ± std over the
folds; the report half's voices are never used for any choice (``condition_tails.py``
measured the tails on development fits).

Run (from the repository root, about 2 minutes per table set):
    PYTHONPATH=src python benchmarks/household/quality_decision.py [--copies] \
        [--pool default] [--json /tmp/quality_decision.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from study import DEMO, SEEDS, protocol_for
from tables import CONDS

from speakerrpl.embeddings import EmbeddingSet
from speakerrpl.frontends import get_frontend
from speakerrpl.frontends.base import torch_threads
from speakerrpl.identifier import OpenSetSpeakerIdentifier
from speakerrpl.synth.enrollment_copies import CHANNELS
from speakerrpl.synth.pool import default_pool

COPIES = Path("/tmp/enrollment_copies.npz")  # enrollment_copies.py's copies of the demo voices


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--k", type=int, nargs="+", default=[1, 2, 4, 8, 20])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--copies", action="store_true", help="enroll with channel copies")
    ap.add_argument(
        "--pool",
        choices=("demo", "default"),
        default="demo",
        help="the demo corpus's pool (the tables') or default_pool (deployments')",
    )
    ap.add_argument(
        "--enroll-condition",
        default="clean",
        choices=("clean", "device", "codec", "phone", "far", "noise", "music"),
        help="enroll on this channel's copy of each enrollment clip instead of the clip "
        "(enrollment_copies.py's copies: a household that enrolled through the channel it is "
        "heard through); tests stay in every condition",
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.copies and args.enroll_condition != "clean":
        ap.error("--copies are copies of clean clips: use them with --enroll-condition clean")
    demo = EmbeddingSet.load(DEMO / "eval.npz")
    pool = EmbeddingSet.load(DEMO / "pool.npz")
    x_pool, y_pool = pool.embeddings, pool.speakers
    if args.pool == "default":
        with torch_threads(1):
            x_pool, y_pool = default_pool(get_frontend("campplus"))
    index = {u: i for i, u in enumerate(demo.utt_ids.tolist())}
    of_clip: dict[str, list[int]] = {}
    copies = EmbeddingSet.load(COPIES) if args.copies or args.enroll_condition != "clean" else None
    if copies is not None:
        for i, u in enumerate(copies.utt_ids.tolist()):
            of_clip.setdefault(u.split("##")[0], []).append(i)
    result: dict = {
        "conditions": list(CONDS),
        "copies": args.copies,
        "pool": args.pool,
        "enroll_condition": args.enroll_condition,
        "K": {},
    }
    with torch_threads(1):
        for k in args.k:
            proto = protocol_for(demo, "report", k, args.folds, SEEDS["report"] + k)
            per_fold = []  # (folds, rules, conditions, 2)
            for f, fold in enumerate(proto.folds):
                enroll = [u for t in fold.targets for u in fold.enroll[t]]
                xe = demo.embeddings[[index[u] for u in enroll]]
                ye = demo.speakers[[index[u] for u in enroll]]
                extra = {}
                if args.enroll_condition != "clean":
                    assert copies is not None
                    rows = [of_clip[u][CHANNELS.index(args.enroll_condition)] for u in enroll]
                    xe = copies.embeddings[rows]
                elif copies is not None:
                    rows = [j for u in enroll for j in of_clip[u]]
                    extra = {"copies": (copies.embeddings[rows], copies.speakers[rows])}
                est = OpenSetSpeakerIdentifier(random_state=SEEDS["report"] + 1000 * k + f)
                est.fit(xe, ye, pool=(x_pool, y_pool), **extra)
                assert est.decision_.quality_aware
                rules = np.zeros((2, len(CONDS), 2))
                for ci, c in enumerate(CONDS):
                    suffix = "" if c == "clean" else f"__{c}"
                    for role, utts in (("known", fold.test_known), ("unknown", fold.test_unknown)):
                        x = demo.embeddings[[index[u + suffix] for u in utts]]
                        s = est.decision_function(x)
                        quality = est.predict(x)
                        single = np.asarray(est.classes_, dtype=object)[s.argmax(1)]
                        single[~est.decision_.accepts(s.max(1))] = est.settings.unknown_label
                        truth = demo.speakers[[index[u] for u in utts]]
                        for r, names in enumerate((single, quality)):
                            if role == "unknown":
                                rules[r, ci, 0] = 100 * np.mean(names != est.settings.unknown_label)
                            else:
                                rules[r, ci, 1] = 100 * np.mean(names != truth)
                per_fold.append(rules)
                print(f"K={k} fold {f} done", flush=True)
            a = np.asarray(per_fold)
            entry = {}
            for r, tag in enumerate(("single tail (previous default)", "quality-aware")):
                fa, fr = a[:, r, :, 0], a[:, r, :, 1]
                entry[tag] = {
                    "FA": fa.mean(0).tolist(),
                    "FA_std": fa.std(0).tolist(),
                    "FR": fr.mean(0).tolist(),
                    "FR_std": fr.std(0).tolist(),
                    "FA_worst": [float(fa.max(1).mean()), float(fa.max(1).std())],
                    "FR_mean": [float(fr.mean(1).mean()), float(fr.mean(1).std())],
                }
                e = entry[tag]
                print(
                    f"K={k:2d} {tag:31s} FA worst {e['FA_worst'][0]:.1f} ± {e['FA_worst'][1]:.1f}"
                    f" | FR mean {e['FR_mean'][0]:.1f} ± {e['FR_mean'][1]:.1f} | "
                    + " ".join(
                        f"{c}: {x:.1f}/{y:.0f}"
                        for c, x, y in zip(CONDS, fa.mean(0), fr.mean(0), strict=True)
                    ),
                    flush=True,
                )
            result["K"][k] = entry
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
