"""Paper tables: every method x split (x test condition), resumable, with ablations.

One :class:`~speakerrpl.identifier.OpenSetSpeakerIdentifier` is fitted per (method, split) on
the split's enrollment embeddings (plus the synthetic pool) and scores that split's known and
unknown test utterances under every condition. One ensemble fit gives several table rows:
each member scored alone (single adapter: mean and std over members, which differ only in
their seed), the fusion of all members, and the fusion of the members kept by
eigenvalue-variance selection.

Each finished (method, split) *unit* is stored under ``OUT/units/`` with a fingerprint of
everything it depends on; a re-run skips the units whose fingerprint matches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from speakerrpl import __version__
from speakerrpl._optional import require
from speakerrpl.data.protocols import draws_per_fold
from speakerrpl.errors import InvalidInputError
from speakerrpl.evaluation.figures import write_figures
from speakerrpl.evaluation.report import figures_shown, write_report
from speakerrpl.evaluation.tables import (
    aggregate,
    describe,
    split_ablation,
)
from speakerrpl.evaluation.units import (
    FUSION_ALL,
    FUSION_HIGH,
    FUSION_SEL,
    SINGLE,
    EvalInputs,
    Unit,
    compute_metrics,
    fingerprint,
    fit_and_score,
    load_inputs,
    load_unit,
    save_unit,
    uses_cohort,
)
from speakerrpl.identifier.settings import IdentifierSettings, default_selection_r
from speakerrpl.identifier.tails import measured_data_fingerprint
from speakerrpl.nn.methods import METHODS

__all__ = [
    "ABLATIONS",
    "BASELINES",
    "EvalConfig",
    "Unit",
    "compute_metrics",
    "plan_units",
    "run_evaluation",
]

logger = logging.getLogger(__name__)

#: Every registered method, in table order.
BASELINES: tuple[str, ...] = tuple(METHODS)
#: Ablations of full v2 (fusion + selection): row title -> (folder name, identifier
#: overrides); ``None`` overrides: scored from the full v2 fit itself, no extra training.
ABLATIONS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "v2 without LogitNorm": ("no-logitnorm", {"use_logitnorm": False}),
    "v2 without adaptive anchors": ("no-anchors", {"n_anchors": 0}),
    "v2 without synthetic unknowns": ("no-unknowns", {"n_unknown": 0}),
    "v2 with tau = 0.04": ("tau-0.04", {"tau": 0.04}),
    "v2 with unit-sphere centre points + tau = 0.04": (
        "sphere-tau",
        {"centre_init": "sphere", "tau": 0.04},
    ),
    "v2 with the radius trained without momentum": ("radius-plain", {"radius_plain": True}),
    "v2 with per-sample normalisation (LayerNorm)": ("layer-norm", {"norm": "layer"}),
    "v2 with embedding-level enrollment augmentation": ("augment", {"augment": 2}),
    "v2 with per-target unknown selection": ("per-target-unknowns", {"unknown_rule": "per_target"}),
    "v2 scored against the extension classes as a cohort": (
        "extension-norm",
        {"score_norm": "extension"},
    ),
    "v2 with all three repairs (sphere + tau 0.04 + plain radius)": (
        "repaired",
        {"centre_init": "sphere", "tau": 0.04, "radius_plain": True},
    ),
    "v2 fusion without selection": ("no-selection", None),
    "v2 selection keeping high-variance models": ("high-variance", None),
}


@dataclass(frozen=True)
class EvalConfig:
    """What an evaluation runs.

    Args:
        methods: identifier methods (see :data:`BASELINES`); default all of them.
        n_models: ensemble size of ``rpl_v2`` (``M``).
        n_seeds: seeds (ensemble members scored one by one) of the single-adapter baselines.
        selection_r: members dropped per selection criterion (default ``n_models // 3``, 10 for
            30 as published).
        ablation: also run the v2 ablations of :data:`ABLATIONS`.
        conditions: test conditions to score (``None``: all of the protocol's).
        far: false-alarm rate of DIR@FAR.
        random_state: base seed; split ``i`` is fitted with ``random_state + i``.
        default_row: also evaluate the shipped default, ``OpenSetSpeakerIdentifier()``.
        identifier_params: extra ``OpenSetSpeakerIdentifier`` keywords for every method
            (e.g. ``{"epochs": 20, "device": "cuda"}``).

    Example:
        >>> EvalConfig(methods=("cosine", "rpl_v2"), n_models=6).selection_r
        2
    """

    methods: tuple[str, ...] = BASELINES
    n_models: int = 30
    n_seeds: int = 3
    selection_r: int | None = None
    ablation: bool = False
    conditions: tuple[str, ...] | None = None
    far: float = 0.01
    random_state: int = 0
    default_row: bool = False
    identifier_params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = [m for m in self.methods if m not in BASELINES]
        if bad or not self.methods or len(set(self.methods)) != len(self.methods):
            raise InvalidInputError(
                f"methods must be distinct names from {BASELINES}, got {list(self.methods)}"
            )
        if self.ablation and "rpl_v2" not in self.methods:
            raise InvalidInputError("--ablation needs rpl_v2 among the methods")
        if self.n_models < 1 or self.n_seeds < 1:
            raise InvalidInputError(
                f"need n_models, n_seeds >= 1, got {self.n_models}, {self.n_seeds}"
            )
        if self.selection_r is None:
            object.__setattr__(self, "selection_r", default_selection_r(self.n_models))
        if not 0 <= self.far <= 1:
            raise InvalidInputError(f"far must be in [0, 1], got {self.far}")
        reserved = {"method", "n_models", "random_state"} & set(self.identifier_params)
        if reserved:
            raise InvalidInputError(f"identifier_params may not set {sorted(reserved)}")
        IdentifierSettings.from_dict(dict(self.identifier_params))  # unknown keys, bad values
        if "rpl_v2" in self.methods:  # an impossible selection fails here, not after training
            IdentifierSettings(
                method="rpl_v2", n_models=self.n_models, selection_r=self.selection_r
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        out = asdict(self)
        out["identifier_params"] = dict(self.identifier_params)
        return out


def plan_units(config: EvalConfig, frontend: str | None = None) -> list[Unit]:
    """The (identifier configuration, table rows) units an evaluation fits on every split.

    Fusion is method-agnostic: every trained method is fitted once as an ``M``-member ensemble
    and reported as single adapters (the first ``n_seeds`` members scored alone), as the fusion
    of all ``M`` and, where the method has points, as the fusion of the members kept by
    eigenvalue-variance selection, always without the default's cosine blend and with the
    default's channel compensation (where it applies). Cosine is reported plain (raw
    embeddings), with AS-norm and, for ``frontend`` CAM++, channel-compensated (``_wccn``);
    the shipped default configuration (``OpenSetSpeakerIdentifier()``) gets its own row.

    Example:
        >>> config = EvalConfig(methods=("cosine", "rpl_v2"), default_row=True)
        >>> [u.name for u in plan_units(config, frontend="campplus")]
        ['cosine', 'cosine_asnorm', 'cosine_wccn', 'rpl_v2', 'default']
    """
    units = []
    for method in config.methods:
        spec = METHODS[method]
        if not spec.trains:
            raw = {"method": method, "channel_compensation": False}
            units.append(Unit(method, raw, {method: FUSION_SEL}))
            asn = {**raw, "score_norm": "asnorm"}
            units.append(Unit(f"{method}_asnorm", asn, {f"{method}_asnorm": FUSION_SEL}))
            wccn = {"method": method, "channel_compensation": True}
            extra = {k: v for k, v in config.identifier_params.items() if k != "frontend"}
            if IdentifierSettings(**{**extra, "method": method, "frontend": frontend}).compensates:
                units.append(Unit(f"{method}_wccn", wccn, {f"{method}_wccn": FUSION_SEL}))
            continue
        rows = {f"{method}_single": SINGLE, f"{method}_fusion_all": FUSION_ALL}
        # the method itself, without the default's cosine blend (the "default" row has it)
        params: dict[str, Any] = {
            "method": method, "n_models": config.n_models, "cosine_blend": False,
        }  # fmt: skip
        if spec.has_points:
            rows[f"{method}_fusion_sel"] = FUSION_SEL
            params.update(selection="low", selection_r=config.selection_r)
            if config.ablation and method == "rpl_v2":
                rows["v2 fusion without selection"] = FUSION_ALL
                rows["v2 selection keeping high-variance models"] = FUSION_HIGH
        else:
            params["selection"] = "none"
        units.append(
            Unit(method, params, rows, projection=method == "rpl_v2", n_single=config.n_seeds)
        )
    if config.default_row:
        units.append(Unit("default", {}, {"default": FUSION_SEL}))
    if config.ablation:
        base = next(u for u in units if u.name == "rpl_v2")
        for name, (slug, overrides) in ABLATIONS.items():
            if overrides is not None:
                params = {**base.params, **overrides}
                units.append(Unit(f"ablation-{slug}", params, {name: FUSION_SEL}))
    return units


def _figure_conditions(tables: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The first condition and the one where the rows' EERs differ most (figures of both).

    Clean is often saturated (every curve flat at zero), so the figures also show the
    condition with the widest spread of mean EER between rows.
    """
    conds = list(tables)
    spread = {c: float(np.ptp([r["mean"]["eer"] for r in tables[c].values()])) for c in conds}
    hard = max(conds, key=lambda c: spread[c])
    return conds[:1] if hard == conds[0] else [conds[0], hard]


