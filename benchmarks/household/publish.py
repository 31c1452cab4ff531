"""Write ``docs/results.md`` from the household study and the fair-table evaluation.

Inputs (made by the commands in each section's text):

- ``/tmp/i12c/report/<config>-*/kNNN-fM.npz``: ``study.py --half report --out /tmp/i12c``
  fits (every score the deployed model gives, its decision rule and its threshold), and
  ``/tmp/i12c/devplus-report-strangers/``: ``study.py --half devplus --report-strangers``;
- ``/tmp/i12r/kNNN/results.json``: ``fair_tables.py`` (the ``speakerrpl evaluate`` code path
  on the same report-half folds);
- ``/tmp/i12c/quality-*.json``: ``quality_decision.py`` (the quality-aware default decision
  against the single tail, through the public API on the same report folds).

Run:  PYTHONPATH=src python benchmarks/household/publish.py --out docs/results.md
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
from pathlib import Path

import numpy as np
from study import source_voice  # type: ignore[import-not-found]

from speakerrpl.data.condition_ids import CONDITIONS
from speakerrpl.evaluation.report import render_markdown
from speakerrpl.identifier.decision import Decision
from speakerrpl.metrics import eer, identification_trials

STUDY = Path("/tmp/i12c")
REPORT = Path("/tmp/i12r")
CONDS = ("clean", *CONDITIONS)
FARS = (0.05, 0.01, 0.001)
#: FR columns of the calibration table: clean and the conditions a household meets most
FR_CONDS = ("clean", "music", "short", "noise", "device", "babble")
NAMES = {
    "default": "Default: compensated, softmax fusion of 30 blended with cosine",
    "cosine": "Cosine (raw embeddings)",
    "cosine_wccn": "Cosine, channel-compensated",
    "cosine_asnorm": "Cosine + AS-norm (raw, development-voice cohort)",
    "softmax_f30": "Softmax fusion of 30 (raw, no blend)",
    "softmax_f30_wccn": "Softmax fusion of 30 (compensated, no blend)",
    "rpl_v2": "SpeakerRPL v2, fusion + selection (raw)",
    "rpl_v2_wccn": "SpeakerRPL v2, fusion + selection (compensated)",
}
EER_CONFIGS = tuple(NAMES)
CALIBRATION_CONFIGS = ("default", "cosine_wccn", "softmax_f30_wccn", "rpl_v2_wccn", "cosine")
#: the K = 50 / 100 check: households of development voices, the report half as strangers
LARGE = "devplus-report-strangers"
LARGE_CONFIGS = ("default", "cosine_wccn", "cosine")
Fit = dict[str, np.ndarray]


@functools.cache
def fits_of(half: str, config: str) -> dict[int, list[Fit]]:
    """Stored fits of one configuration by K (read once per run; several tables use them)."""
    out: dict[int, list[Fit]] = {}
    for d in sorted((STUDY / half).glob(f"{config}-*")):
        for f in sorted(d.glob("k*-f*.npz")):
            with np.load(f, allow_pickle=False) as data:
                a = {k: data[k] for k in data.files}
            out.setdefault(int(a["enroll_y"].max()) + 1, []).append(a)
    return dict(sorted(out.items()))


def deployed(a: Fit, key: str) -> np.ndarray:
    """(N, K) scores the fitted model decides on."""
    return a[f"{key}|final"].astype(np.float64)


def strangers_kept(a: Fit, drop_variants: bool) -> np.ndarray:
    """Which stranger tests count; ``drop_variants`` drops those whose identity was made from
    the same source voice as an enrolled target (a vocal-tract-shifted copy of it)."""
    n = len(a["unknown|clean|final"])
    if not drop_variants:
        return np.ones(n, dtype=bool)
    enrolled = {source_voice(t) for t in a["training_classes"]}
    return np.asarray([source_voice(v) not in enrolled for v in a["unknown_speakers"]])


def operating_point(
    a: Fit, cond: str, thr: float, kept: np.ndarray | None = None
) -> tuple[float, float]:
    """(FA %, FR %): strangers accepted (those ``kept``), targets missed or misnamed, at ``thr``."""
    su = deployed(a, f"unknown|{cond}").max(axis=1)
    su = su if kept is None else su[kept]
    kn = deployed(a, f"known|{cond}")
    missed = (kn.argmax(axis=1) != a["known_y"]) | (kn.max(axis=1) < thr)
    return 100 * float(np.mean(su >= thr)), 100 * float(np.mean(missed))


def _ms(values: list[float], digits: int = 1) -> str:
    v = np.asarray(values)
    return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"


def calibration_table(config: str, half: str = "report", drop_variants: bool = False) -> list[str]:
    """Requested rate vs FA (clean, worst condition) and FR by K, mean ± std over folds
    (``drop_variants``: see :func:`strangers_kept`)."""
    fits = fits_of(half, config)
    head = ["K", "folds", "asked", "FA clean %", "FA worst condition %",
            *[f"FR {c} %" for c in FR_CONDS]]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for k, group in fits.items():
        for far in FARS:
            fa_clean, fa_worst, worst, fr = [], [], [], {c: [] for c in FR_CONDS}
            for a in group:
                dec = Decision.from_dict(json.loads(str(a["decision"])))
                thr = dec.tail.score_threshold(far, k)
                kept = strangers_kept(a, drop_variants)
                points = {c: operating_point(a, c, thr, kept) for c in CONDS}
                fa_clean.append(points["clean"][0])
                w = max(CONDS, key=lambda c: points[c][0])
                fa_worst.append(points[w][0])
                worst.append(w)
                for c in FR_CONDS:
                    fr[c].append(points[c][1])
            most = max(set(worst), key=worst.count)
            cells = [str(k), str(len(group)), f"{100 * far:g} %", _ms(fa_clean),
                     f"{_ms(fa_worst)} ({most})", *[_ms(fr[c]) for c in FR_CONDS]]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def condition_eers(a: Fit) -> list[float]:
    out = []
    for c in CONDS:
        s, lab = identification_trials(
            deployed(a, f"known|{c}"), a["known_y"], deployed(a, f"unknown|{c}")
        )
        out.append(100 * eer(s, lab))
    return out


def eer_table(configs: tuple[str, ...], half: str = "report") -> list[str]:
    """EER % per condition and K of each configuration (mean ± std over folds)."""
    head = ["K", "system", *CONDS, "mean"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    per = {c: fits_of(half, c) for c in configs}
    for k in per[configs[0]]:
        for c in configs:
            rows = np.asarray([condition_eers(a) for a in per[c].get(k, [])])
            if not rows.size:
                continue
            cells = [f"{m:.2f} ± {s:.2f}" for m, s in zip(rows.mean(0), rows.std(0), strict=True)]
            means = rows.mean(1)
            lines.append(f"| {k} | {NAMES[c]} | " + " | ".join(cells)
                         + f" | {means.mean():.2f} ± {means.std():.2f} |")  # fmt: skip
    return lines


#: quality_decision.py runs: file under STUDY -> (what was enrolled, its command's options)
QUALITY = {
    "quality-demo.json": ("clean enrollment (`fit(X, y)`), demo pool", ""),
    "quality-copies.json": ("enrollment with channel copies (the service), demo pool", "--copies"),
    "quality-copies-default-pool.json": (
        "enrollment with channel copies, deployment pool", "--copies --pool default",
    ),
    **{  # households heard on the channel they enrolled on
        f"quality-enroll-{c}.json": (
            f"enrolled on each clip's {c} copy, demo pool", f"--enroll-condition {c}"
        )
        for c in ("phone", "far", "device", "codec", "noise", "music")
    },
}  # fmt: skip
QUALITY_FR = ("clean", "music", "device", "phone", "far", "babble", "short_far")


def quality_section() -> list[str]:
    """The quality-aware default decision against the single stranger tail, per run."""
    lines = [
        "## The quality-aware threshold (the default decision)",
        "",
        "The default reads each clip's stranger share for the channel it sounds like, "
        "relative to what its enrollment sounded like "
        '(`calibration="quality"`; `docs/calibration.md`, "Quality-aware threshold"). '
        "`OpenSetSpeakerIdentifier()` fitted per report fold, both rules from the same fit "
        "(the single tail, the previous default: `decision_.accepts(best)` without a "
        "posterior). Single tail -> quality-aware, mean ± std over 5 report folds; FA worst "
        "condition: the condition where most strangers got in, per fold; FR: targets missed "
        "or misnamed, %.",
    ]
    header = ["K", "FA worst condition %", "FA clean %", "FR mean over conditions %"]
    header += [f"FR {c}" for c in QUALITY_FR]
    for name, (title, options) in QUALITY.items():
        result = json.loads((STUDY / name).read_text())
        conds = result["conditions"]
        command = (
            f"PYTHONPATH=src python benchmarks/household/quality_decision.py {options} "
            f"--json {STUDY / name}"
        ).replace("  ", " ")
        lines += ["", f"### {title}", "", f"`{command.strip()}`", "",
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]  # fmt: skip
        for k, entry in result["K"].items():
            a, b = entry["single tail (previous default)"], entry["quality-aware"]
            cells = [
                k,
                f"{a['FA_worst'][0]:.1f} ± {a['FA_worst'][1]:.1f} -> "
                f"{b['FA_worst'][0]:.1f} ± {b['FA_worst'][1]:.1f}",
                f"{a['FA'][0]:.1f} -> {b['FA'][0]:.1f}",
                f"{a['FR_mean'][0]:.1f} ± {a['FR_mean'][1]:.1f} -> "
                f"{b['FR_mean'][0]:.1f} ± {b['FR_mean'][1]:.1f}",
            ]
            cells += [f"{a['FR'][conds.index(c)]:.0f} -> {b['FR'][conds.index(c)]:.0f}"
                      for c in QUALITY_FR]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def goal_rows(half: str = "report", cosine_half: str = "report") -> list[str]:
    """The issue's goals, measured: FA / FR at 1 %, EER ratio to cosine (the plain cosine of
    ``cosine_half``: the same folds and trials), fit time."""
    default, cosine = fits_of(half, "default"), fits_of(cosine_half, "cosine")
    lines = ["| K | FA clean % | FA worst condition % | FR clean % | FR music % (mildest) | "
             "EER default / cosine, mean over conditions | fit s (default) |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for k, group in default.items():
        fa_c, fa_w, fr_c, fr_m, fit = [], [], [], [], []
        for a in group:
            thr = float(a["threshold"])
            pts = {c: operating_point(a, c, thr) for c in CONDS}
            fa_c.append(pts["clean"][0])
            fa_w.append(max(p[0] for p in pts.values()))
            fr_c.append(pts["clean"][1])
            fr_m.append(pts["music"][1])
            fit.append(float(a["fit_s"]))
        e_d = np.mean([condition_eers(a) for a in group])
        e_c = np.mean([condition_eers(a) for a in cosine.get(k, [])])
        ratio = f"{e_d:.2f} / {e_c:.2f} = {e_d / e_c:.2f}x"
        cells = [str(k), _ms(fa_c), _ms(fa_w), _ms(fr_c), _ms(fr_m), ratio, f"{np.mean(fit):.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def copies_baselines() -> list[str]:
    """Mean EER over the conditions with the same enrollment budget: the default and both
    cosine baselines each enrolled with the clips' channel copies, beside plain cosine
    enrolled on the clips alone (the issue's reference)."""
    columns = [("report-copies", "default", "default, copies"),
               ("report-multi", "cosine", "plain cosine, copies"),
               ("report-multi", "cosine_wccn", "compensated cosine, copies"),
               ("report", "cosine", "plain cosine, clean enrollment")]  # fmt: skip
    fits = {name: fits_of(half, config) for half, config, name in columns}
    lines = ["| K | " + " | ".join(name for *_, name in columns)
             + " | default / plain cosine, both with copies |",
             "|---" * (len(columns) + 2) + "|"]  # fmt: skip
    for k in fits["default, copies"]:
        means = [np.mean([condition_eers(a) for a in fits[name][k]]) for *_, name in columns]
        lines.append(f"| {k} | " + " | ".join(f"{m:.2f}" for m in means)
                     + f" | {means[0] / means[1]:.2f}x |")  # fmt: skip
    return lines


def fair(k: int, out: Path) -> list[str]:
    src = REPORT / f"k{k:03d}"
    if not (src / "results.json").is_file():
        return [f"(K = {k}: not run)"]
    results = json.loads((src / "results.json").read_text())
    prefix = f"figures/k{k:03d}/"
    shutil.rmtree(out.parent / prefix, ignore_errors=True)  # no figure of an earlier run stays
    moved = []
    for rel in results.get("figures", []):
        target = out.parent / prefix / Path(rel).relative_to("figures")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / rel, target)
        moved.append(f"{prefix}{Path(rel).relative_to('figures')}")
    if moved:
        results["figures"] = moved
    text = render_markdown(results)
    lines = ["#" + line if line.startswith("## ") else line for line in text.splitlines()]
    lines = [f"## Fair table, K = {k}" if x == "# Evaluation results" else x for x in lines]
    return ["", *lines]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("docs/results.md"))
    ap.add_argument("--intro", type=Path, default=Path(__file__).with_name("results_intro.md"))
    args = ap.parse_args()
    lines = ["<!-- generated by benchmarks/household/publish.py; do not edit -->"]
    lines += args.intro.read_text().splitlines()
    lines += ["", *quality_section()]
    lines += ["", "## The goals, measured on the report half", "",
              "The default's scores at the single stranger tail's threshold (`target_far=0.01`; "
              "the previous default decision, `calibration=\"tail\"`: the quality-aware "
              "default's operating points are in the section above, and the tables below "
              "that name a threshold are the single tail's too), mean ± std over 5 report "
              "folds; FA worst condition: the test condition where most strangers got in, per "
              "fold. Fit times are on the shared, loaded machine (see the text).", "",
              *goal_rows()]  # fmt: skip
    lines += [
        "",
        "## EER by condition and household size (report half)",
        "",
        "Identification trials of every test utterance against every target, on the scores "
        "each model decides on; mean ± std over 5 report folds. AS-norm normalises against the "
        "116 development voices (`study.py --half report --cohort-voices --k 1 2 4 8 20 "
        "--folds 5 --configs cosine_asnorm --out /tmp/i12c`; against the pool's voices its "
        "mean EER was 2.83 / 5.03 / 5.54 / 6.60 % at K = 2 / 4 / 8 / 20, "
        '`docs/calibration.md`, "Cohort score normalisation").',
        "",
        *eer_table(EER_CONFIGS),
    ]
    lines += ["", "## Household-size calibration (report half)", "",
              "Requested false-acceptance rate vs strangers accepted (FA) and targets missed or "
              "misnamed (FR) at the threshold each fit deploys for that rate, mean ± std over "
              "5 report folds. Command: `PYTHONPATH=src python benchmarks/household/study.py "
              "--half report --k 1 2 4 8 20 --folds 5 --out /tmp/i12c --configs "
              + " ".join(c for c in EER_CONFIGS if c != "cosine_asnorm")
              + "` (AS-norm: the command above)."]  # fmt: skip
    for config in CALIBRATION_CONFIGS:
        lines += ["", f"### {NAMES[config]}", "", *calibration_table(config)]
    lines += ["", "### With the deployment pool", "",
              "The default on the same report folds with `default_pool(get_frontend(\"campplus\"))`"
              " as the pool instead of the demo corpus's (`study.py --half report --pool default "
              "--k 1 2 4 8 20 --folds 5 --configs default`).", "",
              *calibration_table("default", "report-default-pool")]  # fmt: skip
    lines += ["", "## With enrollment copies: what the service and the CLI enroll", "",
              "`speakerrpl enroll` and `POST /speakers/{name}/enrollments` also pass each "
              "enrollment clip through seven degraded channels "
              "(`speakerrpl.synth.enrollment_copies`) and fit with `copies=`: the copies join "
              "the cosine centroids, the adapters train on the clips alone, and the tables "
              "`COPIES_TAILS` / `COPIES_BLEND_WEIGHTS` apply. The same report folds, the "
              "copies of `enrollment_copies.py` (the library's channels; babble of demo pool "
              "voices): `study.py --half report --enroll-copies /tmp/enrollment_copies.npz "
              "--copies-to centroids --k 1 2 4 8 20 --folds 5 --configs default` (and the same "
              "with `--pool default`). EER ratio against plain cosine with clean enrollment on "
              "the same trials.", "", *goal_rows("report-copies"), "",
              "The baselines with the same enrollment budget (each cosine also enrolled with "
              "the copies: `study.py --half report --enroll-copies /tmp/enrollment_copies.npz "
              "--k 1 2 4 8 20 --folds 5 --configs cosine cosine_wccn`), mean EER % over the 10 "
              "conditions, same folds and trials:", "", *copies_baselines(), "",
              *calibration_table("default", "report-copies"), "",
              "### With enrollment copies and the deployment pool", "",
              *goal_rows("report-default-pool-copies"), "",
              *calibration_table("default", "report-default-pool-copies")]  # fmt: skip
    lines += ["", "## Large households (K = 50, 100): development targets, report strangers", "",
              "The report half has 50 voices, too few for these households. Here the targets "
              "are drawn from the 114 development voices (other households than the tails were "
              "measured on) and the strangers are the report half's voices, which no choice "
              "used; 5 folds. Command: `PYTHONPATH=src python benchmarks/household/study.py "
              "--half devplus --report-strangers --k 100 50 --folds 5 --out /tmp/i12c "
              "--configs default cosine_wccn cosine`."]  # fmt: skip
    for config in LARGE_CONFIGS:
        lines += ["", f"### {NAMES[config]}", "", *calibration_table(config, LARGE)]
    lines += ["", "### The same, without strangers made from an enrolled voice", "",
              "14 of the demo corpus's 28 voices with a vocal-tract-shifted copy (`-vtup`, "
              "`-vtdown`) have the copy in the other half, so here a stranger can be a shifted "
              "copy of an enrolled target; these tables drop such strangers."]  # fmt: skip
    for config in LARGE_CONFIGS:
        lines += ["", f"#### {NAMES[config]}", "", *calibration_table(config, LARGE, True)]
    lines += fair(20, args.out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(args.out)


if __name__ == "__main__":
    main()
