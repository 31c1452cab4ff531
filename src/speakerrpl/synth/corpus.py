"""Build the offline multi-voice speech corpus (``speakerrpl corpus build``).

Writes two Kaldi data dirs under ``out``: ``eval`` (targets and test unknowns, with clean
close-talk originals plus, for the test subset of each voice (the last ``n_condition_tests``
clean utterances in id order), one copy per test condition, listed in ``utt2cond``) and
``pool`` (synthetic training-negative voices disjoint from the eval voices, clean only). Both
carry ``voices.csv``; ``eval/utterances.tsv`` lists per utterance its role (``enroll`` or
``test``), condition, drawn prosody (rate, pitch, range, loudness) and channel. Every
utterance draws its own prosody (:mod:`speakerrpl.synth.prosody`). Audio is 16 kHz mono 16-bit
WAV; everything is deterministic for a seed (generators seeded by seed and file name).
"""

from __future__ import annotations

import csv
import itertools
import logging
import random
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from speakerrpl.data import condition_ids as ids
from speakerrpl.data.corpus_files import VOICE_FIELDS
from speakerrpl.data.kaldi import Utterance, write_data_dir
from speakerrpl.errors import InvalidInputError, TTSError
from speakerrpl.synth import conditions as cond
from speakerrpl.synth.channels import room_impulse_responses
from speakerrpl.synth.engines import SAMPLE_RATE, VoiceSpec, synthesize_many
from speakerrpl.synth.prosody import Prosody, draw_prosody
from speakerrpl.synth.voices import eval_voices, load_texts, pool_voices

__all__ = ["SIZES", "CorpusSize", "build_corpus"]

logger = logging.getLogger(__name__)

# fastest engines first: a small corpus takes its voices round-robin from the front
_ENGINE_ORDER = ("flite", "pico", "mbrola", "espeak", "festival", "piper", "kokoro")


@dataclass(frozen=True)
class CorpusSize:
    """How many voices and utterances a corpus size has (``None`` = every available voice).

    ``n_utts`` clean utterances per eval voice, the last ``n_condition_tests`` of which are its
    tests (each copied into every condition); ``n_pool_utts`` per pool voice.
    """

    n_eval: int | None
    n_pool: int
    n_utts: int
    n_rirs: int
    n_babble: int = 4
    n_condition_tests: int = 4
    n_pool_utts: int = 6
    n_kokoro: int = 0


SIZES = {
    "demo": CorpusSize(n_eval=100, n_pool=64, n_utts=8, n_rirs=18, n_condition_tests=3),
    # the 20 Kokoro candidates leave 3 distinct mixtures (voices._EVAL_KOKORO_DUPLICATES)
    "full": CorpusSize(
        n_eval=None, n_pool=64, n_utts=11, n_rirs=24, n_condition_tests=6, n_kokoro=20
    ),
    "tiny": CorpusSize(
        n_eval=8, n_pool=4, n_utts=4, n_rirs=3, n_babble=3, n_condition_tests=1, n_pool_utts=4
    ),
}


def _select_eval(size: CorpusSize, seed: int) -> list[VoiceSpec]:
    specs = eval_voices(seed, kokoro=size.n_kokoro)
    specs.sort(key=lambda s: (_ENGINE_ORDER.index(s.engine), s.speaker))
    if size.n_eval is not None:
        # round-robin over the engine families so a small corpus still mixes them
        groups = [[s for s in specs if s.engine == e] for e in _ENGINE_ORDER]
        cycled = [s for turn in itertools.zip_longest(*groups) for s in turn if s is not None]
        specs = sorted(cycled[: size.n_eval], key=lambda s: s.speaker)
    if len(specs) < 4:
        raise TTSError(
            f"only {len(specs)} eval voices are installed (need >= 4): run "
            "scripts/install_system_deps.sh (flite, festival, MBROLA, pico) first"
        )
    return specs


def _texts_for(spec: VoiceSpec, n_utts: int, seed: int) -> list[str]:
    texts = list(load_texts(spec.language))
    rng = random.Random(f"{seed}-{spec.speaker}")
    if len(texts) < n_utts:
        raise InvalidInputError(f"{spec.language}.txt has {len(texts)} sentences, need {n_utts}")
    return rng.sample(texts, n_utts)


def _prosody(spec: VoiceSpec, utt_id: str, seed: int) -> Prosody:
    return draw_prosody(np.random.default_rng([seed, zlib.crc32(utt_id.encode())]), spec.engine)


