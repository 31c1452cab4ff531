"""Ensemble training speed (vectorised vs a loop of single adapters) and recipe accuracy/time.

Part 1 (``speed``): wall time of training M = 1, 5, 10, 30 SpeakerRPL v2 adapters on the K = 20
training set (targets + synthetic unknown classes + anchors, built exactly as ``fit`` builds
it), once as one vectorised :class:`~speakerrpl.nn.ensemble.AdapterEnsemble` and once as a
Python loop of M single :class:`~speakerrpl.nn.adapter.Adapter` trainings, same data and
epochs. A full 75-epoch loop of 30 adapters takes minutes on 2 CPU cores, so each fit runs
``--speed-epochs`` epochs (default 3) and the table also gives seconds per epoch and the
projected time of the published 75 epochs (training time is linear in epochs).

Part 2 (``recipes``): the full identifier (30 members, selection, calibration) fitted with the
published recipe (75 epochs x batch 16) and cheaper ones; fit time next to OSCR, AUROC and
open-set EER on held-out utterances of the demo's real CAM++ embeddings (Gaussian voices
when ``data/demo`` has none), over ``--splits`` random K = 20 target splits, with a cosine
baseline row. The demo's synthetic voices are separated perfectly by every recipe; ``--noise
1.5`` adds isotropic noise to the L2-normalised embeddings to make the task hard enough to
rank recipes (the cosine baseline then reaches OSCR about 0.87).

Usage:
    python benchmarks/bench_ensemble.py [--device cpu|cuda] [--quick] [--parts speed recipes]
        [--speed-epochs 3] [--batch-sizes 16 0] [--splits 2] [--noise 1.5]
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np
import torch
from _common import (
    Voices,
    base_parser,
    demo_data,
    gaussian_voices,
    machine_info,
    print_table,
    set_threads,
    split_targets,
    time_runs,
    write_json,
)

from speakerrpl import metrics
from speakerrpl.identifier import OpenSetSpeakerIdentifier, build_ensemble
from speakerrpl.identifier_settings import IdentifierSettings
from speakerrpl.nn.adapter import Adapter
from speakerrpl.nn.losses import SpeakerRPLv2Loss
from speakerrpl.nn.train import TrainSettings, train_ensemble, train_single
from speakerrpl.training_set import assemble, check_labels

K = 20
RECIPES: dict[str, dict[str, Any]] = {
    "published 75 ep x b16": {"epochs": 75, "batch_size": 16},
    "25 ep x b16": {"epochs": 25, "batch_size": 16},
    "25 ep x b64": {"epochs": 25, "batch_size": 64},
    "10 ep x b16": {"epochs": 10, "batch_size": 16},
}


def load_voices(seed: int) -> tuple[Voices, Voices, str]:
    """(all eval voices, pool voices, source name)."""
    demo = demo_data()
    if demo is not None:
        return demo[0], demo[1], "demo CAM++ embeddings"
    return (
        gaussian_voices(60, (6, 12), 192, seed, "spk"),
        gaussian_voices(150, (6, 6), 192, seed + 1, "pool"),
        "Gaussian voices",
    )


def _l2(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def training_set(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, int]:
    """The K = 20 v2 training set as ``fit`` assembles it: (x, y, x_unknown, n_classes)."""
    voices, pool, _ = load_voices(seed)
    enroll, _, _ = split_targets(voices, K, 4, seed)
    s = IdentifierSettings()
    classes, labels = check_labels(enroll.y.tolist(), enroll.x.shape[0], s)
    ts = assemble(_l2(enroll.x), labels, classes, (_l2(pool.x), pool.y), s)
    xu = None if ts.x_unknown is None else torch.as_tensor(ts.x_unknown)
    return torch.as_tensor(ts.x), torch.as_tensor(ts.y), xu, len(ts.class_names)


def _fit_vectorised(m: int, data: tuple[Any, ...], ts: TrainSettings, device: str) -> None:
    x, y, _, n_classes = data
    ens, orders = build_ensemble(IdentifierSettings(n_models=m), x.shape[1], n_classes)
    train_ensemble(ens.to(device), x.to(device), y.to(device), orders, ts)


def _fit_loop(m: int, data: tuple[Any, ...], ts: TrainSettings, device: str) -> None:
    x, y, _, n_classes = data
    xd, yd = x.to(device), y.to(device)
    for member in range(m):
        g = torch.Generator().manual_seed(member)
        net = Adapter(x.shape[1], 192, generator=g).to(device)
        loss = SpeakerRPLv2Loss(n_classes, 192, generator=g).to(device)
        train_single(net, loss, xd, yd, g, ts)


def speed(args: Any) -> list[dict[str, Any]]:
    """Part 1: vectorised vs loop wall time for each M and batch size."""
    data = training_set(0)
    sizes = [1, 5] if args.quick else [1, 5, 10, 30]
    rows = []
    for batch in args.batch_sizes:
        ts = TrainSettings(epochs=args.speed_epochs, batch_size=batch)
        for m in sizes:
            for kind, fn in (("vectorised", _fit_vectorised), ("loop", _fit_loop)):
                if kind == "loop" and m == 1:
                    continue  # the same single training as vectorised M = 1
                t = time_runs(partial(fn, m, data, ts, args.device), args.runs, 0)
                per_epoch = t["median_s"] / args.speed_epochs
                rows.append(
                    {
                        "batch": batch or "full",
                        "M": m,
                        "kind": kind,
                        "epochs": args.speed_epochs,
                        "median_s": t["median_s"],
                        "s_per_epoch": per_epoch,
                        "projected_75ep_s": 75 * per_epoch,
                        "n_train": int(data[0].shape[0]),
                        "n_classes": data[3],
                    }
                )
                print_table(rows[-1:], list(rows[-1]))
    return rows


def _evaluate(clf: OpenSetSpeakerIdentifier, known: Voices, unknown: Voices) -> dict[str, float]:
    ks, us = clf.decision_function(known.x), clf.decision_function(unknown.x)
    labels = np.array([clf.classes_.index(n) for n in known.y])
    kmax, umax = ks.max(axis=1), us.max(axis=1)
    return {
        "oscr": metrics.oscr(ks, labels, us),
        "auroc": metrics.auroc(kmax, umax),
        "eer_open": metrics.eer(np.r_[kmax, umax], np.r_[np.ones_like(kmax), np.zeros_like(umax)]),
        "accuracy": metrics.accuracy(ks, labels),
    }


def add_noise(voices: Voices, sigma: float, seed: int) -> Voices:
    """L2-normalise and add isotropic noise of norm about ``sigma`` (a harder task)."""
    rng = np.random.default_rng(seed)
    x = _l2(voices.x)
    noise = sigma * rng.normal(size=x.shape) / np.sqrt(x.shape[1])
    return Voices((x + noise).astype(np.float32), voices.y)


def recipes(args: Any) -> list[dict[str, Any]]:
    """Part 2: fit time and open-set accuracy of each recipe over ``--splits`` splits."""
    voices, pool, source = load_voices(0)
    if args.noise:
        voices, pool = add_noise(voices, args.noise, 1), add_noise(pool, args.noise, 2)
        source += f" + noise {args.noise}"
    names = list(RECIPES)[:2] if args.quick else ["cosine baseline", *RECIPES]
    members = 5 if args.quick else 30
    base = IdentifierSettings(n_models=members, selection_r=members // 3, device=args.device)
    rows = []
    for name in names:
        per_split = []
        for split in range(args.splits):
            enroll, known, unknown = split_targets(voices, K, 4, 100 + split)
            recipe = RECIPES.get(name, {"method": "cosine"})
            clf = OpenSetSpeakerIdentifier(replace(base, random_state=split, **recipe))
            start = time.perf_counter()
            clf.fit(enroll.x, enroll.y.tolist(), pool=(pool.x, pool.y))
            per_split.append(
                {"fit_s": time.perf_counter() - start} | _evaluate(clf, known, unknown)
            )
        row: dict[str, Any] = {"recipe": name, "members": base.n_models, "data": source}
        for key in per_split[0]:
            values = [p[key] for p in per_split]
            row[key] = statistics.median(values)
            row[f"{key}_all"] = values
        rows.append(row)
        print_table([row], ["recipe", "fit_s", "oscr", "auroc", "eer_open", "accuracy"])
    return rows


def main() -> int:
    parser = base_parser(__doc__ or "", "results/bench_ensemble.json")
    parser.add_argument("--parts", nargs="*", default=["speed", "recipes"])
    parser.add_argument("--speed-epochs", type=int, default=None)
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=[16, 0], help="0 = full")
    parser.add_argument("--splits", type=int, default=None)
    parser.add_argument("--noise", type=float, default=0.0, help="recipes: embedding noise")
    args = parser.parse_args()
    set_threads(args.threads)
    args.runs = args.runs or (1 if args.quick else 3)
    args.speed_epochs = args.speed_epochs or (2 if args.quick else 3)
    args.splits = args.splits or (1 if args.quick else 2)
    torch.manual_seed(0)
    result: dict[str, Any] = {"machine": machine_info(args.device), "args": vars(args)}
    if "speed" in args.parts:
        result["speed"] = speed(args)
    if "recipes" in args.parts:
        result["recipes"] = recipes(args)
    result["machine"]["loadavg_1m_end"] = machine_info()["loadavg_1m"]
    print(f"wrote {write_json(args.out, result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
