"""Loaders for real corpora in their published layouts, each giving utterances + a protocol.

Every loader returns a :class:`LoadedCorpus`: the utterances (id, audio path, speaker) and a
:class:`~speakerrpl.data.protocols.Protocol` over their ids. A missing or malformed copy raises
:class:`~speakerrpl.errors.CorpusLayoutError` whose message shows the expected layout.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from speakerrpl.audio import audio_files
from speakerrpl.data.kaldi import Utterance, read_data_dir
from speakerrpl.data.protocols import Fold, Protocol, make_protocol
from speakerrpl.errors import AudioReadError, CorpusLayoutError, ProtocolError

__all__ = [
    "ESD_EMOTIONS",
    "LoadedCorpus",
    "load_3dspeaker",
    "load_esd",
    "load_kaldi",
    "load_voxceleb1",
    "load_voxceleb2",
]

ESD_EMOTIONS = ("Neutral", "Angry", "Happy", "Sad", "Surprise")
VOX1_LAYOUT = (
    "VoxCeleb1: ROOT/wav/<speaker id>/<youtube id>/<nnnnn>.wav and the Vox1-O trial list "
    "ROOT/veri_test2.txt ('<0|1> <spk>/<yt>/<n>.wav <spk>/<yt>/<n>.wav' lines)"
)
VOX2_LAYOUT = (
    "VoxCeleb2 test: ROOT/wav/<speaker id>/<youtube id>/<nnnnn>.wav (or .flac), converted from "
    "the published ROOT/aac/.../*.m4a, which libsndfile cannot decode"
)
ESD_LAYOUT = "ESD: ROOT/<0001..0020>/<Neutral|Angry|Happy|Sad|Surprise>/<speaker>_<nnnnnn>.wav"
THREED_LAYOUT = (
    "3D-Speaker: ROOT/test/wav/<speaker>/.../<utt>.wav and ROOT/files/trials_<subset> "
    "('<enroll path> <test path> <target|nontarget>' lines, paths relative to ROOT/test/wav)"
)


@dataclass(frozen=True)
class LoadedCorpus:
    """Utterances of a corpus and the few-shot open-set protocol drawn over them."""

    utterances: list[Utterance]
    protocol: Protocol

    def speakers(self) -> dict[str, str]:
        """Utterance id -> speaker (the form protocol validation takes)."""
        return {u.utt_id: u.speaker for u in self.utterances}


def _audio_files(root: Path, layout: str) -> list[Path]:
    if not root.is_dir():
        raise CorpusLayoutError(f"{root} does not exist; expected {layout}")
    try:
        files = audio_files(root)
    except AudioReadError as exc:
        raise CorpusLayoutError(f"{exc}; expected {layout}") from exc
    if not files:
        raise CorpusLayoutError(f"no audio files under {root}; expected {layout}")
    return files


def _utt_id(rel: Path) -> str:
    return "-".join(rel.with_suffix("").parts)


def _by_path(root: Path, files: Iterable[Path], speaker: Callable[[Path], str]) -> list[Utterance]:
    return [Utterance(_utt_id(f.relative_to(root)), f, speaker(f.relative_to(root))) for f in files]


def _draw(utts: list[Utterance], layout: str, **kwargs: object) -> Protocol:
    try:
        return make_protocol({u.utt_id: u.speaker for u in utts}, **kwargs)  # type: ignore[arg-type]
    except ProtocolError as exc:
        raise CorpusLayoutError(f"{exc} (expected {layout})") from exc


def load_kaldi(
    data_dir: str | Path,
    *,
    n_targets: int,
    n_enroll: int,
    n_unknowns: int,
    n_folds: int = 5,
    seed: int = 0,
) -> LoadedCorpus:
    """Any Kaldi data dir (``wav.scp`` + ``utt2spk``) with seeded few-shot folds.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> ids = [f"s{i}-{j}" for i in range(3) for j in range(3)]
        >>> _ = (d / "wav.scp").write_text("".join(f"{u} x.wav\\n" for u in ids))
        >>> _ = (d / "utt2spk").write_text("".join(f"{u} {u[:2]}\\n" for u in ids))
        >>> c = load_kaldi(d, n_targets=1, n_enroll=2, n_unknowns=2, n_folds=1)
        >>> len(c.protocol.folds[0].test_unknown)
        6
    """
    utts = read_data_dir(data_dir)
    protocol = _draw(
        utts,
        "a Kaldi data dir",
        n_targets=n_targets,
        n_enroll=n_enroll,
        n_unknowns=n_unknowns,
        n_folds=n_folds,
        seed=seed,
    )
    return LoadedCorpus(utts, protocol)


def _read_trials(path: Path, layout: str, columns: tuple[int, int]) -> list[tuple[str, str]]:
    if not path.is_file():
        raise CorpusLayoutError(f"trial list {path} is missing; expected {layout}")
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise CorpusLayoutError(f"{path}:{number}: malformed trial {line!r}; expected {layout}")
        pairs.append((parts[columns[0]], parts[columns[1]]))
    if not pairs:
        raise CorpusLayoutError(f"{path} holds no trials; expected {layout}")
    return pairs


def load_voxceleb1(
    root: str | Path,
    *,
    trial_list: str | Path | None = None,
    n_enroll: int = 3,
    n_folds: int = 5,
    seed: int = 0,
) -> LoadedCorpus:
    """Vox1-O-like protocol: the trial list's speakers are the targets (40 in Vox1-O).

    Per fold and target, enrollment utterances come from one YouTube video of the trial list
    and the target's test utterances are its trial-list utterances from *other* videos, so
    enrollment and test never overlap (not even in session). Unknowns are every speaker of
    ``ROOT/wav`` that is not in the trial list (the VoxCeleb1 dev speakers).
    """
    root = Path(root)
    files = _audio_files(root / "wav", VOX1_LAYOUT)
    utts = _by_path(root / "wav", files, lambda rel: rel.parts[0])
    by_rel = {
        str(f.relative_to(root / "wav").with_suffix("")): u
        for f, u in zip(files, utts, strict=True)
    }
    trials = _read_trials(
        Path(trial_list) if trial_list else root / "veri_test2.txt", VOX1_LAYOUT, (1, 2)
    )
    listed: dict[str, set[str]] = {}
    for path in {p for pair in trials for p in pair}:
        key = str(Path(path).with_suffix(""))
        if key not in by_rel:
            raise CorpusLayoutError(
                f"trial-list file {path} is missing under {root}/wav; expected {VOX1_LAYOUT}"
            )
        listed.setdefault(by_rel[key].speaker, set()).add(key)
    unknown = [u.utt_id for u in utts if u.speaker not in listed]
    if not unknown:
        raise CorpusLayoutError(
            f"no non-trial-list speakers under {root}/wav for unknowns; expected {VOX1_LAYOUT}"
        )
    rng, folds = random.Random(seed), []
    for _ in range(n_folds):
        enroll, known = {}, []
        for speaker in sorted(listed):
            keys = sorted(listed[speaker])
            videos = sorted({k.split("/")[1] for k in keys})
            if len(videos) < 2:
                raise CorpusLayoutError(
                    f"target {speaker} has trial utterances from one video only"
                )
            video = rng.choice(videos)
            pick = [k for k in keys if k.split("/")[1] == video]
            enroll[speaker] = sorted(
                by_rel[k].utt_id for k in rng.sample(pick, min(n_enroll, len(pick)))
            )
            known += [by_rel[k].utt_id for k in keys if k.split("/")[1] != video]
        folds.append(Fold(sorted(listed), enroll, known, unknown))
    params = {"corpus": "voxceleb1", "n_enroll": n_enroll, "n_folds": n_folds, "seed": seed}
    return LoadedCorpus(utts, Protocol(folds, ["clean"], params))


def load_voxceleb2(
    root: str | Path, *, n_targets: int = 5, n_enroll: int = 3, n_folds: int = 5, seed: int = 0
) -> LoadedCorpus:
    """VoxCeleb2 test, watchlist style: ``n_folds`` splits of ``n_targets`` targets each,
    every other test speaker (118 in all) an unknown."""
    root = Path(root)
    base = root / "wav" if (root / "wav").is_dir() or not (root / "aac").is_dir() else root / "aac"
    utts = _by_path(base, _audio_files(base, VOX2_LAYOUT), lambda rel: rel.parts[0])
    n_speakers = len({u.speaker for u in utts})
    protocol = _draw(
        utts,
        VOX2_LAYOUT,
        n_targets=n_targets,
        n_enroll=n_enroll,
        n_unknowns=n_speakers - n_targets,
        n_folds=n_folds,
        seed=seed,
    )
    return LoadedCorpus(utts, protocol)


def load_esd(
    root: str | Path, *, n_targets: int = 10, n_enroll: int = 3, n_folds: int = 5, seed: int = 0
) -> LoadedCorpus:
    """ESD: enroll on neutral speech, test on all emotions (speakers 0001-0020)."""
    root = Path(root)
    files = [f for f in _audio_files(root, ESD_LAYOUT) if len(f.relative_to(root).parts) == 3]
    bad = [f for f in files if f.parent.name not in ESD_EMOTIONS]
    if bad or not files:
        raise CorpusLayoutError(
            f"unexpected folder {bad[0].parent if bad else root}; expected {ESD_LAYOUT}"
        )
    utts = _by_path(root, files, lambda rel: rel.parts[0])
    neutral = [u.utt_id for u, f in zip(utts, files, strict=True) if f.parent.name == "Neutral"]
    n_speakers = len({u.speaker for u in utts})
    protocol = _draw(
        utts,
        ESD_LAYOUT,
        n_targets=n_targets,
        n_enroll=n_enroll,
        n_unknowns=n_speakers - n_targets,
        n_folds=n_folds,
        seed=seed,
        enroll_candidates=neutral,
    )
    return LoadedCorpus(utts, protocol)


def load_3dspeaker(
    root: str | Path,
    *,
    subset: str = "cross_device",
    n_targets: int = 10,
    n_enroll: int = 3,
    n_folds: int = 5,
    seed: int = 0,
) -> LoadedCorpus:
    """3D-Speaker test subset (``cross_device``, ``cross_distance`` or ``cross_dialect``):
    enrollment from the trial list's enrollment side, tests from its test side."""
    root = Path(root)
    base = root / "test" / "wav"
    utts = _by_path(base, _audio_files(base, THREED_LAYOUT), lambda rel: rel.parts[0])
    trials = _read_trials(root / "files" / f"trials_{subset}", THREED_LAYOUT, (0, 1))
    ids = {u.utt_id for u in utts}
    enroll_side = {_utt_id(Path(e)) for e, _ in trials}
    test_side = {_utt_id(Path(t)) for _, t in trials}
    used = enroll_side | test_side
    if not used <= ids:
        raise CorpusLayoutError(f"trial-list files missing under {base}; expected {THREED_LAYOUT}")
    subset_utts = [u for u in utts if u.utt_id in used]
    n_speakers = len({u.speaker for u in subset_utts})
    protocol = _draw(
        subset_utts,
        THREED_LAYOUT,
        n_targets=n_targets,
        n_enroll=n_enroll,
        n_unknowns=n_speakers - n_targets,
        n_folds=n_folds,
        seed=seed,
        enroll_candidates=enroll_side,
        test_candidates=test_side,
    )
    return LoadedCorpus(subset_utts, protocol)
