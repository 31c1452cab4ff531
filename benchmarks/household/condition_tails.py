"""Measure the quality-aware decision's tables: the threshold follows the clip's channel.

A single stranger tail holds ``target_far`` in the condition where strangers score highest
(the clean channel, ``docs/calibration.md``), so on a degraded channel, where strangers *and*
the genuine speaker score lower, its threshold sits above what the requested rate needs and
many genuine speakers are refused. This script measures what the default
(``calibration="quality"``) ships instead:

1. A **condition classifier**: multinomial logistic regression on the L2-normalised raw
   embedding, over the corpus's 10 test conditions (clean and 9 degraded), trained on the
   development voices (the demo corpus's development half plus the voices only a ``--size
   full`` build has; never a report voice).
2. **Per-condition stranger tails** of the default blend, per household size K, measured on the
   development fits of ``study.py`` exactly as ``tables.py`` measures the heaviest one.
3. The **quality-aware confidence** of a clip with best score ``s`` and condition posterior
   ``p``: ``sum_c p_c * confidence_c(s)`` (one minus the expected share of strangers that
   score ``>= s`` given what the clip sounds like), with ``p`` taken relative to the fold's
   enrollment clips (``conditions.mismatch_posterior``), as the identifier does. Every tail
   of a K is raised (``--raise-tails all``; ``degraded``: all but the heaviest, so that a
   clean-sounding clip is judged as by the single tail) by the smallest shift with which, on
   the development fits and with the classifier cross-fitted (trained on the other half of
   the development voices), each fold's worst condition lets in no more strangers, on
   average, than the single tail (``--criterion fold-worst``, shipped), or every condition
   pooled over folds at most ``--far`` (``--criterion pooled``).
4. Both rules on the report folds (classifier trained on all development voices): strangers
   accepted and targets missed or misnamed per condition, mean ± std over folds.

Run (from the repository root; reads the study fits of ``tables.py``'s runs; about 1 min):
    PYTHONPATH=src python benchmarks/household/condition_tails.py \
        --dev /tmp/i12c/devplus --report /tmp/i12c/report [--table-set copies] \
        [--write-model src/speakerrpl/identifier/conditions-campplus.npz] [--json F]
It prints each K's figures and the source of ``tails.CONDITION_TAILS[<table set>]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from study import DEMO, SEEDS, protocol_for, split_speakers, with_extra_voices
from tables import CONDS, fit_normal_tail, load_fits, n_targets, target_scores

from speakerrpl.embeddings import EmbeddingSet
from speakerrpl.identifier.blend import cosine_blend_for
from speakerrpl.identifier.calibration import StrangerTail
from speakerrpl.identifier.conditions import ConditionModel, mismatch_posterior
from speakerrpl.identifier.decision import Decision
from speakerrpl.identifier.tails import COMPENSATED, COPIES, COPIES_UP_TO_K
from speakerrpl.vectors import l2_normalize

FULL = Path("/tmp/i13corpus/full/eval.npz")
C_GRID = (1.0, 10.0, 100.0)


def condition_of(utt_ids: list[str]) -> np.ndarray:
    """Index into ``CONDS`` of each utterance id (``<voice>-<n>[__<condition>]``)."""
    return np.asarray([CONDS.index(u.split("__")[1] if "__" in u else "clean") for u in utt_ids])


def train(x: np.ndarray, y: np.ndarray, c: float) -> ConditionModel:
    """The condition classifier on normalised embeddings ``x`` with condition indices ``y``."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=5000).fit(l2_normalize(x), y)
    return ConditionModel(CONDS, clf.coef_, clf.intercept_)


def blended_fits(root: Path, table_set: str) -> dict[str, tuple[int, dict[str, np.ndarray]]]:
    """``{fit file: (K, {set key: blended (N, K) scores, 'known_y': ...})}`` of the default
    blend; for :data:`COPIES` the cosine part comes from ``<root>-multi`` (centroids of the
    clips and their channel copies, as ``fit(copies=)`` makes them)."""
    ad = load_fits(root)["softmax_f30_wccn"]
    cos_root = Path(f"{root}-multi") if table_set == COPIES else root
    cos = load_fits(cos_root)["cosine_wccn"]
    out = {}
    for name in sorted(set(cos) & set(ad)):
        k = n_targets(cos[name])
        blend = cosine_blend_for("softmax", k, table_set)
        keys = [f"{r}|{c}" for r in ("known", "unknown") for c in CONDS]
        rec = {
            key: blend.combine(target_scores(cos[name], key), target_scores(ad[name], key))
            for key in keys
        }
        out[name] = (k, rec | {"known_y": cos[name]["known_y"]})
    return out


