"""Do babble clips that contain a household member's voice drive the `babble` errors?

The corpus builder mixes each test clip's `babble` copy from 3-6 utterances of other eval
voices (:mod:`speakerrpl.synth.corpus`), so in a household protocol a test clip's babble can
hold one of the enrolled people. The builder does not record the talkers; this script replays
its draws (the same ``random.Random(seed)`` sequence over the voices in ``voices.csv`` order)
and checks the replay against the talker counts ``utterances.tsv`` records for every babble
clip. Then, for one ``speakerrpl evaluate`` run, it recomputes each draw's `babble` EER of
plain cosine and the default from the stored scores with and without the tests whose babble
holds a target, and prints the mean and the std over the report folds.

Run:  PYTHONPATH=src python benchmarks/household/babble_talkers.py --corpus full --size full \
          --protocol full/protocols-g10/household-k4-e3-report.json --units full/eval-g10-k4/units
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

import numpy as np

from speakerrpl.data import condition_ids as ids
from speakerrpl.data.protocols import draws_per_fold, load_protocol
from speakerrpl.metrics import eer, identification_trials
from speakerrpl.synth.corpus import SIZES

ROWS = ("cosine", "default")


def replay_talkers(corpus: Path, size: str, seed: int) -> dict[str, list[str]]:
    """Test utterance id -> the voices its babble copy was mixed from (the builder's draws)."""
    plan = SIZES[size]
    lines = (corpus / "voices.csv").read_text(encoding="utf-8").splitlines()
    speakers = [r["speaker"] for r in csv.DictReader(lines)]
    utts = {s: [f"{s}-{i:02d}" for i in range(plan.n_utts)] for s in speakers}
    rng, talkers = random.Random(seed), {}
    for spk in speakers:
        others = [u for s in speakers if s != spk for u in utts[s]]
        tests = set(ids.select_condition_tests(dict.fromkeys(utts[spk], spk),
                                               plan.n_condition_tests))  # fmt: skip
        for utt in sorted(u for u in utts[spk] if u in tests):
            n = rng.randint(max(1, plan.n_babble - 1), plan.n_babble + 2)
            picked = rng.sample(others, min(n, len(others)))
            talkers[utt] = [u.rsplit("-", 1)[0] for u in picked]
    return talkers


def check_replay(corpus: Path, talkers: dict[str, list[str]]) -> int:
    """Babble clips whose recorded talker count ("babble of N at ...") the replay matches;
    raises if any does not."""
    matched = 0
    for line in (corpus / "utterances.tsv").read_text().splitlines()[1:]:
        field = line.split("\t")
        if field[3] == "babble":
            recorded = int(field[8].split()[2])
            if len(talkers[field[0].split("__")[0]]) != recorded:
                raise SystemExit(f"replay differs from the build at {field[0]}")
            matched += 1
    return matched


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", type=Path, required=True, help="a corpus build (corpus/eval)")
    ap.add_argument("--size", default="full", choices=sorted(SIZES))
    ap.add_argument("--seed", type=int, default=0, help="the build's seed")
    ap.add_argument("--protocol", type=Path, required=True)
    ap.add_argument("--units", type=Path, required=True, help="speakerrpl evaluate's units/")
    args = ap.parse_args()
    corpus = args.corpus / "corpus" / "eval"
    talkers = replay_talkers(corpus, args.size, args.seed)
    print(f"replay matches the recorded talker count of all {check_replay(corpus, talkers)} "
          "babble clips")  # fmt: skip
    protocol = load_protocol(args.protocol)
    draws = draws_per_fold(protocol)
    eers: dict[str, list[tuple[float, float]]] = {r: [] for r in ROWS}
    share = []
    for f, fold in enumerate(protocol.folds):
        enrolled = set(fold.targets)
        own = [u.rsplit("-", 1)[0] for u in fold.test_known]
        hit_known = np.array([bool(set(talkers[u]) & (enrolled - {s}))
                              for u, s in zip(fold.test_known, own, strict=True)])  # fmt: skip
        hit_unknown = np.array([bool(set(talkers[u]) & enrolled) for u in fold.test_unknown])
        share.append((hit_known.mean(), hit_unknown.mean()))
        for row in ROWS:
            with np.load(args.units / row / f"fold{f:03d}.npz") as a:
                kn, un = a[f"{row}|babble|known"], a[f"{row}|babble|unknown"]
                lab = a["babble|labels"]
            every = eer(*identification_trials(kn, lab, un))
            kept = eer(*identification_trials(kn[~hit_known], lab[~hit_known], un[~hit_unknown]))
            eers[row].append((100 * every, 100 * kept))
    known, unknown = 100 * np.mean(share, axis=0)
    print(f"{len(protocol.folds)} draws: babble tests whose talkers include an enrolled person: "
          f"{known:.1f} % of the targets', {unknown:.1f} % of the strangers'")  # fmt: skip
    for row in ROWS:
        e = np.asarray(eers[row])
        folds = e.reshape(-1, draws, 2).mean(axis=1)
        print(
            f"{row}: babble EER {e[:, 0].mean():.2f} % (std over folds {folds[:, 0].std():.2f}),"
            f" without those tests {e[:, 1].mean():.2f} % (std {folds[:, 1].std():.2f})"
        )


if __name__ == "__main__":
    main()