def _synth_task(task: tuple[VoiceSpec, list[str], list[str], list[Prosody]]) -> str | None:
    spec, texts, paths, prosodies = task
    try:
        waves = synthesize_many(spec, texts, prosodies)
    except TTSError as exc:
        return str(exc)
    Path(paths[0]).parent.mkdir(parents=True, exist_ok=True)
    for wave, path in zip(waves, paths, strict=True):
        sf.write(path, wave, SAMPLE_RATE, subtype="PCM_16")
    return None


def _synthesize_set(
    specs: Sequence[VoiceSpec],
    root: Path,
    n_utts: int,
    seed: int,
    pool: ProcessPoolExecutor,
    prosodies: dict[str, Prosody],
) -> list[tuple[VoiceSpec, list[Utterance]]]:
    tasks, by_speaker = [], {}
    for spec in specs:
        utts = [
            Utterance(
                f"{spec.speaker}-{i:02d}",
                root / "wav" / spec.speaker / f"{spec.speaker}-{i:02d}.wav",
                spec.speaker,
            )
            for i in range(n_utts)
        ]
        drawn = [_prosody(spec, u.utt_id, seed) for u in utts]
        prosodies.update({u.utt_id: p for u, p in zip(utts, drawn, strict=True)})
        texts = _texts_for(spec, n_utts, seed)
        tasks.append((spec, texts, [str(u.path) for u in utts], drawn))
        by_speaker[spec.speaker] = utts
    failed = []
    for spec, error in zip(specs, pool.map(_synth_task, tasks), strict=True):
        if error is not None:
            logger.warning("dropping voice %s: %s", spec.speaker, error)
            failed.append(spec.speaker)
    return [(s, by_speaker[s.speaker]) for s in specs if s.speaker not in failed]


_ROOMS: list = []


def _init_worker(rooms: list) -> None:
    _ROOMS[:] = rooms


def _condition_task(task: tuple[str, list[str], int]) -> list[tuple[str, str]]:
    path, babble_paths, seed = task
    clean, _ = sf.read(path, dtype="float32")
    sources = [sf.read(p, dtype="float32")[0] for p in babble_paths]
    written = []
    for name in ids.CONDITIONS:
        rng = np.random.default_rng([seed, zlib.crc32(f"{Path(path).name}|{name}".encode())])
        out, what = cond.apply_condition(clean, name, rng, babble_sources=sources, rooms=_ROOMS)
        target = Path(path).with_name(f"{Path(path).stem}__{name}.wav")
        sf.write(str(target), out, SAMPLE_RATE, subtype="PCM_16")
        written.append((str(target), what))
    return written


def _add_conditions(
    voices: list[tuple[VoiceSpec, list[Utterance]]],
    size: CorpusSize,
    seed: int,
    jobs: int,
    n_tests: int,
) -> list[tuple[Utterance, str, str]]:
    """Condition copies of each voice's test subset: ``(utterance, condition, description)``."""
    rng = random.Random(seed)
    rooms = room_impulse_responses(size.n_rirs, np.random.default_rng(seed))
    tasks, originals = [], []
    for spec, utts in voices:
        others = [u for s, us in voices if s.speaker != spec.speaker for u in us]
        tests = set(ids.select_condition_tests({u.utt_id: u.speaker for u in utts}, n_tests))
        for u in sorted((u for u in utts if u.utt_id in tests), key=lambda u: u.utt_id):
            n_babble = rng.randint(max(1, size.n_babble - 1), size.n_babble + 2)
            babble = [str(b.path) for b in rng.sample(others, min(n_babble, len(others)))]
            tasks.append((str(u.path), babble, seed))
            originals.append(u)
    with ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=(rooms,)) as pool:
        results = list(pool.map(_condition_task, tasks, chunksize=4))
    copies = []
    for u, written in zip(originals, results, strict=True):
        for name, (path, what) in zip(ids.CONDITIONS, written, strict=True):
            copy = Utterance(ids.condition_utt_id(u.utt_id, name), Path(path), u.speaker)
            copies.append((copy, name, what))
    return copies


def _write_utterances(
    path: Path,
    clean: list[Utterance],
    copies: list[tuple[Utterance, str, str]],
    prosodies: dict[str, Prosody],
    tests: set[str],
) -> None:
    """``utterances.tsv``: per utterance its role, condition, prosody and channel."""
    rows = [(u, ids.CLEAN, "close-talk") for u in clean] + copies
    header = "utt\tspeaker\trole\tcondition\trate\tpitch_st\trange\tgain_db\tchannel\n"
    lines = []
    for u, name, what in sorted(rows, key=lambda r: r[0].utt_id):
        base = ids.split_condition(u.utt_id)[0]
        p = prosodies[base]
        role = "test" if base in tests else "enroll"
        lines.append(
            f"{u.utt_id}\t{u.speaker}\t{role}\t{name}\t{p.rate}\t{p.pitch}\t{p.range}\t"
            f"{p.gain_db}\t{what}\n"
        )
    path.write_text(header + "".join(lines), encoding="utf-8")


