"""Assembling an evaluation's tables from its stored units (mean and std over splits)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from speakerrpl import __version__
from speakerrpl.data.protocols import draws_per_fold
from speakerrpl.evaluation.report import DEFAULT_FAR, average_draws, metric_specs, summarize
from speakerrpl.evaluation.units import EvalInputs, Unit

logger = logging.getLogger(__name__)

#: The full v2 row that ablations are compared with.
REFERENCE_ROW = "rpl_v2_fusion_sel"


def aggregate(
    units: Sequence[Unit],
    stored: Mapping[tuple[str, int], Any],
    n_folds: int,
    cond: str,
    draws: int = 1,
) -> dict[str, dict[str, Any]]:
    """Per-split metrics of every row under ``cond``, with mean/std over splits and seeds.

    ``n_folds`` draws were fitted; each split averages ``draws`` consecutive ones (a protocol's
    ``draws_per_fold``), and ``per_draw`` keeps the draws' own metrics when ``draws`` > 1.
    """
    table: dict[str, dict[str, Any]] = {}
    for unit in units:
        for row in unit.rows:
            entries = [stored[(unit.name, f)]["rows"][row][cond] for f in range(n_folds)]
            per_draw = [e["metrics"] for e in entries]
            per_split = average_draws(per_draw, draws)
            seed_std = None
            if entries[0].get("seed_metrics"):
                seed_std = average_draws(
                    [summarize(e["seed_metrics"])["std"] for e in entries], draws
                )
            fit_s = [stored[(unit.name, f)]["info"].get("fit_seconds", 0.0) for f in range(n_folds)]
            table[row] = {
                **({"per_draw": per_draw} if draws > 1 else {}),
                "per_split": per_split,
                **summarize(per_split),
                "seed_std": seed_std,
                "fit_seconds": sum(fit_s) / n_folds,  # of the whole fit the row comes from
                "fit_seconds_per_split": fit_s,
            }
    return table


def split_ablation(
    table: dict[str, dict[str, Any]], names: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Move the ablation rows out of ``table``; add each one's difference to full v2."""
    ref = table[REFERENCE_ROW]["mean"]
    out = {}
    for name in names:
        if name in table:
            res = table.pop(name)
            res["delta"] = {k: v - ref[k] for k, v in res["mean"].items()}
            out[name] = res
    return out


def describe(
    inputs: EvalInputs, config: Mapping[str, Any], paths: Mapping[str, Any], command: str
) -> dict[str, Any]:
    """Everything a result depends on: configuration, versions, inputs and their hashes."""
    folds, draws = inputs.protocol.folds, draws_per_fold(inputs.protocol)
    return {
        "command": command,
        "package_version": __version__,
        "frontend": inputs.embeddings.frontend,
        "config": dict(config),
        "protocol": {
            "path": str(paths["protocol"]),
            "hash": inputs.hashes["protocol"],
            "n_folds": len(folds) // draws,
            "draws_per_fold": draws,
            "n_targets": [len(f.targets) for f in folds],
            "conditions": list(inputs.conditions),
        },
        "embeddings": {
            "path": str(paths["embeddings"]),
            "n": len(inputs.embeddings),
            "hash": inputs.hashes["embeddings"],
        },
        "pool": {"path": str(paths["pool"]), "n": len(inputs.pool), "hash": inputs.hashes["pool"]},
        "cohort": None
        if inputs.cohort is None
        else {
            "path": str(paths["cohort"]),
            "voices": len(set(inputs.cohort.speakers.tolist())),
            "hash": inputs.hashes["cohort"],
        },
        "metrics": [m.key for m in metric_specs(config.get("far", DEFAULT_FAR))],
        "results": {},
        "ablation": {},
        "ablation_reference": REFERENCE_ROW,
    }
