"""``speakerrpl evaluate`` / ``run_evaluation`` on a tiny protocol of Gaussian embeddings."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from speakerrpl import metrics
from speakerrpl.cli import main
from speakerrpl.data.protocols import Protocol, make_protocol, save_protocol
from speakerrpl.embeddings import EmbeddingSet
from speakerrpl.errors import InvalidInputError, ProtocolError
from speakerrpl.evaluation import experiments
from speakerrpl.evaluation.report import METRICS, publish_markdown
from speakerrpl.evaluation.units import fit_and_score
from speakerrpl.identifier import tails

D = 24
FAST = {
    "epochs": 2,
    "hidden": (16,),
    "out_dim": 8,
    "n_unknown": 4,
    "n_calibration": 3,
}
METRIC_KEYS = {m.key for m in METRICS}


def _speakers(rng, prefix, n_spk, n_utt, conditions=()):
    ids, spk, rows = [], [], []
    for s in range(n_spk):
        centre = rng.normal(size=D)
        for i in range(n_utt):
            utt, emb = f"{prefix}{s:02d}-{i}", centre + 0.5 * rng.normal(size=D)
            ids.append(utt), spk.append(f"{prefix}{s:02d}"), rows.append(emb)
            for cond in conditions:
                ids.append(f"{utt}__{cond}"), spk.append(f"{prefix}{s:02d}")
                rows.append(emb + 0.3 * rng.normal(size=D))
    return EmbeddingSet(np.array(rows), ids, spk, "gauss")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Embeddings (10 speakers, clean + noise10 copies), a 12-voice pool, a 2-fold protocol."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    emb = _speakers(rng, "spk", 10, 5, ("noise10",))
    emb.save(root / "emb.npz")
    _speakers(rng, "pool", 12, 3).save(root / "pool.npz")
    clean = {u: s for u, s in zip(emb.utt_ids, emb.speakers, strict=True) if "__" not in u}
    proto = make_protocol(
        clean,
        n_targets=4,
        n_enroll=3,
        n_unknowns=4,
        n_folds=2,
        seed=0,
        conditions=("clean", "noise10"),
    )
    save_protocol(proto, root / "proto.json")
    return {
        k: root / f"{k}.{ext}" for k, ext in (("emb", "npz"), ("pool", "npz"), ("proto", "json"))
    }


def _config(**kw):
    base = {
        "methods": ("cosine", "softmax", "rpl_v2"),
        "n_models": 3,
        "n_seeds": 2,
        "identifier_params": FAST,
    }
    return experiments.EvalConfig(**{**base, **kw})


def _run(tiny, out, config, **kw):
    return experiments.run_evaluation(tiny["emb"], tiny["pool"], tiny["proto"], out, config, **kw)


@pytest.fixture(scope="module")
def full_run(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    results = _run(tiny, out, _config(methods=("cosine", "rpl_v2"), ablation=True))
    return out, results


def test_results_json_schema(full_run):
    out, _ = full_run
    data = json.loads((out / "results.json").read_text())
    assert data["schema_version"] == 1
    assert data["protocol"]["n_folds"] == 2 and len(data["protocol"]["hash"]) == 64
    assert data["frontend"] == "gauss" and data["package_version"]
    assert data["config"]["n_models"] == 3 and data["config"]["identifier_params"]["epochs"] == 2
    assert set(data["results"]) == {"clean", "noise10"}
    rows = ["cosine", "cosine_asnorm", "rpl_v2_single", "rpl_v2_fusion_all", "rpl_v2_fusion_sel"]
    assert data["rows"] == rows
    for table in data["results"].values():
        assert list(table) == rows
        for row, res in table.items():
            assert len(res["per_split"]) == 2
            for split in res["per_split"]:
                assert set(split) == METRIC_KEYS
                rates = {k: v for k, v in split.items() if k != "fa_gap"}
                assert all(0.0 <= v <= 1.0 + 1e-9 for v in rates.values() if not np.isnan(v))
                # the operating point exists exactly for the rows that deploy a threshold
                assert np.isnan(split["fa"]) == (row in ("rpl_v2_single", "rpl_v2_fusion_all"))
                if not np.isnan(split["fa"]):
                    assert split["fa_gap"] == pytest.approx(split["fa"] - 0.01)
            for key in METRIC_KEYS:
                vals = [s[key] for s in res["per_split"]]
                assert res["mean"][key] == pytest.approx(np.mean(vals), nan_ok=True)
                assert res["std"][key] == pytest.approx(np.std(vals), nan_ok=True)
            assert (res["seed_std"] is not None) == (row == "rpl_v2_single")
    # Gaussian speakers far apart: cosine scoring is near perfect
    assert data["results"]["clean"]["cosine"]["mean"]["acc"] > 0.9
    abl = data["ablation"]["clean"]
    assert set(abl) == set(experiments.ABLATIONS)
    ref = data["results"]["clean"]["rpl_v2_fusion_sel"]["mean"]
    for res in abl.values():
        assert res["delta"]["eer"] == pytest.approx(res["mean"]["eer"] - ref["eer"])


def test_fusion_rows_fuse_the_members_they_name(full_run):
    """Selection keeps L of M members, the high-variance ablation the other H = M - L; with
    mean-logit fusion M * S_all = L * S_selected + H * S_high, per score, on stored scores."""
    out, _ = full_run
    info = json.loads((out / "units" / "rpl_v2" / "fold000.json").read_text())["info"]
    kept = len(info["members_kept"])
    assert 0 < kept < 3  # selection dropped someone, so the three rows differ
    with np.load(out / "units" / "rpl_v2" / "fold000.npz") as arrays:
        every = arrays["rpl_v2_fusion_all|clean|known"]
        chosen = arrays["rpl_v2_fusion_sel|clean|known"]
        high = arrays["v2 selection keeping high-variance models|clean|known"]
    np.testing.assert_allclose(3 * every, kept * chosen + (3 - kept) * high, rtol=1e-4, atol=1e-4)
    assert not np.allclose(every, chosen)


def test_stored_scores_reproduce_the_table(full_run, tiny):
    """The per-split metrics are recomputable from the stored score matrices."""
    out, results = full_run
    unit = next(u for u in experiments.plan_units(_config()) if u.name == "cosine")
    with np.load(out / "units" / unit.name / "fold001.npz") as arrays:
        known, unknown = arrays["cosine|noise10|known"], arrays["cosine|noise10|unknown"]
        labels = arrays["noise10|labels"]
    got = results["results"]["noise10"]["cosine"]["per_split"][1]
    assert got["oscr"] == pytest.approx(metrics.oscr(known, labels, unknown))
    s, y = metrics.identification_trials(known, labels, unknown)
    assert got["eer"] == pytest.approx(metrics.eer(s, y))


def test_dir_at_far_follows_the_configured_rate(tiny, tmp_path):
    """EvalConfig.far names the DIR@FAR key and title and sets the value (defect 8)."""
    results = _run(tiny, tmp_path, _config(methods=("cosine",), far=0.05), figures=False)
    assert "dir_far_5" in results["metrics"] and "dir_far_1" not in results["metrics"]
    with np.load(tmp_path / "units" / "cosine" / "fold000.npz") as arrays:
        known, unknown = arrays["cosine|clean|known"], arrays["cosine|clean|unknown"]
        labels = arrays["clean|labels"]
    got = results["results"]["clean"]["cosine"]["per_split"][0]
    assert got["dir_far_5"] == pytest.approx(metrics.dir_at_far(known, labels, unknown, 0.05))
    md = (tmp_path / "results.md").read_text()
    assert "DIR@FAR5% %" in md and "DIR@FAR1%" not in md


def test_figures_written_and_non_empty(full_run):
    out, results = full_run
    names = {Path(f).name for f in results["figures"]}
    assert names == {
        "det.png",
        "oscr.png",
        "scores_cosine.png",
        "scores_rpl_v2_fusion_sel.png",
        "projection_rpl_v2.png",
    }
    for rel in results["figures"]:
        data = (out / rel).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    md = (out / "results.md").read_text()
    assert "| Cosine (enrollment centroids), raw embeddings |" in md and "**" in md
    assert "v2 without LogitNorm" in md and "## Robustness" in md
    published = publish_markdown(out, out / "docs" / "results.md")
    text = published.read_text()
    assert "do not edit" in text and "](figures/det.png)" in text
    assert (out / "docs" / "figures" / "det.png").read_bytes() == (
        out / "figures/det.png"
    ).read_bytes()


class _Interrupt(Exception):
    pass


def test_resume_skips_finished_splits(tiny, tmp_path, monkeypatch):
    config = _config(methods=("cosine", "rpl_v2"))
    calls: list[tuple[str, int]] = []
    interrupt_at: list[int] = [5]

    def spy(unit, inputs, fold, *args, **kwargs):
        if len(calls) in interrupt_at:
            raise _Interrupt  # e.g. Ctrl-C during a fit
        calls.append((unit.name, fold))
        return fit_and_score(unit, inputs, fold, *args, **kwargs)

    monkeypatch.setattr(experiments, "fit_and_score", spy)
    with pytest.raises(_Interrupt):
        _run(tiny, tmp_path, config, figures=False)
    assert calls == [
        ("cosine", 0), ("cosine", 1), ("cosine_asnorm", 0), ("cosine_asnorm", 1), ("rpl_v2", 0)
    ]  # fmt: skip
    assert not (tmp_path / "results.json").exists()
    calls.clear()
    interrupt_at.clear()
    first = _run(tiny, tmp_path, config, figures=False)
    assert calls == [("rpl_v2", 1)]  # only the unfinished split is fitted
    calls.clear()
    again = _run(tiny, tmp_path, config, figures=False)
    same = json.dumps(again["results"], sort_keys=True) == json.dumps(
        first["results"], sort_keys=True
    )
    assert calls == [] and same  # (NaN != NaN, so compare the JSON text)
    # a re-measured table (or a refitted channel model) invalidates the stored fits
    monkeypatch.setitem(tails.COMPENSATED_BLEND_WEIGHTS, "softmax", {1: 0.0})
    _run(tiny, tmp_path, config, figures=False)
    assert len(calls) == 6
    calls.clear()
    # other settings invalidate the stored fits
    _run(tiny, tmp_path, _config(methods=("cosine", "rpl_v2"), far=0.05), figures=False)
    assert len(calls) == 6


def test_asnorm_rows_normalise_against_a_given_cohort(tiny, tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    cohort = tmp_path / "cohort.npz"
    _speakers(rng, "other", 6, 3).save(cohort)
    config = _config(methods=("cosine",))
    plain = _run(tiny, tmp_path / "pool-cohort", config, figures=False)
    _run(tiny, tmp_path / "pools-only", config, figures=False)
    calls: list[str] = []

    def spy(unit, inputs, fold, *args, **kwargs):
        calls.append(unit.name)
        return fit_and_score(unit, inputs, fold, *args, **kwargs)

    monkeypatch.setattr(experiments, "fit_and_score", spy)
    out = tmp_path / "pool-cohort"
    given = _run(tiny, out, config, figures=False, cohort=cohort)
    assert calls == ["cosine_asnorm", "cosine_asnorm"]  # the other rows do not use a cohort
    assert given["cohort"]["voices"] == 6 and plain["cohort"] is None
    for cond in ("clean", "noise10"):
        for row in [r for r in given["rows"] if r != "cosine_asnorm"]:
            assert given["results"][cond][row]["mean"] == plain["results"][cond][row]["mean"]
    scores = [
        np.load(d / "units" / "cosine_asnorm" / "fold000.npz")["cosine_asnorm|noise10|known"]
        for d in (out, tmp_path / "pools-only")
    ]
    assert scores[0].shape == scores[1].shape and not np.allclose(*scores)
    assert "AS-norm cohort" in (out / "results.md").read_text()
    shared = tmp_path / "shared.npz"  # a cohort voice that is also a protocol speaker
    emb = EmbeddingSet.load(tiny["emb"])
    EmbeddingSet(emb.embeddings[:10], emb.utt_ids[:10].tolist(), emb.speakers[:10].tolist(),
                 "gauss").save(shared)  # fmt: skip
    with pytest.raises(ProtocolError, match="speaker\\(s\\) of the protocol"):
        _run(tiny, tmp_path / "bad", config, figures=False, cohort=shared)


def _metrics_only(results):
    return {
        cond: {
            row: {k: v for k, v in res.items() if not k.startswith("fit_seconds")}
            for row, res in t.items()
        }
        for cond, t in results["results"].items()
    }


def test_same_seed_same_results(tiny, tmp_path):
    config = _config(methods=("softmax", "rpl_v2"), conditions=("clean",))
    a = _run(tiny, tmp_path / "a", config, figures=False)
    b = _run(tiny, tmp_path / "b", config, figures=False)
    assert json.dumps(_metrics_only(a), sort_keys=True) == json.dumps(
        _metrics_only(b), sort_keys=True
    )
    fit_s = a["results"]["clean"]["rpl_v2_fusion_sel"]["fit_seconds"]
    assert fit_s > 0  # wall-clock of the fit, recorded but not compared


def test_a_split_of_several_draws_reports_their_mean(tiny, tmp_path):
    """A protocol whose splits are 2 households each: the same fits as one household per
    split, and each split's metrics the mean over its two draws."""
    emb = EmbeddingSet.load(tiny["emb"])
    clean = {u: s for u, s in zip(emb.utt_ids, emb.speakers, strict=True) if "__" not in u}
    single = make_protocol(
        clean, n_targets=4, n_enroll=3, n_unknowns=4, n_folds=4, seed=3, conditions=("clean",)
    )
    grouped = Protocol(single.folds, single.conditions, {**single.params, "draws_per_fold": 2})
    config = _config(methods=("cosine",), conditions=("clean",))
    results = {}
    for name, proto in (("single", single), ("grouped", grouped)):
        save_protocol(proto, tmp_path / f"{name}.json")
        results[name] = experiments.run_evaluation(
            tiny["emb"], tiny["pool"], tmp_path / f"{name}.json", tmp_path / name, config,
            figures=name == "grouped",
        )  # fmt: skip
    assert results["grouped"]["protocol"]["n_folds"] == 2
    assert results["grouped"]["protocol"]["draws_per_fold"] == 2
    for row, res in results["grouped"]["results"]["clean"].items():
        draws = results["single"]["results"]["clean"][row]["per_split"]
        assert res["per_draw"] == draws
        for key in ("eer", "acc", "fa", "fr"):
            means = [np.mean([draws[i][key], draws[i + 1][key]]) for i in (0, 2)]
            assert [s[key] for s in res["per_split"]] == pytest.approx(means, nan_ok=True)
            assert res["std"][key] == pytest.approx(np.std(means), nan_ok=True)
    report = (tmp_path / "grouped" / "results.md").read_text()
    assert "2 splits of 2 draws each" in report
    assert "## Figures (draw 1 of split 1)" in report  # the figures show one household


