"""The PNG figures of an evaluation, drawn from the stored score matrices of its units."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from speakerrpl import metrics
from speakerrpl.evaluation import plots
from speakerrpl.evaluation.report import ROW_TITLES
from speakerrpl.evaluation.units import Unit, load_arrays

# Rows whose score histograms are drawn (when present).
HISTOGRAM_ROWS = ("cosine", "rpl_v2_fusion_sel", "default")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def write_figures(
    out: Path, units: Sequence[Unit], conditions: Sequence[str], shown: str
) -> list[str]:
    """Write DET, OSCR, histogram and projection PNGs; return paths relative to ``out``.

    The figures show the protocol's first fold, named ``shown`` in their titles (``"draw 1 of
    split 1"`` when a split averages several draws). Ablation variants are left out of the
    curves (they have their own table).
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
        points: dict[str, tuple[float, float]] = {}
        for row, data in rows:
            known, unknown = data[f"{row}|{cond}|known"], data[f"{row}|{cond}|unknown"]
            labels = data[f"{cond}|labels"]
            title = ROW_TITLES[row]
            det[title] = metrics.identification_trials(known, labels, unknown)
            oscr[title] = (known, labels, unknown)
            if f"{row}|{cond}|accepted_known" in data:  # the deployed decision's rows
                known_ok = data[f"{row}|{cond}|accepted_known"].astype(bool)
                unknown_ok = data[f"{row}|{cond}|accepted_unknown"].astype(bool)
                miss = (known.argmax(axis=1) != labels) | ~known_ok
                points[title] = (float(np.mean(unknown_ok)), float(miss.mean()))
            if row in HISTOGRAM_ROWS:
                written.append(
                    plots.plot_score_histograms(
                        known,
                        labels,
                        unknown,
                        fig_dir / f"scores_{row}{suffix}.png",
                        title=f"{title}, {shown}, {cond}",
                    )
                )
        written.append(plots.plot_det(det, fig_dir / f"det{suffix}.png"))
        written.append(
            plots.plot_oscr(
                oscr, fig_dir / f"oscr{suffix}.png", points, f"Open-set classification, {cond}"
            )
        )
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
                title=f"SpeakerRPL v2 features, unit-normalised (member 1, {shown}, clean), PCA",
            )
        )
    return [str(p.relative_to(out)) for p in written]
