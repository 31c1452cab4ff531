"""AS-norm cosine against an in-domain cohort, and what a synthetic cohort does to real voices.

1. **Households of the full corpus** (``protocols-g10/household-k<K>-e3-report.json``): for
   each household, the cohort is the clean-clip centroids of every corpus voice that is
   neither a member nor a stranger of it (nor made from the same source voice), so no scored
   voice is in its own cohort. EER of plain cosine and of AS-norm cosine (top 20,
   :func:`speakerrpl.identifier.score_norm.asnorm`), on raw and on channel-compensated
   embeddings, mean ± std over folds of ``draws_per_fold`` households.
2. **Real voices against the synthetic cohort**: the two people of Debian's
   pocketsphinx-testdata, embedded by CAM++, scored against the development voices' cohort
   (``study.development_voices``) and against each other (stranger trials), in units of the
   K = 4 stranger tails of compensated cosine and of compensated AS-norm cosine measured on
   the development fits (``--tails``, from ``tables.py --json``). Also the shipped condition
   model's posterior for each real clip, alone and relative to the other person's enrollment
   (what the quality-aware decision reads).
3. With ``--write-fits DIR``: study-format fits of compensated AS-norm cosine for the stored
   ``study.py`` folds of ``/tmp/i12c/devplus`` and ``/tmp/i12c/report`` (``cosine_asn``), next
   to links to their ``softmax_f30_wccn`` fits, so that ``tables.py`` measures its blend with
   the adapters on the development fits and checks it on the report half. The cohort is
   cross-fitted: the report half's voices for the development folds, 50 development voices
   for the report folds.

Run:  cd benchmarks/household && PYTHONPATH=../../src python cohort_norm.py \
          --corpus /tmp/i13corpus/full [--k 4] [--json out.json] [--write-fits /tmp/asn]
      PYTHONPATH=../../src python tables.py /tmp/asn/devplus --cosine cosine_asn \
          --blend softmax_f30_wccn --apply-to /tmp/asn/report
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from study import (  # type: ignore[import-not-found]
    DEMO,
    SEEDS,
    development_voices,
    protocol_for,
    source_voice,
    split_speakers,
    with_extra_voices,
)

from speakerrpl.audio import load_audio
from speakerrpl.data.condition_ids import CONDITIONS
from speakerrpl.data.protocols import load_protocol
from speakerrpl.embeddings import EmbeddingSet
from speakerrpl.frontends import get_frontend
from speakerrpl.frontends.base import torch_threads
from speakerrpl.identifier import OpenSetSpeakerIdentifier
from speakerrpl.identifier.channel import shipped_compensation
from speakerrpl.identifier.conditions import mismatch_posterior, shipped_condition_model
from speakerrpl.identifier.score_norm import asnorm, top_stats
from speakerrpl.metrics import eer, identification_trials
from speakerrpl.vectors import centroids, l2_normalize

PS_DATA = Path("/usr/share/pocketsphinx/test/data")
TOP = 20


def household_eers(corpus: Path, k: int) -> dict[str, dict[str, list[float]]]:
    """Per-household EER % by (space, scorer) and condition."""
    emb = EmbeddingSet.load(corpus / "eval.npz")
    proto = load_protocol(corpus / "protocols-g10" / f"household-k{k}-e3-report.json")
    index = {u: i for i, u in enumerate(emb.utt_ids.tolist())}
    comp = shipped_compensation("campplus")
    spaces = {"raw": l2_normalize, "compensated": lambda x: l2_normalize(comp.apply(x))}
    clean = np.asarray(["__" not in u for u in emb.utt_ids.tolist()])
    out: dict[str, dict[str, list[float]]] = {}
    for space, prep in spaces.items():
        x = prep(emb.embeddings)
        voices, cohort_all = centroids(x[clean], emb.speakers[clean].tolist())
        family = np.asarray([source_voice(v) for v in voices])
        for fold in proto.folds:
            targets = list(fold.targets)
            scored = targets + [str(emb.speakers[index[u]]) for u in fold.test_unknown]
            cohort = cohort_all[~np.isin(family, [source_voice(v) for v in scored])]
            cents = l2_normalize(
                np.stack([x[[index[u] for u in fold.enroll[t]]].mean(axis=0) for t in targets])
            )
            target_stats = top_stats(cents @ cohort.T, TOP)
            for cond in proto.conditions:
                suffix = "" if cond == "clean" else f"__{cond}"
                xk = x[[index[u + suffix] for u in fold.test_known]]
                xu = x[[index[u + suffix] for u in fold.test_unknown]]
                labels = [targets.index(str(emb.speakers[index[u]])) for u in fold.test_known]
                for scorer in ("cosine", "AS-norm"):
                    if scorer == "cosine":
                        sk, su = xk @ cents.T, xu @ cents.T
                    else:
                        sk = asnorm(xk @ cents.T, xk @ cohort.T, target_stats, TOP)
                        su = asnorm(xu @ cents.T, xu @ cohort.T, target_stats, TOP)
                    scores, trial = identification_trials(sk, labels, su)
                    key = f"{space} {scorer}"
                    out.setdefault(key, {}).setdefault(cond, []).append(100 * eer(scores, trial))
    return out


def real_voice_shift(corpus: Path, tails: dict[str, tuple[float, float]]) -> dict[str, object]:
    """Cohort statistics and stranger z-scores of the two real people vs synthetic voices."""
    wavs = sorted(PS_DATA.glob("*/*.wav"))
    if not wavs:
        raise SystemExit("needs pocketsphinx-testdata: run scripts/install_system_deps.sh")
    with torch_threads(1):
        raw_real = get_frontend("campplus").embed([load_audio(w) for w in wavs])
    person = np.asarray([w.parent.name for w in wavs])
    comp = shipped_compensation("campplus")
    demo = EmbeddingSet.load(DEMO / "eval.npz")
    dev = development_voices(demo, EmbeddingSet.load(corpus / "eval.npz"))
    cohort = centroids(comp.apply(dev.embeddings), dev.speakers.tolist())[1]
    report = ~np.isin(demo.speakers, dev.speakers) & np.asarray(
        ["__" not in u for u in demo.utt_ids.tolist()]
    )
    synthetic = l2_normalize(comp.apply(demo.embeddings[report]))
    real = l2_normalize(comp.apply(raw_real))
    out: dict[str, object] = {}
    for name, x in (("synthetic report voices", synthetic), ("real people", real)):
        mu, sd = top_stats(x @ cohort.T, TOP)
        out[f"{name}: top-{TOP} cohort score mean"] = [mu.mean(), mu.std()]
        out[f"{name}: top-{TOP} cohort score std"] = [sd.mean(), sd.std()]

    def z(raw: np.ndarray, x: np.ndarray, cents: np.ndarray) -> dict[str, np.ndarray]:
        normed = asnorm(raw, x @ cohort.T, top_stats(cents @ cohort.T, TOP), TOP)
        (mc, sc), (ma, sa) = tails["cosine"], tails["AS-norm"]
        return {"cosine": (raw - mc) / sc, "AS-norm": (normed - ma) / sa}

    condition = shipped_condition_model("campplus")
    posterior = condition.posterior(raw_real)
    for name, col in zip(condition.names, posterior.T, strict=True):
        out[f"real clips: {name} posterior (mean, max)"] = [col.mean(), col.max()]
    people = sorted(set(person.tolist()))
    relative = [  # each person's clips relative to the other's enrollment, as decided
        mismatch_posterior(posterior[person == a], posterior[person == b],
                           condition.names)[:, condition.names.index("clean")]
        for a in people for b in people if a != b
    ]  # fmt: skip
    out["real clips, relative to the other person's enrollment: clean share (mean, min)"] = [
        np.concatenate(relative).mean(),
        np.concatenate(relative).min(),
    ]
    real_z: dict[str, list[float]] = {"cosine": [], "AS-norm": []}
    for a in people:
        for b in people:
            if a != b:
                cent = l2_normalize(real[person == b].mean(axis=0, keepdims=True))
                for key, v in z(real[person == a] @ cent.T, real[person == a], cent).items():
                    real_z[key] += v.ravel().tolist()
    spk = demo.speakers[report]
    names, cents = centroids(synthetic, spk.tolist())
    other = spk[:, None] != np.asarray(names)[None]
    syn_z = {key: v[other] for key, v in z(synthetic @ cents.T, synthetic, cents).items()}
    for key in ("cosine", "AS-norm"):
        out[f"stranger z in the {key} tail: real"] = [np.mean(real_z[key]), len(real_z[key])]
        out[f"stranger z in the {key} tail: synthetic"] = [syn_z[key].mean(), int(other.sum())]
    return out


def write_asnorm_fits(corpus: Path, out: Path, study: Path = Path("/tmp/i12c")) -> None:
    """Part 3 of the module docstring."""
    demo, full = EmbeddingSet.load(DEMO / "eval.npz"), EmbeddingSet.load(corpus / "eval.npz")
    devplus = with_extra_voices(demo, full)
    pool = EmbeddingSet.load(DEMO / "pool.npz")
    dev_voices = development_voices(demo, full)
    fifty = np.random.default_rng(7).permutation(sorted(set(dev_voices.speakers.tolist())))[:50]
    report_voices = split_speakers(demo.speakers.tolist())["report"]
    clean = np.asarray(["__" not in u for u in demo.utt_ids.tolist()])
    keep = {"devplus": clean & np.isin(demo.speakers, report_voices)}
    cohorts = {
        "devplus": (demo.embeddings[keep["devplus"]], demo.speakers[keep["devplus"]]),
        "report": (
            dev_voices.embeddings[np.isin(dev_voices.speakers, fifty)],
            dev_voices.speakers[np.isin(dev_voices.speakers, fifty)],
        ),
    }
    for half, emb in (("devplus", devplus), ("report", demo)):
        stored = next((study / half).glob("cosine_wccn-*"))
        dst = out / half / "cosine_asn-00000000"
        dst.mkdir(parents=True, exist_ok=True)
        for linked in [stored, *(study / half).glob("softmax_f30_wccn-*")]:
            if not (out / half / linked.name).exists():
                (out / half / linked.name).symlink_to(linked)
        index = {u: i for i, u in enumerate(emb.utt_ids.tolist())}
        files = sorted(stored.glob("k*-f*.npz"))
        for k in sorted({int(f.name[1:4]) for f in files}):
            n = sum(f.name.startswith(f"k{k:03d}-") for f in files)
            for i, fold in enumerate(protocol_for(emb, half, k, n, SEEDS[half] + k).folds):
                with np.load(stored / f"k{k:03d}-f{i}.npz") as data:
                    ref = {key: data[key] for key in data.files}
                targets = list(fold.targets)
                rows = [index[u] for t in targets for u in fold.enroll[t]]
                est = OpenSetSpeakerIdentifier(
                    method="cosine", score_norm="asnorm", channel_compensation=True
                ).fit(
                    emb.embeddings[rows], [t for t in targets for _ in fold.enroll[t]],
                    pool=(pool.embeddings, pool.speakers), cohort=cohorts[half],
                )  # fmt: skip
                sets = {
                    "enroll": emb.embeddings[rows],
                    "pool_free": pool.embeddings[np.isin(pool.speakers, ref["pool_free_spk"])],
                }
                for cond in ("clean", *CONDITIONS):
                    suffix = "" if cond == "clean" else f"__{cond}"
                    for role in ("known", "unknown"):
                        ids = fold.test_known if role == "known" else fold.test_unknown
                        sets[f"{role}|{cond}"] = emb.embeddings[[index[u + suffix] for u in ids]]
                arrays = {key: ref[key] for key in ("enroll_y", "known_y", "fit_s", "n_classes")}
                for key, x in sets.items():
                    arrays[f"{key}|sel"] = est.decision_function(x).astype(np.float32)
                np.savez_compressed(dst / f"k{k:03d}-f{i}.npz", **arrays)
        print(f"{half}: AS-norm cosine fits in {dst}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", type=Path, required=True, help="the --size full build")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument(
        "--tails",
        default="0.1827,0.1527,-1.4134,1.8193",
        help="K = 4 stranger tails m,sd of compensated cosine and of compensated AS-norm "
        "cosine (tables.py on the development fits)",
    )
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--write-fits", type=Path, default=None, help="part 3: where the fits go")
    args = ap.parse_args()
    if args.write_fits:
        with torch_threads(1):
            write_asnorm_fits(args.corpus, args.write_fits)
        return
    mc, sc, ma, sa = (float(v) for v in args.tails.split(","))
    eers = household_eers(args.corpus, args.k)
    draws = 10
    print(f"EER % over households of {args.k}, mean ± std over folds of {draws} households")
    conds = list(next(iter(eers.values())))
    print("| scorer | " + " | ".join(conds) + " | mean |")
    print("|---" * (len(conds) + 2) + "|")
    summary: dict[str, object] = {}
    for key, by_cond in eers.items():
        folds = {c: np.asarray(v).reshape(-1, draws).mean(axis=1) for c, v in by_cond.items()}
        means = [float(folds[c].mean()) for c in conds]
        cells = [f"{folds[c].mean():.2f} ± {folds[c].std():.2f}" for c in conds]
        print(f"| {key} | " + " | ".join(cells) + f" | {np.mean(means):.2f} |")
        summary[key] = {c: [float(folds[c].mean()), float(folds[c].std())] for c in conds}
    shift = real_voice_shift(args.corpus, {"cosine": (mc, sc), "AS-norm": (ma, sa)})
    shift = {name: [round(float(v), 4) for v in value] for name, value in shift.items()}
    for name, value in shift.items():
        print(f"{name}: {value}")
    if args.json:
        args.json.write_text(json.dumps({"eer": summary, "real_voices": shift}, indent=1))


if __name__ == "__main__":
    main()