def test_config_validation():
    with pytest.raises(InvalidInputError, match="methods"):
        experiments.EvalConfig(methods=("nope",))
    with pytest.raises(InvalidInputError, match="ablation"):
        experiments.EvalConfig(methods=("cosine",), ablation=True)
    with pytest.raises(InvalidInputError, match="unknown identifier settings"):
        experiments.EvalConfig(identifier_params={"nope": 1})
    assert experiments.EvalConfig().selection_r == 10
    with pytest.raises(InvalidInputError, match="selection_r"):  # before any unit trains
        experiments.EvalConfig(n_models=5, selection_r=3)


def test_missing_condition_and_ids_are_clear_errors(tiny, tmp_path):
    with pytest.raises(ProtocolError, match="reverb"):
        _run(tiny, tmp_path, _config(conditions=("reverb",)))
    emb = EmbeddingSet.load(tiny["emb"])
    keep = np.array(["__noise10" not in u for u in emb.utt_ids])
    EmbeddingSet(emb.embeddings[keep], emb.utt_ids[keep], emb.speakers[keep], "gauss").save(
        tmp_path / "clean_only.npz"
    )
    with pytest.raises(ProtocolError, match="not in the embeddings"):
        experiments.run_evaluation(
            tmp_path / "clean_only.npz", tiny["pool"], tiny["proto"], tmp_path / "o", _config()
        )


