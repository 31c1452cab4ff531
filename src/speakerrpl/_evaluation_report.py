"""Assembling an evaluation's report: tables from the stored units, figures from split 1."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from speakerrpl import __version__, metrics, plots
from speakerrpl._evaluation_units import EvalInputs, Unit, load_arrays
from speakerrpl.report import METRICS, ROW_TITLES, summarize

logger = logging.getLogger(__name__)

#: The full v2 row that ablations are compared with.
REFERENCE_ROW = "rpl_v2_fusion_sel"
# Rows whose score histograms are drawn (when present).
HISTOGRAM_ROWS = ("cosine", "rpl_v2_fusion_sel")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def write_figures(out: Path, units: Sequence[Unit], conditions: Sequence[str]) -> list[str]:
    """Write DET, OSCR, histogram and projection PNGs; return paths relative to ``out``.

    Ablation variants are left out of the curves (they have their own table).
    """
    fig_dir = out / "figures"
    arrays = {u.name: load_arrays(out, u, 0) for u in units if not u.name.startswith("ablation")}
    rows = [
        (row, data)
        for u in units
        if (data := arrays.get(u.name)) is not None
        for row in u.rows
        if row in ROW_TITLES
    ]
    written: list[Path] = []
    for cond in conditions:
        suffix = "" if len(conditions) == 1 else f"_{_safe(cond)}"
        det: dict[str, Any] = {}
        oscr: dict[str, Any] = {}
        for row, data in rows:
            known, unknown = data[f"{row}|{cond}|known"], data[f"{row}|{cond}|unknown"]
            labels = data[f"{cond}|labels"]
            title = ROW_TITLES[row]
            det[title] = metrics.identification_trials(known, labels, unknown)
            oscr[title] = (known, labels, unknown)
            if row in HISTOGRAM_ROWS:
                written.append(
                    plots.plot_score_histograms(
                        known,
                        labels,
                        unknown,
                        fig_dir / f"scores_{row}{suffix}.png",
                        title=f"{title}, split 1, {cond}",
                    )
                )
        written.append(plots.plot_det(det, fig_dir / f"det{suffix}.png"))
        written.append(plots.plot_oscr(oscr, fig_dir / f"oscr{suffix}.png"))
    proj = arrays.get("rpl_v2")
    if proj is not None and "proj|known" in proj:
        written.append(
            plots.plot_projection(
                proj["proj|known"],
                proj["proj|labels"],
                proj["proj|unknown"],
                fig_dir / "projection_rpl_v2.png",
                centres=proj.get("proj|centre"),
                reciprocal=proj.get("proj|reciprocal"),
                title="SpeakerRPL v2 features, unit-normalised (member 1, split 1, clean), PCA",
            )
        )
    return [str(p.relative_to(out)) for p in written]


def aggregate(
    units: Sequence[Unit], stored: Mapping[tuple[str, int], Any], n_folds: int, cond: str
) -> dict[str, dict[str, Any]]:
    """Per-split metrics of every row under ``cond``, with mean/std over splits and seeds."""
    table: dict[str, dict[str, Any]] = {}
    for unit in units:
        for row in unit.rows:
            entries = [stored[(unit.name, f)]["rows"][row][cond] for f in range(n_folds)]
            per_split = [e["metrics"] for e in entries]
            seed_std = None
            if entries[0].get("seed_metrics"):
                seed_std = [summarize(e["seed_metrics"])["std"] for e in entries]
            fit_s = [stored[(unit.name, f)]["info"].get("fit_seconds", 0.0) for f in range(n_folds)]
            table[row] = {
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
    inputs: EvalInputs, config: Mapping[str, Any], paths: Mapping[str, str | Path], command: str
) -> dict[str, Any]:
    """Everything a result depends on: configuration, versions, inputs and their hashes."""
    folds = inputs.protocol.folds
    return {
        "command": command,
        "package_version": __version__,
        "frontend": inputs.embeddings.frontend,
        "config": dict(config),
        "protocol": {
            "path": str(paths["protocol"]),
            "hash": inputs.hashes["protocol"],
            "n_folds": len(folds),
            "n_targets": [len(f.targets) for f in folds],
            "conditions": list(inputs.conditions),
        },
        "embeddings": {
            "path": str(paths["embeddings"]),
            "n": len(inputs.embeddings),
            "hash": inputs.hashes["embeddings"],
        },
        "pool": {"path": str(paths["pool"]), "n": len(inputs.pool), "hash": inputs.hashes["pool"]},
        "metrics": [m.key for m in METRICS],
        "results": {},
        "ablation": {},
        "ablation_reference": REFERENCE_ROW,
    }