def _write_voices(data_dir: Path, specs: Sequence[VoiceSpec]) -> None:
    with open(data_dir / "voices.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=VOICE_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for spec in specs:
            writer.writerow(asdict(spec))


def build_corpus(
    out: str | Path,
    size: str = "demo",
    seed: int = 0,
    jobs: int = 2,
    kokoro: int = 0,
    n_condition_tests: int | None = None,
) -> dict[str, float]:
    """Synthesise the corpus into ``out/eval`` and ``out/pool``; return counts and seconds.

    Args:
        out: output directory (created; existing files are overwritten).
        size: ``demo`` (100 eval voices, 8 utterances each, 3 of them tests; 64 pool voices),
            ``full`` (every installed eval voice, 11 utterances, 6 tests; 64 pool voices) or
            ``tiny`` (8 eval + 4 pool voices, 4 utterances each, 1 test).
        seed: seeds texts, pool voices and the test conditions.
        jobs: worker processes for synthesis and conditions.
        kokoro: number of extra Kokoro-82M pool voices (slow: about 1 s of CPU per second).
        n_condition_tests: condition copies are made of the last this-many clean utterances of
            each eval voice in id order (its test subset; the others stay clean-only, for
            enrollment). Default: the size's (3 of 8 for ``demo``, 6 of 11 for ``full``, 1 of
            4 for ``tiny``); 0 makes no copies; must be below the utterances per voice.

    Example:
        >>> info = build_corpus("/tmp/speakerrpl-doc-corpus", size="tiny")  # doctest: +SKIP
        >>> info["eval_voices"] >= 4  # doctest: +SKIP
        True
    """
    if size not in SIZES:
        raise InvalidInputError(f"size must be one of {sorted(SIZES)}, got {size!r}")
    if jobs < 1:
        raise InvalidInputError(f"jobs must be >= 1, got {jobs}")
    plan, out, start = SIZES[size], Path(out), time.perf_counter()
    n_tests = plan.n_condition_tests if n_condition_tests is None else n_condition_tests
    if not 0 <= n_tests < plan.n_utts:
        raise InvalidInputError(
            f"n_condition_tests must be in [0, {plan.n_utts - 1}] for size {size!r} "
            f"({plan.n_utts} utterances per voice), got {n_tests}"
        )
    eval_specs, pool_specs = _select_eval(plan, seed), pool_voices(plan.n_pool, seed, kokoro)
    prosodies: dict[str, Prosody] = {}
    with ProcessPoolExecutor(jobs) as pool:
        evals = _synthesize_set(eval_specs, out / "eval", plan.n_utts, seed, pool, prosodies)
        pools = _synthesize_set(pool_specs, out / "pool", plan.n_pool_utts, seed, pool, {})
    synth_s = time.perf_counter() - start
    copies = _add_conditions(evals, plan, seed, jobs, n_tests) if n_tests else []
    clean = [u for _, us in evals for u in us]
    write_data_dir(out / "eval", clean + [u for u, _, _ in copies])
    write_data_dir(out / "pool", [u for _, us in pools for u in us])
    _write_voices(out / "eval", [s for s, _ in evals])
    _write_voices(out / "pool", [s for s, _ in pools])
    rows = sorted([(u.utt_id, ids.CLEAN) for u in clean] + [(u.utt_id, c) for u, c, _ in copies])
    (out / "eval" / "utt2cond").write_text("".join(f"{u} {c}\n" for u, c in rows))
    tests = set(ids.select_condition_tests({u.utt_id: u.speaker for u in clean}, n_tests))
    _write_utterances(out / "eval" / "utterances.tsv", clean, copies, prosodies, tests)
    info = {
        "eval_voices": float(len(evals)),
        "pool_voices": float(len(pools)),
        "eval_utterances": float(len(clean)),
        "condition_tests": float(len({ids.split_condition(u.utt_id)[0] for u, _, _ in copies})),
        "condition_copies": float(len(copies)),
        "synthesis_s": synth_s,
        "total_s": time.perf_counter() - start,
    }
    logger.info("corpus built in %.1f s: %s", info["total_s"], info)
    return info