def condition_tail(recs: list[dict[str, np.ndarray]], c: str, k: int, far: float):
    """One condition's tail, as ``tables.heaviest_tail`` measures each condition's."""
    tail = fit_normal_tail(np.concatenate([r[f"unknown|{c}"].ravel() for r in recs]))
    thr = StrangerTail.from_table({k: tail}).score_threshold(far, k)
    best = np.concatenate([r[f"unknown|{c}"].max(axis=1) for r in recs])
    need = float(np.quantile(best, 1.0 - far))
    return (tail[0] + max(0.0, need - thr), tail[1])


def raised(tails: list, k: int, far: float, shift: float, which: str) -> list:
    """The tails with ``shift`` added to every mean (``which="all"``, shipped), or to every
    one but the heaviest's, none beyond the heaviest's threshold (``"degraded"``: a clip that
    sounds clean is judged exactly as by the single tail)."""
    if which == "all":
        return [(m + shift, sd) for m, sd in tails]
    thr = [StrangerTail.from_table({k: t}).score_threshold(far, k) for t in tails]
    top = int(np.argmax(thr))
    return [(m if i == top else m + min(shift, thr[top] - thr[i]), sd)
            for i, (m, sd) in enumerate(tails)]  # fmt: skip


def mixed_confidence(best: np.ndarray, post: np.ndarray, tails: list, k: int) -> np.ndarray:
    """The quality-aware confidence (:meth:`Decision.confidence`) with these tails."""
    table = tuple((c, StrangerTail.from_table({k: t})) for c, t in zip(CONDS, tails, strict=True))
    return Decision(table[0][1], k, 0.0, 0.0, "table", table).confidence(best, post)


def fold_clips(emb: EmbeddingSet, half: str, k: int, n_folds: int) -> list[tuple[list, ...]]:
    """Each fold's (known tests, unknown tests, enrollment clips)."""
    proto = protocol_for(emb, half, k, n_folds, SEEDS[half] + k)
    return [
        (list(f.test_known), list(f.test_unknown), [u for t in f.targets for u in f.enroll[t]])
        for f in proto.folds
    ]


@dataclass
class Folds:
    """One half's fits at one K: blended scores, the folds' clips and their posteriors."""

    recs: list[dict[str, np.ndarray]]
    clips: list[tuple[list, ...]]
    post_of: Callable[[list[str]], np.ndarray]

    def relative(self, tests: list[str], enroll: list[str]) -> np.ndarray:
        """The tests' posterior relative to the fold's enrollment, as the identifier reads it."""
        return mismatch_posterior(self.post_of(tests), self.post_of(enroll), CONDS)


def operating(folds: Folds, rule: Callable, far: float) -> np.ndarray:
    """Per fold, per condition (FA %, FR %) of ``rule(best, post) -> confidence``."""
    rows = []
    for rec, (known, unknown, enroll) in zip(folds.recs, folds.clips, strict=True):
        row = []
        for c in CONDS:
            suffix = "" if c == "clean" else f"__{c}"
            s_u, s_k = rec[f"unknown|{c}"], rec[f"known|{c}"]
            post_u = folds.relative([u + suffix for u in unknown], enroll)
            post_k = folds.relative([u + suffix for u in known], enroll)
            acc_u = rule(s_u.max(1), post_u) >= 1 - far
            acc_k = rule(s_k.max(1), post_k) >= 1 - far
            missed = (s_k.argmax(1) != rec["known_y"]) | ~acc_k
            row.append((100 * acc_u.mean(), 100 * missed.mean()))
        rows.append(row)
    return np.asarray(rows)  # (folds, conditions, 2)


