"""End-to-end demo (``make demo``): corpus -> embeddings -> enroll -> identify -> paper tables.

Every step is a ``speakerrpl`` command or a public API call; outputs are cached, so a re-run
only repeats what is missing:

1. ``speakerrpl corpus build --size demo`` (offline TTS voices with per-utterance prosody,
   test copies through channels, noise and short crops), if absent;
2. ``speakerrpl embed`` of the eval and pool sets with CAM++ (cached by audio content);
3. ``speakerrpl protocol suite``: the household K = 4, 3-clip deployment's seeded dev and
   report folds, if absent, and ``speakerrpl corpus baseline``: the cosine baseline per
   condition for households of 2, 4 and 8 and offices of 20 and 50;
4. enroll the first report fold's household (``OpenSetSpeakerIdentifier.fit`` with the channel
   copies of each enrollment clip, as ``speakerrpl enroll`` does) and identify a few test clips
   straight from their audio files;
5. ``speakerrpl evaluate`` over every report fold, method and ablation.

Everything the demo writes lands under ``data/`` and ``results/`` (both gitignored), so a
checkout stays clean; ``make docs`` (``--docs docs/demo-results.md``) publishes the report to the
tracked ``docs/`` afterwards.

The demo trains with the library's default recipe, aiming at 10 minutes on 2 quiet CPU cores;
``--full`` evaluates 10 report folds instead of 5 (on the same demo corpus; the larger
``speakerrpl corpus build --size full`` corpus is for the report tables, docs/corpus.md).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# Training recipe: the library default (step-based, see IdentifierSettings.min_steps) unless a
# setting below gives "epochs". The demo evaluates 5 report folds of one deployment (a
# household of 4, 3 clips each), one household per fold to stay within its 10 minutes (the
# suite's default is 10 households per fold, docs/corpus.md); --full 10 folds. "baseline"
# lists the deployments whose cosine baseline is printed.
DEPLOYMENT = "household-k4-e3"
BASELINES = "household-k2-e3,household-k4-e3,household-k8-e3,office-k20-e3,office-k50-e3"
DEMO = {"folds": 5, "models": 30}
FULL = {**DEMO, "folds": 10}
TINY = {"folds": 2, "models": 4, "epochs": 5}
TINY_BASELINES = "household-k2-e3,household-k4-e3"
N_KNOWN_CLIPS, N_UNKNOWN_CLIPS = 4, 3


def speakerrpl(*args: object) -> None:
    """Run one ``speakerrpl`` command, echoing it; stop the demo if it fails."""
    argv = [str(a.relative_to(ROOT)) if isinstance(a, Path) and a.is_relative_to(ROOT) else str(a)
            for a in args]  # fmt: skip
    print(f"\n$ speakerrpl {' '.join(argv)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "speakerrpl", *argv], cwd=ROOT, check=False)
    if done.returncode not in (0, 1):  # 1 = embed: some files failed, listed above
        sys.exit(f"demo: `speakerrpl {argv[0]}` failed with exit code {done.returncode}")


def epochs_override(settings: dict[str, int]) -> dict[str, int]:
    """``{"epochs": N}`` where the demo size overrides the library's training length."""
    return {"epochs": settings["epochs"]} if "epochs" in settings else {}


def epochs_args(settings: dict[str, int]) -> list[object]:
    """The same override as ``speakerrpl evaluate`` arguments."""
    return ["--epochs", settings["epochs"]] if "epochs" in settings else []


def is_fresh(output: Path, source: Path) -> bool:
    """``output`` exists and is newer than ``source``."""
    return output.is_file() and output.stat().st_mtime >= source.stat().st_mtime


def prepare(data: Path, size: str, settings: dict[str, int]) -> dict[str, Path]:
    """Steps 1-3: corpus, embeddings and protocol, each only when missing or stale."""
    corpus = data / "corpus"
    if not (corpus / "eval" / "wav.scp").is_file() or not (corpus / "pool" / "wav.scp").is_file():
        speakerrpl("corpus", "build", "--size", size, "--out", corpus, "--no-baseline")
    paths = {"eval": data / "eval.npz", "pool": data / "pool.npz"}
    for part, npz in paths.items():
        if is_fresh(npz, corpus / part / "wav.scp"):
            print(f"\nembeddings of {part}: cached in {npz}")
        else:
            speakerrpl("embed", corpus / part, "--out", npz, "--jobs", 2)
    paths["corpus"] = corpus / "eval"
    folder = data / f"protocols-{settings['folds']}folds"
    paths["protocol"] = folder / f"{DEPLOYMENT}-report.json"
    if not is_fresh(paths["protocol"], paths["eval"]):
        speakerrpl(
            "protocol", "suite", "--embeddings", paths["eval"],
            "--voices", corpus / "eval" / "voices.csv", "--only", DEPLOYMENT,
            "--report-folds", settings["folds"], "--draws-per-fold", 1, "--out", folder,
        )  # fmt: skip
        speakerrpl(
            "corpus", "baseline", "--embeddings", paths["eval"], "--data", corpus / "eval",
            "--deployments", TINY_BASELINES if size == "tiny" else BASELINES,
        )  # fmt: skip
    return paths


