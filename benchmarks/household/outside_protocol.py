"""The issue's outside measurement, replayed on the report (or development) half of the corpus.

The issue measured the identifier from outside with: test clips of 2.5 s with 10 dB babble,
3 clean enrollment clips per target, the public API with its defaults,
``default_pool(get_frontend("campplus"))`` as the pool and ``target_far=0.01``, households of 4
(8 splits) and 16 (3 splits). This script builds that test condition from the report-half
voices' clean test clips (a 2.5 s segment inside the speech, babble of 3 development-half
voices at 10 dB: talkers that are never a target or a stranger here), embeds it with CAM++,
and fits, per split, exactly what a user gets: ``OpenSetSpeakerIdentifier()``, the same with
enrollment copies as the service and ``speakerrpl enroll`` fit it (each enrollment clip's
seven channel copies, :mod:`speakerrpl.synth.enrollment_copies`, babble of the service's own
talkers, through ``fit(copies=)``), both also with the previous default's single stranger
tail (``calibration="tail"``), and ``OpenSetSpeakerIdentifier(method="cosine")`` (all
channel-compensated, as shipped), plus plain cosine on raw embeddings
(``channel_compensation=False``), the issue's reference.
Every other voice of the half is a stranger (``--half dev``: development households, babble
from the voices only a ``--size full`` build has). Per method: EER over identification
trials, and with the decision the fit deploys (``predict``), strangers accepted (FA) and
targets missed or misnamed (FR); mean ± std over splits.

Run (from benchmarks/household; about 25 minutes with --splits 20, --methods NAME... for some):
      PYTHONPATH=../../src python outside_protocol.py [--json /tmp/outside.json] \
          [--seconds 2.5] [--snr 10]   (--seconds 0: whole clips; --snr -1: no babble)
"""

from __future__ import annotations

import argparse
import json
import random
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
from channel_model import _read_kaldi  # type: ignore[import-not-found]
from study import DEMO, split_speakers  # type: ignore[import-not-found]

from speakerrpl.embeddings import EmbeddingSet
from speakerrpl.frontends import get_frontend
from speakerrpl.frontends.base import torch_threads
from speakerrpl.identifier import OpenSetSpeakerIdentifier
from speakerrpl.metrics import eer, identification_trials
from speakerrpl.synth.conditions import add_noise, babble, crop
from speakerrpl.synth.enrollment_copies import babble_talkers, embedded_copies
from speakerrpl.synth.pool import default_pool

SEED = 2604
CLIP_S, SNR_DB, N_TALKERS = 2.5, 10.0, 3
SPLITS = {2: 8, 4: 8, 8: 5, 16: 3, 20: 5}  # K -> splits (the issue's: 8 at K = 4, 3 at K = 16)
METHODS = {
    "default": {},
    # what `speakerrpl enroll` / the REST service fit: the clips plus their channel copies
    "default, enrollment copies (the service)": {"copies": "fit"},
    # the previous default decision: one stranger tail for every clip (the default reads
    # per-condition tails by the clip's condition posterior; docs/calibration.md)
    "default, single stranger tail": {"calibration": "tail"},
    "default, enrollment copies, single stranger tail": {"copies": "fit", "calibration": "tail"},
    "cosine (compensated, as shipped)": {"method": "cosine"},
    "cosine (raw embeddings)": {"method": "cosine", "channel_compensation": False},
    # the reference with the same enrollment budget: the copies as extra enrollment clips (its
    # threshold is the clean-enrollment one, so only its EER compares)
    "cosine (raw embeddings), enrollment copies": {
        "method": "cosine", "channel_compensation": False, "copies": "clips",
    },
}  # fmt: skip


def roles(corpus: Path) -> dict[str, dict[str, list[str]]]:
    """speaker -> {"enroll": clean enrollment ids, "test": clean test ids}."""
    out: dict[str, dict[str, list[str]]] = {}
    for line in (corpus / "utterances.tsv").read_text().splitlines()[1:]:
        utt, spk, role, cond = line.split("\t")[:4]
        if cond == "clean":
            out.setdefault(spk, {"enroll": [], "test": []})[role].append(utt)
    return out


def test_clips(
    corpus: Path, tests: list[str], talkers: list[str], seconds: float, snr: float | None
) -> list[np.ndarray]:
    """Each test clip as the issue heard it: ``seconds`` of its speech (0: all of it) under
    babble at ``snr`` dB (``None``: no babble); the issue's are 2.5 s and 10 dB."""
    wav = _read_kaldi(corpus / "wav.scp")

    def read(utt: str) -> np.ndarray:
        return sf.read(str(corpus / wav[utt].strip()), dtype="float32")[0]

    sources = [read(u) for u in talkers]
    out = []
    for utt in tests:
        rng = np.random.default_rng([SEED, zlib.crc32(utt.encode())])
        segment = crop(read(utt), rng, (seconds, seconds)) if seconds else read(utt)
        picked = [sources[i] for i in rng.choice(len(sources), N_TALKERS, replace=False)]
        if snr is not None:
            segment = add_noise(segment, babble(segment.size, picked, rng), snr)
        out.append(segment)
    return out


def enrollment_copy_embeddings(corpus: Path, utts: list[str]) -> dict[str, np.ndarray]:
    """utt -> (7, D) CAM++ embeddings of its channel copies, made as the service makes them
    (:func:`speakerrpl.synth.enrollment_copies.embedded_copies`, keyed by the utterance id,
    babble of the service's own espeak-ng talkers); ``corpus`` is a Kaldi dir (wav.scp)."""
    wav = _read_kaldi(corpus / "wav.scp")
    waves = [sf.read(str(corpus / wav[u].strip()), dtype="float32")[0] for u in utts]
    emb = embedded_copies(waves, utts, get_frontend("campplus").embed, babble_talkers())
    return dict(zip(utts, emb, strict=True))


