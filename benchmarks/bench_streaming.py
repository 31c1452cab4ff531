"""Streaming identification: how early a decision comes, and how often it matches the whole clip.

Not a test. On the demo corpus (``data/demo``, built by ``make demo``): a SpeakerRPL v2
identifier (library defaults, 30 members) is fitted on fold ``--fold``'s enrollment embeddings
with the demo pool; test clips (known targets and unknown voices, clean and ``--noisy``) are
replayed through :class:`speakerrpl.streaming.StreamingIdentifier` (Silero VAD, CAM++, one
thread) in 100 ms chunks, and compared with the whole-clip decision (CAM++ on the whole clip).

Figures per condition: clips with no decision (under ``--min-speech`` of speech), the stream
position of the first decision and its *decision latency* (position + compute time, i.e. when a
real-time stream would have its answer), agreement of the first and final streaming decisions
with the whole-clip decision, and open-set accuracy (right name, or ``<unknown>`` for a stranger)
of all three.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_streaming.py --clips 40

Writes ``results/bench_streaming.json``.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np
from _common import DEMO, base_parser, machine_info, print_table, set_threads, write_json

from speakerrpl.audio import load_audio
from speakerrpl.data.condition_ids import condition_utt_id
from speakerrpl.data.kaldi import read_data_dir
from speakerrpl.decisions import UNKNOWN, decision_of, identify_embeddings
from speakerrpl.embeddings import EmbeddingSet
from speakerrpl.frontends import get_frontend
from speakerrpl.identifier import OpenSetSpeakerIdentifier
from speakerrpl.streaming import StreamingIdentifier
from speakerrpl.vad import SileroVAD

CHUNK = 1600  # 100 ms


def fitted(fold: dict[str, Any], data: Path) -> OpenSetSpeakerIdentifier:
    """The default identifier on the fold's enrollment embeddings and the demo pool."""
    ev, pool = EmbeddingSet.load(data / "eval.npz"), EmbeddingSet.load(data / "pool.npz")
    index = {u: i for i, u in enumerate(ev.utt_ids)}
    rows = [(index[u], spk) for spk, utts in fold["enroll"].items() for u in utts]
    x = ev.embeddings[[i for i, _ in rows]]
    y = [spk for _, spk in rows]
    return OpenSetSpeakerIdentifier(random_state=0).fit(x, y, pool=(pool.embeddings, pool.speakers))


def test_clips(fold: dict[str, Any], data: Path, condition: str, n: int) -> list[tuple]:
    """``n`` clips (half known, half unknown): (path, true label)."""
    utts = {u.utt_id: u for u in read_data_dir(data / "corpus" / "eval")}
    chosen = [(u, utts[u].speaker) for u in fold["test_known"][: n // 2]]
    chosen += [(u, UNKNOWN) for u in fold["test_unknown"][: n - n // 2]]
    out = []
    for utt, truth in chosen:
        cid = condition_utt_id(utt, condition)
        if cid in utts:
            out.append((utts[cid].path, truth))
    return out


def one_clip(ident: Any, frontend: Any, sid: StreamingIdentifier, path: Path) -> dict[str, Any]:
    wave = load_audio(path, min_duration=0)
    whole = decision_of(identify_embeddings(ident, frontend.embed([wave]))[0]).speaker
    sid.reset()
    for i in range(0, wave.size, CHUNK):
        sid.feed(wave[i : i + CHUNK])
    sid.finish()
    row: dict[str, Any] = {"seconds": wave.size / 16000, "whole": whole, "first": None}
    if sid.decisions:
        first, last = sid.decisions[0], sid.decisions[-1]
        row.update(first=first.speaker, final=last.speaker, first_at=first.stream_seconds,
                   first_compute=first.compute_seconds, n_decisions=len(sid.decisions))  # fmt: skip
    return row


def summarise(condition: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    decided = [r for r in rows if r["first"] is not None]
    lat = [r["first_at"] + r["first_compute"] for r in decided]

    def pct(xs: list[bool]) -> float:
        return round(100.0 * sum(xs) / max(len(xs), 1), 1)

    return {
        "condition": condition,
        "clips": len(rows),
        "median_clip_s": round(statistics.median(r["seconds"] for r in rows), 2),
        "no_decision": len(rows) - len(decided),
        "first_at_median_s": round(statistics.median(r["first_at"] for r in decided), 3),
        "latency_median_s": round(statistics.median(lat), 3),
        "latency_p90_s": round(float(np.percentile(lat, 90)), 3),
        "compute_median_s": round(statistics.median(r["first_compute"] for r in decided), 3),
        "first_agrees_%": pct([r["first"] == r["whole"] for r in decided]),
        "final_agrees_%": pct([r["final"] == r["whole"] for r in decided]),
        "acc_whole_%": pct([r["whole"] == r["truth"] for r in decided]),
        "acc_first_%": pct([r["first"] == r["truth"] for r in decided]),
        "acc_final_%": pct([r["final"] == r["truth"] for r in decided]),
    }


def main() -> None:
    parser = base_parser(__doc__ or "", "results/bench_streaming.json")
    parser.add_argument("--data", default=str(DEMO), help="demo folder (eval.npz, pool.npz, ...)")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--clips", type=int, default=40, help="test clips per condition")
    parser.add_argument("--noisy", default="babble10", help="noisy test condition")
    parser.add_argument("--min-speech", type=float, default=1.5)
    args = parser.parse_args()
    set_threads(args.threads)
    data = Path(args.data)
    protocol = json.loads((data / "protocol_3folds.json").read_text())
    fold = protocol["folds"][args.fold]
    ident = fitted(fold, data)
    frontend = get_frontend("campplus", num_threads=args.threads)
    sid = StreamingIdentifier(ident, frontend, vad=SileroVAD(), min_speech=args.min_speech)
    summaries, raw = [], {}
    for condition in ("clean", args.noisy):
        rows = []
        for path, truth in test_clips(fold, data, condition, args.clips):
            rows.append({**one_clip(ident, frontend, sid, path), "truth": truth, "file": str(path)})
        raw[condition] = rows
        summaries.append(summarise(condition, rows))
    write_json(args.out, {"machine": machine_info(), "min_speech_s": args.min_speech,
                          "chunk_s": CHUNK / 16000, "fold": args.fold, "results": summaries,
                          "clips": raw})  # fmt: skip
    print_table(summaries, list(summaries[0]))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