def by_fold(fits: dict, k: int) -> list[dict[str, np.ndarray]]:
    names = sorted((n for n, (kk, _) in fits.items() if kk == k),
                   key=lambda n: int(n.split("-f")[1].split(".")[0]))  # fmt: skip
    return [fits[n][1] for n in names]


def n_of(fits: dict, k: int) -> int:
    return sum(kk == k for kk, _ in fits.values())


def fa_by_fold(folds: Folds, rule: Callable, far: float) -> np.ndarray:
    """(folds, conditions) share of the strangers ``rule(best, posterior)`` accepts."""
    out = np.zeros((len(folds.recs), len(CONDS)))
    for ci, c in enumerate(CONDS):
        suffix = "" if c == "clean" else f"__{c}"
        for f, (r, (_, unknown, enroll)) in enumerate(zip(folds.recs, folds.clips, strict=True)):
            post = folds.relative([u + suffix for u in unknown], enroll)
            conf = rule(r[f"unknown|{c}"].max(1), post)
            out[f, ci] = np.mean(conf >= 1 - far)
    return out


def measure(k: int, dev: Folds, rep: Folds, far: float, criterion: str, which: str) -> dict:
    """Per-condition tails and their shift on ``dev``; both rules on ``rep``."""
    tails = [condition_tail(dev.recs, c, k, far) for c in CONDS]
    heavy = max(tails, key=lambda t: StrangerTail.from_table({k: t}).score_threshold(far, k))

    def single(best: np.ndarray, post: np.ndarray) -> np.ndarray:
        return StrangerTail.from_table({k: heavy}).confidence(best, k)

    bound = fa_by_fold(dev, single, far).max(axis=1).mean()

    def too_lenient(shift: float) -> bool:
        up = raised(tails, k, far, shift, which)
        fa = fa_by_fold(dev, lambda b, p: mixed_confidence(b, p, up, k), far)
        if criterion == "pooled":  # every condition's strangers, pooled over folds
            return bool(fa.mean(axis=0).max() > far)
        # each fold's worst condition, on average no worse than the single tail's
        return bool(fa.max(axis=1).mean() > bound)

    lo, hi, shift = 0.0, 2.0, 0.0
    if too_lenient(0.0):
        for _ in range(30):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if too_lenient(mid) else (lo, mid)
        shift = hi

    shipped = raised(tails, k, far, shift, which)

    def quality(best: np.ndarray, post: np.ndarray) -> np.ndarray:
        return mixed_confidence(best, post, shipped, k)

    entry: dict = {
        "shift": shift,
        "measured": {c: list(t) for c, t in zip(CONDS, tails, strict=True)},
        "tails": {c: list(t) for c, t in zip(CONDS, shipped, strict=True)},
    }
    for tag, rule in (("heaviest", single), ("quality", quality)):
        op = operating(rep, rule, far)
        mean, std = op.mean(0), op.std(0)
        entry[tag] = {
            "FA": mean[:, 0].tolist(),
            "FA_std": std[:, 0].tolist(),
            "FR": mean[:, 1].tolist(),
            "FR_std": std[:, 1].tolist(),
            "FR_mean": float(op[:, :, 1].mean(1).mean()),
            "FR_mean_std": float(op[:, :, 1].mean(1).std()),
            "FA_worst": float(op[:, :, 0].max(1).mean()),
        }
        cells = zip(CONDS, mean[:, 0], mean[:, 1], strict=True)
        print(
            f"K={k:3d} {tag:8s} shift {shift if tag == 'quality' else 0:.3f} | "
            f"FR mean {entry[tag]['FR_mean']:4.1f} ± {entry[tag]['FR_mean_std']:.1f}"
            f" | FA worst/fold {entry[tag]['FA_worst']:.1f} | "
            + " ".join(f"{c}: {fa:.1f}/{fr:.0f}" for c, fa, fr in cells),
            flush=True,
        )
    return entry


