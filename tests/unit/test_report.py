"""Result tables: best-per-column marking, formatting, summaries, robustness and ablations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from speakerrpl.evaluation.report import (
    METRICS,
    metric_specs,
    publish_markdown,
    render_markdown,
    render_summary,
    summarize,
    write_report,
)


def _metrics(**values: float) -> dict[str, float]:
    out = {m.key: 0.5 for m in METRICS}
    out.update(values)
    return out


def _row(**values: float) -> dict[str, object]:
    m = _metrics(**values)
    return {"per_split": [m], "mean": m, "std": {k: 0.0 for k in m}, "seed_std": None}


@pytest.fixture
def results() -> dict[str, object]:
    clean = {
        "cosine": _row(acc=0.9, eer=0.10),
        "rpl_v2_fusion_sel": _row(acc=0.8, eer=0.05, **{"min_dcf_0.01": 0.25}),
    }
    noisy = {"cosine": _row(eer=0.20), "rpl_v2_fusion_sel": _row(eer=0.30)}
    return {
        "command": "speakerrpl evaluate ...",
        "protocol": {"hash": "abc", "n_folds": 1, "path": "p.json"},
        "config": {"n_models": 30},
        "results": {"clean": clean, "noise5": noisy},
        "ablation": {
            "clean": {
                "v2 without LogitNorm": {
                    **_row(eer=0.07),
                    "std": {**_metrics(), "eer": 0.015},
                    "delta": _metrics(eer=0.02),
                }
            }
        },
        "ablation_reference": "rpl_v2_fusion_sel",
    }


def _table_line(text: str, title: str, section: str = "## Condition: clean") -> str:
    part = text[text.index(section) :]
    return next(line for line in part.splitlines() if line.startswith(f"| {title} |"))


def test_best_value_per_column_is_bold_in_the_right_direction(results):
    md = render_markdown(results)
    cosine = _table_line(md, "Cosine (enrollment centroids), raw embeddings").split(" | ")
    v2 = _table_line(md, "SpeakerRPL v2, fusion + selection").split(" | ")
    # columns: name, ACC, EER, minDCF 0.01, ...
    assert cosine[1] == "**90.00 ± 0.00**" and v2[1] == "80.00 ± 0.00"  # higher ACC wins
    assert cosine[2] == "10.00 ± 0.00" and v2[2] == "**5.00 ± 0.00**"  # lower EER wins
    assert v2[3] == "**0.250 ± 0.000**" and cosine[3] == "0.500 ± 0.000"  # minDCF raw, lower
    assert cosine[6].startswith("**")  # a tie marks both
    assert v2[6].startswith("**")


def test_robustness_and_ablation_tables(results):
    md = render_markdown(results)
    robust = md[md.index("## Robustness") : md.index("## Condition: clean")]
    assert "| Method | clean | noise5 |" in robust
    assert "| Cosine (enrollment centroids), raw embeddings | 10.00 | **20.00** |" in robust
    line = _table_line(md, "v2 without LogitNorm")
    assert "+2.00 (7.00 ± 1.50)" in line.split(" | ")[2]  # EER delta, own mean ± std over splits
    reference = _table_line(md, "full v2 (reference)")
    assert reference.split(" | ")[2] == "+0.00 (5.00 ± 0.00)"  # the row the deltas start from
    assert "## Condition: noise5" in md
    summary = render_summary(results)
    assert "Condition clean" in summary and "noise5" in summary and "Ablations" not in summary


def test_summarize_mean_and_population_std():
    got = summarize([{"eer": 0.1, "acc": 1.0}, {"eer": 0.3, "acc": 0.0}])
    assert got["mean"] == pytest.approx({"eer": 0.2, "acc": 0.5})
    assert got["std"]["eer"] == pytest.approx(np.std([0.1, 0.3]))


def test_write_and_publish(results, tmp_path):
    fig = tmp_path / "figures" / "det.png"
    fig.parent.mkdir()
    fig.write_bytes(b"\x89PNG fake")
    results["figures"] = ["figures/det.png"]
    json_path, md_path = write_report(results, tmp_path)
    assert json.loads(json_path.read_text())["schema_version"] == 1
    assert md_path.read_text() == render_markdown(results)
    published = publish_markdown(tmp_path, tmp_path / "docs" / "results.md")
    assert (tmp_path / "docs" / "figures" / "det.png").read_bytes() == b"\x89PNG fake"
    assert "![det](figures/det.png)" in published.read_text()


def test_dir_at_far_column_names_the_configured_rate(results):
    """The DIR@FAR key and title come from config["far"] (defect 8), 1 % by default."""
    assert "DIR@FAR1% %" in render_markdown(results)
    specs = metric_specs(0.05)
    keys = [s.key for s in specs]
    assert "dir_far_5" in keys and "dir_far_1" not in keys
    assert [k for k in keys if k != "dir_far_5"] == [s.key for s in METRICS if s.key != "dir_far_1"]
    renamed = json.loads(json.dumps(results).replace('"dir_far_1"', '"dir_far_5"'))
    renamed["config"]["far"] = 0.05
    md = render_markdown(renamed)
    assert "| DIR@FAR5% % |" in md and "DIR@FAR1%" not in md and "OSCR/AUROC/DIR@FAR5%" in md
