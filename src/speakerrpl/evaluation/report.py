"""Result tables of an evaluation: ``results.json`` and a readable ``results.md``.

The JSON layout (``schema_version`` 1)::

    {"schema_version": 1, "command": str, "package_version": str, "frontend": str,
     "config": {...}, "protocol": {"path", "hash", "n_folds", "draws_per_fold", ...},
     "embeddings": {...}, "metrics": [metric keys], "rows": [row names],
     "results": {condition: {row: {"per_split": [{metric: value}], "mean": {...}, "std": {...},
                                   "seed_std": [{metric: value}] | null,
                                   "per_draw": [{metric: value}] (draws_per_fold > 1)}}},
     "ablation": {condition: {variant: {"mean": {...}, "std": {...}, "delta": {...}}}},
     "figures": [paths relative to the results directory]}

Every metric value is a float fraction (EER 0.05 = 5 %); the markdown shows percentages. A
split of a protocol with several draws per fold (households) holds the mean over its draws.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speakerrpl.nn.methods import METHODS

__all__ = [
    "DEFAULT_FAR",
    "METRICS",
    "ROW_TITLES",
    "MetricSpec",
    "average_draws",
    "dir_key",
    "figures_shown",
    "metric_specs",
    "publish_markdown",
    "render_markdown",
    "render_summary",
    "summarize",
    "write_report",
]

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class MetricSpec:
    """How one metric is named, compared and shown."""

    key: str
    title: str
    higher_is_better: bool
    percent: bool


DEFAULT_FAR = 0.01
"""False-alarm rate of DIR@FAR unless the evaluation sets another (``EvalConfig.far``)."""


def dir_key(far: float) -> str:
    """Metric key of DIR at false-alarm rate ``far``, in percent.

    Example:
        >>> dir_key(0.01), dir_key(0.05), dir_key(0.001)
        ('dir_far_1', 'dir_far_5', 'dir_far_0.1')
    """
    return f"dir_far_{100 * far:g}"


def metric_specs(far: float = DEFAULT_FAR) -> tuple[MetricSpec, ...]:
    """The table metrics, DIR@FAR at ``far``, in column order."""
    return (
        MetricSpec("acc", "ACC %", True, True),
        MetricSpec("eer", "EER %", False, True),
        MetricSpec("min_dcf_0.01", "minDCF 0.01", False, False),
        MetricSpec("min_dcf_0.05", "minDCF 0.05", False, False),
        MetricSpec("min_dcf_0.1", "minDCF 0.1", False, False),
        MetricSpec("oscr", "OSCR %", True, True),
        MetricSpec("auroc", "AUROC %", True, True),
        MetricSpec(dir_key(far), f"DIR@FAR{100 * far:g}% %", True, True),
        MetricSpec("fa", "FA % (deployed)", False, True),
        MetricSpec("fr", "FR % (deployed)", False, True),
        MetricSpec("fa_gap", "FA − asked (pp)", False, True),
    )


METRICS: tuple[MetricSpec, ...] = metric_specs()
"""The table metrics at the default DIR@FAR false-alarm rate."""


def _dir_title(results: Mapping[str, Any]) -> str:
    spec = next(m for m in _specs(results) if m.key.startswith("dir_far"))
    return spec.title.removesuffix(" %")


def _specs(results: Mapping[str, Any]) -> tuple[MetricSpec, ...]:
    """The metrics of a results dictionary: DIR@FAR at its configured rate."""
    return metric_specs(float(results.get("config", {}).get("far", DEFAULT_FAR)))


def _row_titles() -> dict[str, str]:
    out = {"default": "Default (OpenSetSpeakerIdentifier())"}
    for name, m in METHODS.items():
        if not m.trains:
            out[name] = f"{m.title}, raw embeddings"
            out[f"{name}_asnorm"] = f"{m.title} + AS-norm"
            out[f"{name}_wccn"] = f"{m.title}, channel-compensated"
            continue
        out[name] = m.title
        out[f"{name}_single"] = f"{m.title}, single adapter"
        out[f"{name}_fusion_all"] = f"{m.title}, fusion of all M"
        if m.has_points:
            out[f"{name}_fusion_sel"] = f"{m.title}, fusion + selection"
    return out


ROW_TITLES: dict[str, str] = _row_titles()
"""Table titles of every row name an evaluation produces."""


def average_draws(
    per_draw: Sequence[Mapping[str, float]], draws_per_fold: int
) -> list[dict[str, float]]:
    """Each metric averaged over consecutive groups of ``draws_per_fold`` draws: one per split.

    Example:
        >>> average_draws([{"eer": 0.1}, {"eer": 0.3}, {"eer": 0.0}, {"eer": 0.2}], 2)
        [{'eer': 0.2}, {'eer': 0.1}]
    """
    groups = [per_draw[i : i + draws_per_fold] for i in range(0, len(per_draw), draws_per_fold)]
    return [{k: float(np.mean([float(d[k]) for d in g])) for k in g[0]} for g in groups]


def figures_shown(draws_per_fold: int) -> str:
    """What the figures show: the protocol's first fold, i.e. split 1 or its first draw.

    Example:
        >>> figures_shown(1), figures_shown(10)
        ('split 1', 'draw 1 of split 1')
    """
    return "split 1" if draws_per_fold == 1 else "draw 1 of split 1"


def summarize(per_split: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and (population) standard deviation of each metric over splits.

    Example:
        >>> summarize([{"eer": 0.1}, {"eer": 0.3}])["mean"]["eer"]
        0.2
    """
    keys = list(per_split[0]) if per_split else []
    values = {k: np.array([float(s[k]) for s in per_split]) for k in keys}
    return {
        "mean": {k: float(v.mean()) for k, v in values.items()},
        "std": {k: float(v.std()) for k, v in values.items()},
    }