def table_source(result: dict) -> str:
    """The per-condition tails (raised) as the source of one table set's entry
    in ``speakerrpl.identifier.tails.CONDITION_TAILS``."""
    lines = []
    for k, entry in result["K"].items():
        lines.append(f"    {k}: {{")
        line = "       "
        for c, (m, sd) in entry["tails"].items():
            part = f' "{c}": ({round(m, 4)}, {round(sd, 4)}),'
            if len(line) + len(part) > 99:
                lines.append(line)
                line = "       "
            line += part
        lines += [line, "    },"]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dev", type=Path, default=Path("/tmp/i12c/devplus"))
    ap.add_argument("--report", type=Path, default=Path("/tmp/i12c/report"))
    ap.add_argument("--far", type=float, default=0.01)
    ap.add_argument("--table-set", choices=(COMPENSATED, COPIES), default=COMPENSATED)
    ap.add_argument(
        "--criterion",
        choices=("fold-worst", "pooled"),
        default="fold-worst",
        help="the shift keeps, on the development fits, strangers accepted <= --far in every "
        "condition pooled over folds, or each fold's worst condition on average no higher "
        "than with the single tail",
    )
    ap.add_argument(
        "--raise-tails",
        choices=("all", "degraded"),
        default="all",
        help="the shift raises every tail (shipped) or all but the heaviest, none beyond it "
        "(then a clean-sounding clip is judged as by the single tail)",
    )
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--write-model",
        type=Path,
        default=None,
        help="save the classifier (trained on every development voice) here",
    )
    args = ap.parse_args()
    far = args.far
    demo = EmbeddingSet.load(DEMO / "eval.npz")
    dev_emb = with_extra_voices(demo, EmbeddingSet.load(FULL))
    dev_ids = dev_emb.utt_ids.tolist()
    dev_y = condition_of(dev_ids)
    # cross-fitting halves of the development voices: demo development half / full-only voices
    in_demo = np.isin(dev_emb.speakers, split_speakers(demo.speakers.tolist())["dev"])
    # 1. the classifier's regularisation, by cross-fitted accuracy
    scores = {}
    for c in C_GRID:
        hits = 0
        for part in (in_demo, ~in_demo):
            model = train(dev_emb.embeddings[~part], dev_y[~part], c)
            hits += int((model.posterior(dev_emb.embeddings[part]).argmax(1) == dev_y[part]).sum())
        scores[c] = hits / len(dev_y)
    c_best = max(scores, key=scores.get)
    print(
        "condition classifier, cross-fitted accuracy by C:",
        ", ".join(f"{c:g}: {a:.3f}" for c, a in scores.items()),
        f"-> C = {c_best:g}",
    )
    cross = np.zeros((len(dev_ids), len(CONDS)))
    for part in (in_demo, ~in_demo):
        model = train(dev_emb.embeddings[~part], dev_y[~part], c_best)
        cross[part] = model.posterior(dev_emb.embeddings[part])
    dev_index = {u: i for i, u in enumerate(dev_ids)}
    shipped = train(dev_emb.embeddings, dev_y, c_best)
    rep_index = {u: i for i, u in enumerate(demo.utt_ids.tolist())}
    rep_post = shipped.posterior(demo.embeddings)

    def dev_post(utts):
        return cross[[dev_index[u] for u in utts]]

    def rep_post_of(utts):
        return rep_post[[rep_index[u] for u in utts]]

    if args.write_model:
        np.savez(
            args.write_model,
            names=np.asarray(CONDS),
            weights=shipped.weights.astype(np.float32),
            bias=shipped.bias.astype(np.float32),
        )
    dev_fits = blended_fits(args.dev, args.table_set)
    rep_fits = blended_fits(args.report, args.table_set)
    if args.table_set == COPIES:
        dev_fits = {n: v for n, v in dev_fits.items() if v[0] <= COPIES_UP_TO_K}
    result: dict = {"C": c_best, "accuracy": scores, "conditions": list(CONDS), "K": {}}
    for k in sorted({k for k, _ in rep_fits.values()}):
        dev = Folds(by_fold(dev_fits, k), fold_clips(dev_emb, "devplus", k, n_of(dev_fits, k)),
                    dev_post)  # fmt: skip
        rep = Folds(by_fold(rep_fits, k), fold_clips(demo, "report", k, n_of(rep_fits, k)),
                    rep_post_of)  # fmt: skip
        result["K"][k] = measure(k, dev, rep, far, args.criterion, args.raise_tails)
    print(f"tails.CONDITION_TAILS[{args.table_set.upper()}] (K -> condition -> (mean, std)):")
    print(table_source(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