def _progress(total: int, done: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, unit="fit", desc="evaluate", dynamic_ncols=True)


#: ``runner(work, inputs, config)`` fits the ``(unit, split)`` pairs of ``work`` and yields
#: ``(unit, split, result, arrays)`` as each finishes, e.g. on Ray (evaluation.ray_runner).
UnitRunner = Callable[[list[tuple[Unit, int]], EvalInputs, "EvalConfig"], Iterable[Any]]


def run_units_here(
    work: list[tuple[Unit, int]], inputs: EvalInputs, config: EvalConfig
) -> Iterator[tuple[Unit, int, dict[str, Any], dict[str, Any]]]:
    """The default :data:`UnitRunner`: fit the units one after the other in this process."""
    for unit, f in work:
        seed = config.random_state + f
        result, arrays = fit_and_score(unit, inputs, f, seed, config.far, config.identifier_params)
        yield unit, f, result, arrays


def _run_units(
    units: Sequence[Unit],
    inputs: EvalInputs,
    config: EvalConfig,
    out: Path,
    progress: bool,
    runner: UnitRunner | None = None,
) -> dict[tuple[str, int], dict[str, Any]]:
    n_folds = len(inputs.protocol.folds)
    measured = measured_data_fingerprint()  # reads the channel model once, not per unit
    todo, stored = [], {}
    for unit in units:
        for f in range(n_folds):
            fp = _unit_fingerprint(unit, f, inputs, config, measured)
            found = load_unit(out, unit, f, fp)
            if found is None:
                todo.append((unit, f, fp))
            else:
                stored[(unit.name, f)] = found
    if stored:
        logger.info("resuming: %d of %d fits already done", len(stored), len(units) * n_folds)
    bar = _progress(len(units) * n_folds, len(stored), progress)
    fps = {(unit.name, f): fp for unit, f, fp in todo}
    work = (runner or run_units_here)([(unit, f) for unit, f, _ in todo], inputs, config)
    for unit, f, result, arrays in work:
        fp = fps[(unit.name, f)]
        if bar is not None:
            bar.set_postfix_str(f"{unit.name} split {f + 1}/{n_folds}")
        save_unit(out, unit, f, fp, result, arrays)
        stored[(unit.name, f)] = {"fingerprint": fp, **result}
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return stored