def _fmt(spec: MetricSpec, mean: float, std: float | None) -> str:
    if math.isnan(mean):
        return "n/a"
    scale, digits = (100.0, 2) if spec.percent else (1.0, 3)
    text = f"{scale * mean:.{digits}f}"
    return text if std is None else f"{text} ± {scale * std:.{digits}f}"


def _best_rows(rows: Mapping[str, Mapping[str, Any]], spec: MetricSpec) -> set[str]:
    vals = {r: v["mean"][spec.key] for r, v in rows.items() if not math.isnan(v["mean"][spec.key])}
    if not vals:
        return set()
    best = max(vals.values()) if spec.higher_is_better else min(vals.values())
    return {r for r, v in vals.items() if abs(v - best) <= 1e-12}


def _main_table(
    rows: Mapping[str, Mapping[str, Any]], specs: Sequence[MetricSpec] = METRICS
) -> list[str]:
    timed = all("fit_seconds" in r for r in rows.values())
    extra = " fit s |" if timed else ""
    header = "| Method | " + " | ".join(s.title for s in specs) + " |" + extra
    lines = [header, "|---" * (len(specs) + 1 + timed) + "|"]
    best = {s.key: _best_rows(rows, s) for s in specs}
    for row, res in rows.items():
        cells = []
        for s in specs:
            cell = _fmt(s, res["mean"][s.key], res["std"][s.key])
            cells.append(f"**{cell}**" if row in best[s.key] else cell)
        if timed:
            cells.append(f"{res['fit_seconds']:.1f}")
        lines.append(f"| {ROW_TITLES.get(row, row)} | " + " | ".join(cells) + " |")
    return lines


def _seed_table(
    rows: Mapping[str, Mapping[str, Any]], specs: Sequence[MetricSpec] = METRICS
) -> list[str]:
    seeded = {r: v for r, v in rows.items() if v.get("seed_std")}
    if not seeded:
        return []
    lines = [
        "",
        "Spread over seeds (single adapters): std over seeds within a split, averaged over splits.",
        "",
        "| Method | " + " | ".join(s.title for s in specs) + " |",
        "|---" * (len(specs) + 1) + "|",
    ]
    for row, res in seeded.items():
        mean_std = summarize(res["seed_std"])["mean"]
        cells = [_fmt(s, mean_std[s.key], None) for s in specs]
        lines.append(f"| {ROW_TITLES.get(row, row)} | " + " | ".join(cells) + " |")
    return lines


