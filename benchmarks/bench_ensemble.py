"""Ensemble training speed (vectorised vs a loop of single adapters) and recipe accuracy/time.

Part 1 (``speed``): wall time of training M = 1, 5, 10, 30 SpeakerRPL v2 adapters on the K = 20
training set (targets + synthetic unknown classes + anchors, built exactly as ``fit`` builds
it), once as one vectorised :class:`~speakerrpl.nn.ensemble.AdapterEnsemble` and once as a
Python loop of M single :class:`~speakerrpl.nn.adapter.Adapter` trainings, same data and
epochs. A full 75-epoch loop of 30 adapters takes minutes on 2 CPU cores, so each fit runs
``--speed-epochs`` epochs (default 3) and the table also gives seconds per epoch and the
projected time of the published 75 epochs (training time is linear in epochs).

Part 2 (``recipes``): accuracy against time of training recipes, with the evaluation
harness (:func:`speakerrpl.evaluation.run_evaluation`) on the demo corpus's 5-split protocol
(20 targets x 3 enrollment utterances, 20 unknown speakers per split; real CAM++ embeddings of
``data/demo``, built by ``make demo``): the full identifier (30 members, selection, calibration)
with the published recipe (75 epochs x batch 16), the library default and cheaper or narrower
ones, next to the cosine baseline. Each recipe's per-split results are stored under
``--work``, so a re-run only fits what changed.

Usage:
    python benchmarks/bench_ensemble.py [--device cpu|cuda] [--quick] [--parts speed recipes]
        [--speed-epochs 3] [--batch-sizes 16 0] [--conditions clean babble5 noise5]
"""

from __future__ import annotations

import re
import statistics
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import (
    DEMO,
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

from speakerrpl.identifier.settings import PUBLISHED_TRAINING, IdentifierSettings, build_ensemble
from speakerrpl.identifier.training_set import assemble, check_labels
from speakerrpl.nn.adapter import Adapter
from speakerrpl.nn.losses import SpeakerRPLv2Loss
from speakerrpl.nn.train import TrainSettings, train_ensemble, train_single

K = 20
RECIPES: dict[str, dict[str, Any]] = {
    "published 75 ep x b16": dict(PUBLISHED_TRAINING),
    "default 15 ep x b32 (>= 90 steps)": {},
    "8 ep x b32 (>= 48 steps)": {"epochs": 8, "min_steps": 48},
    "15 ep x b64 (>= 45 steps)": {"epochs": 15, "batch_size": 64, "min_steps": 45},
    "default, half width 256-128-128": {"hidden": (256, 128, 128)},
    "15 ep, full batch (15 steps)": {"batch_size": 0, "min_steps": 0},
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


def recipes(args: Any) -> list[dict[str, Any]]:
    """Part 2: fit time and open-set accuracy of each recipe on the demo protocol's splits."""
    from speakerrpl.evaluation.experiments import EvalConfig, run_evaluation

    protocol = DEMO / "protocol_5folds.json"
    if demo_data() is None or not protocol.is_file():
        raise SystemExit("recipes needs the demo corpus embeddings: run `make demo` first")
    names = list(RECIPES)[:2] if args.quick else list(RECIPES)
    conditions = tuple(args.conditions)
    rows = []
    for name in ["cosine baseline", *names]:
        method = "cosine" if name == "cosine baseline" else "rpl_v2"
        params = {"device": args.device, **RECIPES.get(name, {})}
        config = EvalConfig(methods=(method,), conditions=conditions, identifier_params=params)
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        res = run_evaluation(
            DEMO / "eval.npz", DEMO / "pool.npz", protocol, Path(args.work) / slug, config,
            figures=False,
        )  # fmt: skip
        row_name = "cosine" if method == "cosine" else "rpl_v2_fusion_sel"
        fit_s = res["results"][conditions[0]][row_name]["fit_seconds_per_split"]
        row: dict[str, Any] = {"recipe": name, "params": params, "fit_s_all": fit_s}
        row["fit_s"] = statistics.median(fit_s)
        for cond in conditions:
            entry = res["results"][cond][row_name]
            for metric in ("eer", "oscr", "dir_far_1"):
                row[f"{cond}_{metric}"] = entry["mean"][metric]
                row[f"{cond}_{metric}_std"] = entry["std"][metric]
        rows.append(row)
        shown = ["recipe", "fit_s"] + [f"{c}_{m}" for c in conditions for m in ("eer", "oscr")]
        print_table([row], shown)
    return rows


def main() -> int:
    parser = base_parser(__doc__ or "", "results/bench_ensemble.json")
    parser.add_argument("--parts", nargs="*", default=["speed", "recipes"])
    parser.add_argument("--speed-epochs", type=int, default=None)
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=[16, 0], help="0 = full")
    parser.add_argument("--conditions", nargs="*", default=["clean", "babble5", "noise5"])
    parser.add_argument(
        "--work", default="results/recipes", help="recipes: stored per-split results"
    )
    args = parser.parse_args()
    set_threads(args.threads)
    args.runs = args.runs or (1 if args.quick else 3)
    args.speed_epochs = args.speed_epochs or (2 if args.quick else 3)
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