def decide(
    params: dict, x_enroll, y_enroll, x_test, y_test, targets, pool, copies=None
) -> list[float]:
    """[EER %, FA %, FR %] of one split: fit as a user would, score every test clip."""
    est = OpenSetSpeakerIdentifier(**params).fit(x_enroll, y_enroll, pool=pool, copies=copies)
    scores = est.decision_function(x_test)
    known = np.isin(y_test, targets)
    labels = np.asarray([list(est.classes_).index(s) for s in y_test[known]])
    s, lab = identification_trials(scores[known], labels, scores[~known])
    names = est.predict(x_test)
    fa = float(np.mean(names[~known] != est.settings.unknown_label))
    fr = float(np.mean(names[known] != y_test[known]))
    return [100 * eer(s, lab), 100 * fa, 100 * fr]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--corpus",
        type=Path,
        default=DEMO,
        help="a corpus build (eval.npz, corpus/eval): the demo's report-half voices in it are "
        "the household and the strangers, its demo development-half voices the babble",
    )
    ap.add_argument(
        "--splits",
        type=int,
        default=None,
        help="splits for every K (default: "
        + ", ".join(f"{n} at K = {k}" for k, n in SPLITS.items())
        + ")",
    )
    ap.add_argument(
        "--half",
        choices=("report", "dev"),
        default="report",
        help="households from the report half (babble: development voices) or the development "
        "half (babble: the voices only a --size full build has)",
    )
    ap.add_argument("--far", type=float, default=0.01, help="target_far of every fit")
    ap.add_argument(
        "--methods",
        nargs="+",
        choices=list(METHODS),
        default=list(METHODS),
        metavar="NAME",
        help="rows to run (default: all)",
    )
    ap.add_argument("--seconds", type=float, default=CLIP_S, help="test segment, 0: whole clip")
    ap.add_argument("--snr", type=float, default=SNR_DB, help="babble SNR dB (negative: none)")
    args = ap.parse_args()
    snr = None if args.snr < 0 else args.snr
    corpus = args.corpus / "corpus" / "eval"
    clean = EmbeddingSet.load(args.corpus / "eval.npz")
    halves = split_speakers(EmbeddingSet.load(DEMO / "eval.npz").speakers.tolist())
    by_speaker = roles(corpus)
    halves = {h: [s for s in voices if s in by_speaker] for h, voices in halves.items()}
    halves["extra"] = sorted(set(by_speaker) - set(halves["dev"]) - set(halves["report"]))
    babble_half = "dev" if args.half == "report" else "extra"
    if not halves[babble_half]:
        ap.error("--half dev takes babble from voices only a --size full build has: --corpus")
    report = [s for s in halves[args.half] if by_speaker[s]["test"]]
    talkers = [by_speaker[s]["test"][0] for s in halves[babble_half] if by_speaker[s]["test"]]
    tests = [u for s in report for u in by_speaker[s]["test"]]
    frontend = get_frontend("campplus")
    with torch_threads(1):
        x_test = frontend.embed(test_clips(corpus, tests, talkers, args.seconds, snr))
        pool = default_pool(frontend)
    y_test = np.asarray([u.rsplit("-", 1)[0] for u in tests], dtype=object)
    index = {u: i for i, u in enumerate(clean.utt_ids.tolist())}
    enrolled = {s: sorted(by_speaker[s]["enroll"])[:3] for s in report}
    with torch_threads(2):
        copies = enrollment_copy_embeddings(corpus, [u for us in enrolled.values() for u in us])
    results: dict[str, dict[str, list[float]]] = {}
    print(f"{len(report)} {args.half} voices, {len(tests)} test clips ({args.seconds:g} s, "
          f"{'no babble' if snr is None else f'{snr:g} dB babble'} of {N_TALKERS} of "
          f"{len(talkers)} {babble_half} voices)")  # fmt: skip
    print(f"| K | splits | method | EER % | FA % at target_far={args.far:g} | FR % |")
    print("|---|---|---|---|---|---|")
    with torch_threads(1):
        for k, n_splits in SPLITS.items():
            n_splits = args.splits or n_splits
            rng = random.Random(SEED + k)
            draws = [sorted(rng.sample(report, k)) for _ in range(n_splits)]
            for name in args.methods:
                params, rows = METHODS[name], []
                for targets in draws:
                    enroll = [u for t in targets for u in enrolled[t]]
                    x_enroll = clean.embeddings[[index[u] for u in enroll]]
                    y_enroll = [u.rsplit("-", 1)[0] for u in enroll]
                    given, how = None, params.get("copies")
                    if how:
                        given = (np.concatenate([copies[u] for u in enroll]),
                                 [y for y in y_enroll for _ in range(7)])  # fmt: skip
                    if how == "clips":
                        x_enroll = np.concatenate([x_enroll, given[0]])
                        y_enroll, given = [*y_enroll, *given[1]], None
                    fit_params = {k: v for k, v in params.items() if k != "copies"}
                    rows.append(decide({**fit_params, "target_far": args.far}, x_enroll,
                                       y_enroll, x_test, y_test, targets, pool, given))  # fmt: skip
                m, sd = np.mean(rows, axis=0), np.std(rows, axis=0)
                results.setdefault(str(k), {})[name] = [*m.round(3), *sd.round(3)]
                print(f"| {k} | {n_splits} | {name} | "
                      + " | ".join(f"{a:.2f} ± {b:.2f}" for a, b in zip(m, sd, strict=True))
                      + " |", flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