def enroll_and_identify(paths: dict[str, Path], settings: dict[str, int], out: Path) -> None:
    """Step 4: fit the identifier on split 1's targets, then name a few clips from audio."""
    from speakerrpl import OpenSetSpeakerIdentifier, get_frontend
    from speakerrpl.audio import load_audio
    from speakerrpl.data.kaldi import read_data_dir
    from speakerrpl.data.protocols import load_protocol
    from speakerrpl.embeddings import EmbeddingSet
    from speakerrpl.identifier.settings import IdentifierSettings
    from speakerrpl.synth.enrollment_copies import CHANNELS, babble_talkers, embedded_copies

    emb, pool = EmbeddingSet.load(paths["eval"]), EmbeddingSet.load(paths["pool"])
    fold = load_protocol(paths["protocol"]).folds[0]
    row = {u: i for i, u in enumerate(emb.utt_ids.tolist())}
    enroll_ids = [u for t in fold.targets for u in fold.enroll[t]]
    names = [t for t in fold.targets for _ in fold.enroll[t]]
    saved = out / "identifier"
    clf = None
    if (saved / "config.json").is_file() and is_fresh(saved / "config.json", paths["protocol"]):
        clf = OpenSetSpeakerIdentifier.load(saved, frontend=emb.frontend, dim=emb.dim)
        wanted = (settings["models"], settings.get("epochs", IdentifierSettings().epochs), True)
        if (clf.settings.n_models, clf.settings.epochs, clf.copies_used_) != wanted:
            clf = None
    audio = {u.utt_id: u.path for u in read_data_dir(paths["corpus"])}
    frontend = get_frontend(emb.frontend)
    if clf is None:
        print(
            f"\nEnrolling the {len(fold.targets)} people of household 1 from {len(names)} "
            f"clips and {len(CHANNELS)} channel copies of each (as `speakerrpl enroll` does)"
        )
        start = time.perf_counter()
        waves = [load_audio(audio[u]) for u in enroll_ids]
        made = embedded_copies(waves, enroll_ids, frontend.embed, babble_talkers())
        copies = (made.reshape(-1, emb.dim), [n for n in names for _ in CHANNELS])
        clf = OpenSetSpeakerIdentifier(
            n_models=settings["models"], selection_r=settings["models"] // 3,
            frontend=emb.frontend, **epochs_override(settings),
        ).fit(emb.embeddings[[row[u] for u in enroll_ids]], names,
              pool=(pool.embeddings, pool.speakers), copies=copies)  # fmt: skip
        clf.save(saved)
        print(f"copies made and embedded, fitted in {time.perf_counter() - start:.1f} s, "
              f"saved to {saved}")  # fmt: skip
    else:
        print(f"\nEnrolled household 1: loaded the fitted identifier from {saved}")
    truth = dict(zip(emb.utt_ids.tolist(), emb.speakers.tolist(), strict=True))
    first_clip: dict[str, str] = {}  # speaker -> first test clip, in protocol order
    for u in [*fold.test_known, *fold.test_unknown]:
        first_clip.setdefault(truth[u], u)
    strangers = [s for s in first_clip if s not in fold.targets]
    clips = [first_clip[t] for t in fold.targets[:N_KNOWN_CLIPS]]
    clips += [first_clip[s] for s in strangers[:N_UNKNOWN_CLIPS]]
    x = frontend.embed([load_audio(audio[u]) for u in clips])
    predicted, scores = clf.predict(x), clf.score_samples(x)
    print(f"\nIdentifying {len(clips)} test clips (threshold {clf.threshold_:.3f}):")
    for utt, name, score in zip(clips, predicted, np.asarray(scores), strict=True):
        who = truth[utt] if truth[utt] in fold.targets else "a stranger"
        print(f"  {Path(audio[utt]).name:<42} -> {name:<28} score {score:8.3f}   (really: {who})")


def evaluate(
    paths: dict[str, Path], settings: dict[str, int], out: Path, docs: Path | None
) -> None:
    """Step 5: every method x split x condition, with ablations; publish to ``docs`` if given."""
    publish = ["--markdown", docs] if docs is not None else []
    speakerrpl(
        "evaluate", "--embeddings", paths["eval"], "--pool", paths["pool"],
        "--protocol", paths["protocol"], "--out", out,
        "--models", settings["models"], *epochs_args(settings), "--seeds", 3,
        "--ablation", *publish,
    )  # fmt: skip


def output_paths(
    size: str, full: bool, data: str | None, results: str | None, docs: str | None
) -> tuple[Path, Path, Path | None]:
    """``(data dir, results dir, published report or None)`` of a demo run.

    By default the demo writes only under ``ROOT/data`` and ``ROOT/results`` (gitignored);
    a report is published (e.g. to ``docs/demo-results.md``) only when ``docs`` is given.
    """
    name = "demo" if size == "demo" else f"demo-{size}"
    data_dir = Path(data) if data else ROOT / "data" / name
    out = Path(results) if results else ROOT / "results" / (f"{name}-full" if full else name)
    return data_dir, out, Path(docs) if docs else None


def main() -> int:
    """Run the demo."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="10 report folds instead of 5")
    parser.add_argument(
        "--size", default="demo", choices=["demo", "full", "tiny"], help="corpus size"
    )
    parser.add_argument("--data", default=None, help="data directory (default data/demo)")
    parser.add_argument("--results", default=None, help="default results/demo[-full]")
    parser.add_argument(
        "--docs",
        default=None,
        help="also publish the report here (make docs: docs/demo-results.md)",
    )
    args = parser.parse_args()
    settings = TINY if args.size == "tiny" else FULL if args.full else DEMO
    data, out, docs = output_paths(args.size, args.full, args.data, args.results, args.docs)
    start = time.perf_counter()
    paths = prepare(data, args.size, settings)
    enroll_and_identify(paths, settings, out)
    evaluate(paths, settings, out, docs)
    print(f"\ndemo finished in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