def _cli(tiny, out, *flags, **override):
    args = {
        "--embeddings": tiny["emb"],
        "--pool": tiny["pool"],
        "--protocol": tiny["proto"],
        "--out": out,
        "--methods": "cosine",
        "--conditions": "clean",
    }
    args.update(override)
    return main(["evaluate", *[str(x) for kv in args.items() for x in kv], *flags])


def test_cli_prints_table_and_writes_report(tiny, tmp_path, capsys):
    md = tmp_path / "pub" / "results.md"
    handlers = logging.getLogger().handlers
    filters_before = [list(h.filters) for h in handlers]
    assert _cli(tiny, tmp_path, "--no-figures", **{"--markdown": md}) == 0
    # its once-per-message log filter does not outlive the run (in-process callers, tests)
    assert [list(h.filters) for h in handlers] == filters_before
    out = capsys.readouterr().out
    assert "| Cosine (enrollment centroids), raw embeddings |" in out and "results.md" in out
    assert md.is_file() and "Cosine" in md.read_text()
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["command"].startswith("speakerrpl evaluate --embeddings")
    assert list(data["results"]) == ["clean"]


@pytest.mark.parametrize(
    ("which", "content", "message"),
    [
        ("--protocol", "{not json", "cannot read protocol"),
        ("--protocol", '{"folds": []}', "not a speakerrpl protocol"),
        ("--embeddings", "garbage", "not a readable .npz"),
        ("--pool", None, "does not exist"),
    ],
)
def test_cli_malformed_inputs_one_line_error(tiny, tmp_path, capsys, which, content, message):
    bad = tmp_path / "bad.file"
    if content is not None:
        bad.write_text(content)
    assert _cli(tiny, tmp_path / "out", **{which: bad}) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("speakerrpl evaluate: error:") and message in err
    assert len(err.splitlines()) == 1


def test_cli_bad_identifier_params(tiny, tmp_path, capsys):
    assert _cli(tiny, tmp_path, **{"--identifier-params": "[1]"}) == 2
    assert "JSON object" in capsys.readouterr().err
