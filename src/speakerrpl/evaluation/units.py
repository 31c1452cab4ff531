"""Evaluation internals: the inputs, one (method, split) unit, and its storage.

A *unit* fits one identifier on one split's enrollment embeddings and scores that split's test
utterances under every requested condition. Its result (metrics per table row and condition,
plus the score matrices the figures need) is written atomically under ``OUT/units/``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from speakerrpl import metrics
from speakerrpl.data.condition_ids import condition_utt_id
from speakerrpl.embeddings import EmbeddingSet
from speakerrpl.errors import ProtocolError
from speakerrpl.evaluation.report import dir_key

logger = logging.getLogger(__name__)

# Derived rows of an ensemble unit: name suffix -> which members are fused.
SINGLE, FUSION_ALL, FUSION_SEL, FUSION_HIGH = "single", "fusion_all", "fusion_sel", "fusion_high"


@dataclass(frozen=True)
class Unit:
    """One identifier configuration evaluated on every split.

    Args:
        name: unique name, also the folder of its stored results.
        params: keyword arguments of ``OpenSetSpeakerIdentifier`` (``method`` included).
        rows: ``{table row: how it is scored}``, ``how`` one of ``single`` (each member alone,
            mean and std over members), ``fusion_all``, ``fusion_sel`` (the identifier's own
            decision function) or ``fusion_high`` (keep the high-variance members instead).
        projection: store adapter features of the first split for the projection figure.
        n_single: members scored alone for ``single`` rows (0 = all).
    """

    name: str
    params: Mapping[str, Any]
    rows: Mapping[str, str]
    projection: bool = False
    n_single: int = 0


@dataclass
class EvalInputs:
    """Embeddings, pool, protocol and (optional) AS-norm cohort of an evaluation, with
    content hashes."""

    embeddings: EmbeddingSet
    pool: EmbeddingSet
    protocol: Any
    conditions: tuple[str, ...]
    index: dict[str, int] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    cohort: EmbeddingSet | None = None

    def rows_of(self, utt_ids: Sequence[str], condition: str) -> np.ndarray:
        """Embeddings (n, D) of the ``condition`` copies of clean utterance ids."""
        ids = [condition_utt_id(u, condition) for u in utt_ids]
        missing = [u for u in ids if u not in self.index]
        if missing:
            raise ProtocolError(
                f"{len(missing)} utterance(s) of the protocol have no embedding, e.g. "
                f"{missing[0]!r} (condition {condition!r}); embed the matching corpus"
            )
        return self.embeddings.embeddings[[self.index[u] for u in ids]]


def _array_hash(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def load_inputs(
    embeddings_path: str | Path,
    pool_path: str | Path,
    protocol_path: str | Path,
    conditions: Sequence[str] | None = None,
    cohort_path: str | Path | None = None,
) -> EvalInputs:
    """Load and cross-check the embeddings, the pool, the protocol and the AS-norm cohort
    (voices whose embeddings AS-norm rows normalise against; without one, the pool's).

    Raises:
        ProtocolError: the cohort holds a speaker of the protocol (its scores would be
            normalised against themselves), or a file does not match the embeddings.
    """
    from speakerrpl.data.protocols import Protocol, load_protocol, validate_protocol

    emb = EmbeddingSet.load(embeddings_path)
    pool = EmbeddingSet.load(pool_path)
    extra: dict[str, tuple[EmbeddingSet, str | Path]] = {"pool": (pool, pool_path)}
    cohort = None
    if cohort_path is not None:
        cohort = EmbeddingSet.load(cohort_path)
        extra["cohort"] = (cohort, cohort_path)
    for role, (other, path) in extra.items():
        if other.dim != emb.dim or other.frontend != emb.frontend:
            raise ProtocolError(
                f"{role} {path} ({other.frontend}, D={other.dim}) does not match embeddings "
                f"{embeddings_path} ({emb.frontend}, D={emb.dim})"
            )
    protocol = load_protocol(protocol_path)
    available = tuple(protocol.conditions)
    chosen = tuple(conditions) if conditions else available
    unknown = [c for c in chosen if c not in available]
    if unknown:
        raise ProtocolError(f"conditions {unknown} are not in the protocol's {list(available)}")
    # fail before any training when an id is missing or has the wrong speaker
    utterances = dict(zip(emb.utt_ids.tolist(), emb.speakers.tolist(), strict=True))
    validate_protocol(Protocol(protocol.folds, list(chosen), protocol.params), utterances)
    if cohort is not None:
        shared = sorted(set(cohort.speakers.tolist()) & _protocol_speakers(protocol, utterances))
        if shared:
            raise ProtocolError(
                f"cohort {cohort_path} holds {len(shared)} speaker(s) of the protocol, e.g. "
                f"{shared[0]!r}: a cohort must be other voices"
            )
    inputs = EvalInputs(emb, pool, protocol, chosen, cohort=cohort)
    inputs.index = {u: i for i, u in enumerate(emb.utt_ids.tolist())}
    inputs.hashes = {
        "embeddings": _array_hash(emb.embeddings, emb.utt_ids.astype("U")),
        "pool": _array_hash(pool.embeddings, pool.speakers.astype("U")),
        "protocol": str(protocol.to_dict()["hash"]),
    }
    if cohort is not None:
        inputs.hashes["cohort"] = _array_hash(cohort.embeddings, cohort.speakers.astype("U"))
    return inputs


def uses_cohort(params: Mapping[str, Any]) -> bool:
    """Whether identifier settings ``params`` normalise scores against a cohort (AS-norm)."""
    return params.get("score_norm") == "asnorm"


def _protocol_speakers(protocol: Any, utterances: Mapping[str, str]) -> set[str]:
    """Every speaker a protocol enrolls or tests."""
    out: set[str] = set()
    for fold in protocol.folds:
        out |= set(fold.targets)
        out |= {utterances[u] for u in [*fold.test_known, *fold.test_unknown]}
    return out


def compute_metrics(
    known: np.ndarray,
    labels: np.ndarray,
    unknown: np.ndarray,
    far: float = 0.01,
    accepted: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, float]:
    """Every table metric of one score set (values are fractions).

    With the deployed decision's ``accepted`` rows (boolean masks of the known and the
    unknown rows, :func:`deployed_accepts`) also the operating point: ``fa`` (strangers
    accepted), ``fr`` (targets rejected or misnamed) and ``fa_gap`` (``fa - far``: above zero
    the calibration accepts more than asked); NaN without.
    """
    trials, trial_labels = metrics.identification_trials(known, labels, unknown)
    out = {
        "acc": metrics.accuracy(known, labels),
        "eer": metrics.eer(trials, trial_labels),
        "oscr": metrics.oscr(known, labels, unknown),
        "auroc": metrics.auroc(known.max(axis=1), unknown.max(axis=1)),
        dir_key(far): metrics.dir_at_far(known, labels, unknown, far),
    }
    for p in (0.01, 0.05, 0.1):
        out[f"min_dcf_{p:g}"] = metrics.min_dcf(trials, trial_labels, p)
    fa = fr = float("nan")
    if accepted is not None:
        known_ok, unknown_ok = (np.asarray(a, dtype=bool) for a in accepted)
        fa = float(np.mean(unknown_ok)) if len(unknown) else 0.0
        fr = float(np.mean((known.argmax(axis=1) != labels) | ~known_ok))
    out.update(fa=fa, fr=fr, fa_gap=fa - far)
    return out


def deployed_accepts(est: Any, x: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Which rows of ``x`` (with their fused ``scores``) the fitted identifier's decision
    accepts: ``predict``'s rule, quality-aware where the decision is."""
    return np.asarray(est.decision_.accepts(scores.max(axis=1), est.condition_posterior(x)))