def _ablation_table(
    variants: Mapping[str, Mapping[str, Any]],
    reference: str,
    specs: Sequence[MetricSpec],
    reference_row: Mapping[str, Any] | None = None,
) -> list[str]:
    """Each variant as ``delta (mean ± std)``: its difference to full v2, then its own values.

    The delta is the difference of the means over splits; the std (over splits) of the
    variant says how much of that difference split noise alone can explain.
    """
    lines = [
        "",
        f"Ablations: each value is the variant minus full v2 ({ROW_TITLES.get(reference)}), "
        "mean over splits; the variant's own mean ± std over splits follows in brackets.",
        "",
        "| Variant | " + " | ".join(s.title for s in specs) + " |",
        "|---" * (len(specs) + 1) + "|",
    ]
    rows = dict(variants)
    if reference_row is not None:
        rows = {"full v2 (reference)": {**reference_row, "delta": None}, **rows}
    for name, res in rows.items():
        cells = []
        for s in specs:
            scale, digits = (100.0, 2) if s.percent else (1.0, 3)
            own, std = res["mean"][s.key], res["std"][s.key]
            delta = 0.0 if res["delta"] is None else res["delta"][s.key]
            if math.isnan(own):
                cells.append("n/a")
                continue
            cells.append(
                f"{scale * delta:+.{digits}f} ({scale * own:.{digits}f} ± {scale * std:.{digits}f})"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _robustness_table(results: Mapping[str, Any], key: str = "eer") -> list[str]:
    """Rows = methods, columns = test conditions, one metric (mean over splits)."""
    conds = list(results["results"])
    spec = next(m for m in METRICS if m.key == key)
    rows = list(results["results"][conds[0]])
    lines = [
        f"{spec.title} by test condition (mean over splits; bold = best per condition):",
        "",
        "| Method | " + " | ".join(conds) + " |",
        "|---" * (len(conds) + 1) + "|",
    ]
    best = {c: _best_rows(results["results"][c], spec) for c in conds}
    for row in rows:
        cells = []
        for c in conds:
            cell = _fmt(spec, results["results"][c][row]["mean"][key], None)
            cells.append(f"**{cell}**" if row in best[c] else cell)
        lines.append(f"| {ROW_TITLES.get(row, row)} | " + " | ".join(cells) + " |")
    return lines


def _draws_note(proto: Mapping[str, Any]) -> str:
    draws = proto.get("draws_per_fold", 1)
    return "" if draws == 1 else f" of {draws} draws each (a split's metrics: the mean over them)"


def _cohort_line(cohort: Mapping[str, Any] | None) -> str:
    if not cohort:
        return "- AS-norm cohort: the pool's voices"
    return (
        f"- AS-norm cohort: `{cohort['path']}`, {cohort['voices']} voices none of the "
        f"protocol's (hash `{cohort['hash']}`)"
    )


def _header(results: Mapping[str, Any]) -> list[str]:
    proto = results.get("protocol", {})
    return [
        f"- command: `{results.get('command', '')}`",
        f"- speakerrpl {results.get('package_version', '?')}, "
        f"frontend `{results.get('frontend', '?')}`",
        f"- protocol `{proto.get('path', '')}` (hash `{proto.get('hash', '')}`), "
        f"{proto.get('n_folds', '?')} splits{_draws_note(proto)}; mean ± std over splits",
        f"- configuration: `{json.dumps(results.get('config', {}), sort_keys=True)}`",
        _cohort_line(results.get("cohort")),
        "- EER and minDCF over identification trials (every test utterance x enrolled "
        "target; unknown speakers give non-target trials only); ACC closed-set on targets; "
        f"OSCR/AUROC/{_dir_title(results)} targets vs unknown "
        "speakers. FA / FR (deployed): with the decision the identifier deploys (calibrated to "
        "the configured rate; per clip where it is quality-aware), strangers accepted and "
        "targets missed or misnamed; FA − asked: "
        "FA minus that rate (n/a for rows that deploy no threshold of their own). "
        "Bold: best per column. "
        "fit s: wall-clock seconds of the fit the row comes from, mean over splits.",
    ]


def render_summary(results: Mapping[str, Any]) -> str:
    """A short terminal summary: the first condition's table and EER by condition.

    Example:
        >>> m = {k.key: 0.5 for k in METRICS}
        >>> res = {"results": {"clean": {"cosine": {"mean": m, "std": m, "per_split": [m]}}}}
        >>> "Cosine" in render_summary(res)
        True
    """
    first = next(iter(results["results"]))
    lines = [f"Condition {first} (mean ± std over splits):", ""]
    lines += _main_table(results["results"][first], _specs(results))
    if len(results["results"]) > 1:
        lines += ["", *_robustness_table(results)]
    return "\n".join(lines) + "\n"


def render_markdown(results: Mapping[str, Any], figure_prefix: str = "") -> str:
    """Render a results dictionary (the ``results.json`` layout) as markdown tables.

    Best value per column is bold; values are mean ± std over splits.

    Args:
        results: the ``results.json`` content.
        figure_prefix: prepended to the figure paths in the links.

    Example:
        >>> m = {k.key: 0.5 for k in METRICS}
        >>> res = {"results": {"clean": {"cosine": {"mean": m, "std": m, "per_split": [m]}}},
        ...        "protocol": {"hash": "abc", "n_folds": 1}, "config": {}}
        >>> "**50.00 ± 50.00**" in render_markdown(res)
        True
    """
    lines = ["# Evaluation results", "", *_header(results)]
    if len(results["results"]) > 1:
        lines += ["", "## Robustness", "", *_robustness_table(results)]
    for cond, rows in results["results"].items():
        lines += ["", f"## Condition: {cond}", ""]
        lines += _main_table(rows, _specs(results))
        lines += _seed_table(rows, _specs(results))
        ablation = results.get("ablation", {}).get(cond)
        if ablation:
            reference = results.get("ablation_reference", "")
            lines += _ablation_table(ablation, reference, _specs(results), rows.get(reference))
    figures = results.get("figures", [])
    if figures:
        shown = figures_shown(results.get("protocol", {}).get("draws_per_fold", 1))
        lines += ["", f"## Figures ({shown})", ""]
        lines += [f"![{Path(f).stem}]({figure_prefix}{f})" for f in figures]
    return "\n".join(lines) + "\n"


def publish_markdown(results_dir: str | Path, path: str | Path) -> Path:
    """Write the report of ``results_dir`` to ``path``, figures copied into ``figures/`` beside it.

    Used to regenerate ``docs/results.md`` from an evaluation (never hand-edited).

    Example:
        >>> import tempfile, os
        >>> m = {k.key: 0.5 for k in METRICS}
        >>> d = tempfile.mkdtemp()
        >>> _ = write_report({"results": {"clean": {"cosine": {"mean": m, "std": m}}}}, d)
        >>> publish_markdown(d, os.path.join(d, "docs", "results.md")).name
        'results.md'
    """
    src, dest = Path(results_dir), Path(path)
    results = json.loads((src / "results.json").read_text())
    dest.parent.mkdir(parents=True, exist_ok=True)
    for rel in results.get("figures", []):
        target = dest.parent / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / rel, target)
    text = render_markdown(results)
    note = "<!-- generated by `speakerrpl evaluate --markdown` (make demo); do not edit -->\n"
    dest.write_text(note + text)
    return dest


def write_report(results: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` into ``out_dir``; return both paths.

    Example:
        >>> import tempfile
        >>> m = {k.key: 0.5 for k in METRICS}
        >>> res = {"results": {"clean": {"cosine": {"mean": m, "std": m, "per_split": [m]}}}}
        >>> j, md = write_report(res, tempfile.mkdtemp())
        >>> j.name, md.name
        ('results.json', 'results.md')
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "results.json", out / "results.md"
    payload = {"schema_version": SCHEMA_VERSION, **results}
    json_path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    md_path.write_text(render_markdown(results))
    return json_path, md_path