def _unit_fingerprint(
    unit: Unit, fold: int, inputs: EvalInputs, config: EvalConfig, measured: str
) -> str:
    normed = uses_cohort(unit.params)
    hashes = {k: v for k, v in inputs.hashes.items() if k != "cohort" or normed}
    return fingerprint(
        {
            "unit": asdict(unit),
            "fold": fold,
            "seed": config.random_state + fold,
            "far": config.far,
            "identifier_params": dict(config.identifier_params),
            "conditions": list(inputs.conditions),
            "hashes": hashes,
            "version": __version__,
            "measured_data": measured,
        }
    )


def run_evaluation(
    embeddings: str | Path,
    pool: str | Path,
    protocol: str | Path,
    out_dir: str | Path,
    config: EvalConfig | None = None,
    progress: bool = False,
    command: str = "",
    figures: bool = True,
    runner: UnitRunner | None = None,
    cohort: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate every method of ``config`` on every split; write results.json/.md + figures.

    Args:
        embeddings: ``.npz`` embedding set holding every utterance of the protocol.
        pool: ``.npz`` embedding set of the synthetic negative pool (speakers = voices).
        protocol: protocol JSON (see :mod:`speakerrpl.data.protocols`).
        out_dir: results directory; finished fits stored there are reused.
        config: what to run (default :class:`EvalConfig`).
        progress: show a progress bar with ETA on stderr.
        command: the command line, recorded in the report.
        figures: also write the PNG figures.
        runner: where the fits run (default :func:`run_units_here`).
        cohort: ``.npz`` embedding set of other voices for the AS-norm rows (default: the
            pool's voices); none of them may be a speaker of the protocol.

    Returns:
        The ``results.json`` content.

    Example:
        >>> import tempfile, os
        >>> import numpy as np
        >>> from speakerrpl.embeddings import EmbeddingSet
        >>> from speakerrpl.data.protocols import make_protocol, save_protocol
        >>> d, rng = tempfile.mkdtemp(), np.random.default_rng(0)
        >>> spk = np.repeat([f"s{i}" for i in range(6)], 4)
        >>> x = np.repeat(rng.normal(size=(6, 8)), 4, axis=0) + 0.1 * rng.normal(size=(24, 8))
        >>> ids = [f"{s}-{i % 4}" for i, s in enumerate(spk)]
        >>> EmbeddingSet(x, ids, spk, "toy").save(os.path.join(d, "e.npz"))
        >>> EmbeddingSet(x[:8], ids[:8], ["p0"] * 4 + ["p1"] * 4, "toy").save(
        ...     os.path.join(d, "p.npz"))
        >>> proto = make_protocol(dict(zip(ids, spk)), n_targets=3, n_enroll=2, n_unknowns=3,
        ...                       n_folds=2)
        >>> _ = save_protocol(proto, os.path.join(d, "proto.json"))
        >>> res = run_evaluation(os.path.join(d, "e.npz"), os.path.join(d, "p.npz"),
        ...                      os.path.join(d, "proto.json"), os.path.join(d, "out"),
        ...                      EvalConfig(methods=("cosine",)), figures=False)
        >>> round(res["results"]["clean"]["cosine"]["mean"]["acc"], 2)
        1.0
    """
    config = config or EvalConfig()
    if figures:  # a missing plots extra fails before the fits, not after
        require("matplotlib", extra="plots", purpose="evaluation figures (or --no-figures)")
    out = Path(out_dir)
    inputs = load_inputs(embeddings, pool, protocol, config.conditions, cohort)
    units = plan_units(config, inputs.embeddings.frontend)
    stored = _run_units(units, inputs, config, out, progress, runner)
    paths = {"embeddings": embeddings, "pool": pool, "protocol": protocol, "cohort": cohort}
    results = describe(inputs, config.to_dict(), paths, command)
    n_folds, draws = len(inputs.protocol.folds), draws_per_fold(inputs.protocol)
    for cond in inputs.conditions:
        table = aggregate(units, stored, n_folds, cond, draws)
        ablation = split_ablation(table, list(ABLATIONS)) if config.ablation else {}
        results["results"][cond] = table
        if ablation:
            results["ablation"][cond] = ablation
    results["rows"] = list(next(iter(results["results"].values())))
    if figures:
        results["figures"] = write_figures(
            out, units, _figure_conditions(results["results"]), figures_shown(draws)
        )
    write_report(results, out)
    return results