@contextmanager
def _members(est: Any, keep: np.ndarray) -> Iterator[None]:
    """Temporarily fuse only the members ``keep``."""
    saved = est.members_
    est.members_ = np.asarray(keep)
    try:
        yield
    finally:
        est.members_ = saved


def _row_scores(est: Any, how: str, x: np.ndarray) -> np.ndarray:
    """(N, K) fused scores, or (M, N, K) member scores for ``single``."""
    if how == SINGLE:
        return np.asarray(est.member_scores(x))
    if how == FUSION_SEL:
        return np.asarray(est.decision_function(x))
    keep = np.arange(est.settings.n_members) if how == FUSION_ALL else est.select("high")
    with _members(est, keep):
        return np.asarray(est.decision_function(x))


def fit_and_score(
    unit: Unit,
    inputs: EvalInputs,
    fold_index: int,
    seed: int,
    far: float,
    extra_params: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Fit ``unit`` on split ``fold_index``; return (JSON-able result, arrays for figures)."""
    from speakerrpl.identifier import OpenSetSpeakerIdentifier

    fold = inputs.protocol.folds[fold_index]
    targets = list(fold.targets)
    enroll_ids = [u for t in targets for u in fold.enroll[t]]
    x_enroll = inputs.rows_of(enroll_ids, "clean")
    y_enroll = [t for t in targets for _ in fold.enroll[t]]
    pool = (inputs.pool.embeddings, inputs.pool.speakers)
    params = {**extra_params, **unit.params, "random_state": seed}
    params.setdefault("frontend", inputs.embeddings.frontend)
    cohort = None
    if inputs.cohort is not None and uses_cohort(params):
        cohort = (inputs.cohort.embeddings, inputs.cohort.speakers.tolist())
    start = time.perf_counter()
    est = OpenSetSpeakerIdentifier(**params).fit(x_enroll, y_enroll, pool=pool, cohort=cohort)
    fit_seconds = time.perf_counter() - start
    col = {name: k for k, name in enumerate(est.classes_)}
    spk = inputs.embeddings.speakers[[inputs.index[u] for u in fold.test_known]]
    labels = np.array([col[s] for s in spk.tolist()], dtype=np.int64)
    rows: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for cond in inputs.conditions:
        xk = inputs.rows_of(fold.test_known, cond)
        xu = inputs.rows_of(fold.test_unknown, cond)
        arrays[f"{cond}|labels"] = labels
        for row, how in unit.rows.items():
            sk, su = _row_scores(est, how, xk), _row_scores(est, how, xu)
            entry: dict[str, Any] = {}
            if how == SINGLE:
                if unit.n_single:
                    sk, su = sk[: unit.n_single], su[: unit.n_single]
                per = [compute_metrics(a, labels, b, far) for a, b in zip(sk, su, strict=True)]
                entry["seed_metrics"] = per
                entry["metrics"] = {k: float(np.mean([p[k] for p in per])) for k in per[0]}
                sk, su = sk[0], su[0]  # figures show the first seed
            else:
                own = how == FUSION_SEL or (
                    how == FUSION_ALL and len(est.members_) == est.settings.n_members
                )
                accepted = None
                if own:  # the decision the identifier deploys
                    accepted = (deployed_accepts(est, xk, sk), deployed_accepts(est, xu, su))
                    arrays[f"{row}|{cond}|accepted_known"] = accepted[0]
                    arrays[f"{row}|{cond}|accepted_unknown"] = accepted[1]
                entry["metrics"] = compute_metrics(sk, labels, su, far, accepted)
            rows.setdefault(row, {})[cond] = entry
            arrays[f"{row}|{cond}|known"] = sk.astype(np.float32)
            arrays[f"{row}|{cond}|unknown"] = su.astype(np.float32)
    if unit.projection and fold_index == 0:
        arrays.update(_projection_arrays(est, inputs, fold, labels))
    info = {
        "threshold": float(est.threshold_),
        "confidence_threshold": float(est.confidence_threshold_),
        "decision_source": est.decision_.source,
        "fit_seconds": round(fit_seconds, 3),
        "members_kept": [int(m) for m in np.asarray(est.members_)],
        "targets": targets,
    }
    return {"rows": rows, "info": info}, arrays


def _projection_arrays(
    est: Any, inputs: EvalInputs, fold: Any, labels: np.ndarray
) -> dict[str, np.ndarray]:
    out = {
        "proj|known": est.features(inputs.rows_of(fold.test_known, "clean")),
        "proj|unknown": est.features(inputs.rows_of(fold.test_unknown, "clean")),
        "proj|labels": labels,
    }
    pts = est.points(0)
    k = len(est.classes_)
    for key in ("centre", "reciprocal"):
        if key in pts:
            out[f"proj|{key}"] = pts[key][:k]
    return out


def fingerprint(payload: Mapping[str, Any]) -> str:
    """Stable short hash of a JSON-able mapping."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def unit_paths(out_dir: Path, unit: Unit, fold_index: int) -> tuple[Path, Path]:
    """(JSON, NPZ) paths of one unit's stored split."""
    base = out_dir / "units" / unit.name / f"fold{fold_index:03d}"
    return base.with_suffix(".json"), base.with_suffix(".npz")


def load_unit(out_dir: Path, unit: Unit, fold_index: int, fp: str) -> dict[str, Any] | None:
    """The stored result when it exists and its fingerprint matches, else ``None``."""
    json_path, npz_path = unit_paths(out_dir, unit, fold_index)
    if not (json_path.is_file() and npz_path.is_file()):
        return None
    try:
        stored: dict[str, Any] = json.loads(json_path.read_text())
    except (OSError, ValueError):
        logger.warning("ignoring unreadable %s", json_path)
        return None
    if stored.get("fingerprint") != fp:
        logger.info("%s was made with other settings; recomputing", json_path)
        return None
    return stored


def save_unit(
    out_dir: Path,
    unit: Unit,
    fold_index: int,
    fp: str,
    result: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
) -> None:
    """Write the arrays, then the JSON (the JSON's presence marks the unit as finished)."""
    json_path, npz_path = unit_paths(out_dir, unit, fold_index)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = dict(arrays)
    with tempfile.NamedTemporaryFile(dir=json_path.parent, suffix=".npz", delete=False) as fb:
        np.savez_compressed(fb, **payload)
    os.replace(fb.name, npz_path)
    with tempfile.NamedTemporaryFile("w", dir=json_path.parent, suffix=".json", delete=False) as ft:
        json.dump({"fingerprint": fp, **result}, ft, indent=1)
    os.replace(ft.name, json_path)
    for path in (npz_path, json_path):
        path.chmod(0o644)


def load_arrays(out_dir: Path, unit: Unit, fold_index: int) -> dict[str, np.ndarray]:
    """The stored score arrays of one unit's split."""
    with np.load(unit_paths(out_dir, unit, fold_index)[1], allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
