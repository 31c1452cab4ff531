"""The estimator users hold: enroll a few speakers, then name them or reject strangers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speakerrpl.errors import InvalidInputError, NotFittedError
from speakerrpl.identifier.blend import CosineBlend, cosine_blend_for
from speakerrpl.identifier.channel import ChannelCompensation, shipped_compensation
from speakerrpl.identifier.conditions import mismatch_posterior, shipped_condition_model
from speakerrpl.identifier.decision import Decision, calibrate_decision
from speakerrpl.identifier.fusion import eigenvalue_variance, fuse_scores, select_members
from speakerrpl.identifier.incremental import (
    MAX_WARM_UPDATES,
    WARM_STEPS,
    warm_ensemble,
    warm_generators,
    warm_plan,
)
from speakerrpl.identifier.persistence import load_identifier, save_identifier
from speakerrpl.identifier.score_norm import asnorm, extension_norm, top_stats
from speakerrpl.identifier.settings import IdentifierSettings, build_ensemble
from speakerrpl.identifier.tails import COMPENSATED, COPIES, COPIES_UP_TO_K, RAW
from speakerrpl.identifier.tails import FRONTEND as TAILS_FRONTEND
from speakerrpl.identifier.training_set import (
    assemble,
    augment_embeddings,
    check_cohort,
    check_copies,
    check_embeddings,
    check_labels,
    check_pool,
)
from speakerrpl.nn.ensemble import AdapterEnsemble
from speakerrpl.nn.losses import SpeakerRPLv2Loss
from speakerrpl.nn.train import TrainSettings, train_ensemble
from speakerrpl.runtime import resolve_device
from speakerrpl.vectors import centroids, l2_normalize

logger = logging.getLogger(__name__)


class OpenSetSpeakerIdentifier:
    """Few-shot open-set speaker identifier (default: :data:`speakerrpl.nn.methods.DEFAULT_METHOD`).

    Decisions: ``decision_function(X)`` gives raw fused target scores (N, K), whose scale
    depends on the model kind. ``confidence(X)`` maps the best one to a calibrated confidence
    in [0, 1] on one scale for every method and household size: ``1 -`` the estimated share of
    strangers scoring at least as high (:mod:`speakerrpl.identifier.decision`); where
    per-condition tails were measured (the compensated CAM++ default), that share is read for
    what each clip sounds like (its condition posterior, ``condition_posterior(X)``).
    ``predict`` accepts when ``confidence >= confidence_threshold_`` (``1 - target_far``
    unless pinned with ``confidence_threshold=``); ``threshold_`` is that threshold on the raw
    score read by the single tail (``calibration="tail"``'s rule), which is what a score
    without its embedding is judged by (diarization naming, the service's enrollment hygiene
    check). Works for any K >= 1 (trained methods need the pool for K = 1).

    Args:
        settings: an :class:`~speakerrpl.identifier.settings.IdentifierSettings`; keyword
            arguments (``method=``, ``n_models=``, ``selection=``, ``fusion=``, ``tau=``,
            ``n_unknown=``, ``n_anchors=``, ``epochs=``, ``target_far=``, ``threshold=``,
            ``random_state=``, ``device=``, ``frontend=``, ``confidence_threshold=``, ...)
            override its fields.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> means = rng.normal(size=(3, 16))
        >>> X = np.repeat(means, 4, axis=0) + 0.1 * rng.normal(size=(12, 16))
        >>> y = np.repeat(["ann", "bob", "cy"], 4)
        >>> clf = OpenSetSpeakerIdentifier(method="cosine").fit(X, y)
        >>> clf.predict(X[:1]).tolist(), clf.decision_function(X).shape
        (['ann'], (12, 3))
        >>> bool(clf.confidence(X[:1])[0] >= clf.confidence_threshold_), clf.confidence_threshold_
        (True, 0.99)
    """

    ensemble_: AdapterEnsemble | None
    members_: np.ndarray
    classes_: list[str]
    training_classes_: list[str]
    threshold_: float
    confidence_threshold_: float
    decision_: Decision
    n_updates_: int
    update_mode_: str
    copies_used_: bool

    def __init__(self, settings: IdentifierSettings | None = None, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - {f.name for f in fields(IdentifierSettings)})
        if unknown:
            raise InvalidInputError(f"unknown identifier settings: {unknown}")
        self.settings = replace(settings or IdentifierSettings(), **kwargs)

    # ------------------------------------------------- scikit-learn parameters
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Every setting by name (scikit-learn's estimator API; ``deep`` has no effect).

        ``OpenSetSpeakerIdentifier(**clf.get_params())`` builds an unfitted twin, which is
        what ``sklearn.base.clone`` and grid searches do.
        """
        return {f.name: getattr(self.settings, f.name) for f in fields(IdentifierSettings)}

    def set_params(self, **params: Any) -> OpenSetSpeakerIdentifier:
        """Change settings by name (validated as in ``__init__``); takes effect at the next fit."""
        unknown = sorted(set(params) - {f.name for f in fields(IdentifierSettings)})
        if unknown:
            raise InvalidInputError(f"unknown identifier settings: {unknown}")
        self.settings = replace(self.settings, **params)
        return self

    @property
    def n_features_in_(self) -> int:
        """Embedding dimension seen at fit (scikit-learn's name for ``dim_``)."""
        return self.dim_

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's tags: a classifier that needs labels (called only by scikit-learn)."""
        from sklearn.utils import ClassifierTags, Tags, TargetTags

        return Tags("classifier", TargetTags(required=True), classifier_tags=ClassifierTags())

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        X: np.ndarray,
        y: Sequence[object],
        pool: object = None,
        pool_labels: Sequence[object] | None = None,
        *,
        copies: tuple[np.ndarray, Sequence[object]] | None = None,
        cohort: tuple[np.ndarray, Sequence[object]] | None = None,
    ) -> OpenSetSpeakerIdentifier:
        """Enroll the speakers of ``y`` from embeddings ``X`` (N, D).

        Args:
            X: enrollment embeddings (N, D).
            y: speaker name of each row.
            pool: synthetic-voice embeddings for class extension and calibration, either
                ``(X_pool, y_pool)`` or an (P, D) array with ``pool_labels``.
            pool_labels: voice name of each pool row (when ``pool`` is an array).
            copies: multi-condition enrollment, ``(X_copies, y_copies)``: embeddings of channel
                copies of the enrollment clips (:func:`speakerrpl.synth.enrollment_copies.
                enrollment_copies`), for every enrolled speaker. They join the clips in the
                cosine centroids (the adapters train on the clips alone), and the tails and
                blend weights measured that way apply (``copies_used_``). Needs a scorer with
                a cosine part on compensated CAM++ embeddings
                (:attr:`IdentifierSettings.takes_copies`); households over
                :data:`~speakerrpl.identifier.tails.COPIES_UP_TO_K` are fitted without them
                (not measured there; logged).
            cohort: ``score_norm="asnorm"`` only: ``(X_cohort, y_cohort)``, embeddings of
                voices to normalise scores against (their per-voice centroids form the
                cohort). Without it the cohort is the pool's extension voices. The cohort
                should sound like the people scored: against the espeak-ng pool AS-norm
                raised cosine's EER, against voices of the evaluation engines it lowered it
                (``docs/calibration.md``, "Cohort score normalisation").
        """
        s = self.settings
        self._reset()
        x = check_embeddings(X)
        classes, labels = check_labels(y, x.shape[0], s)
        pool_xy = check_pool(pool, pool_labels, x.shape[1])
        cohort_xy = check_cohort(cohort, x.shape[1], s.score_norm)
        self._device = self._check_device(s.device)
        self.dim_, self.classes_ = x.shape[1], classes
        self._set_compensation(x.shape[1])
        ref = pool_xy[0] if pool_xy is not None and s.input_norm == "center_l2" else x
        self.mean_ = np.zeros(x.shape[1])
        if s.input_norm == "center_l2":
            self.mean_ = self._compensate(ref).mean(axis=0)
        xp = self._prep(x)
        extra = self._prepared_copies(copies, classes)
        ts = assemble(xp, labels, classes, self._prep_pool(pool_xy), s)
        self.training_classes_ = ts.class_names
        if s.score_norm == "extension" and self._n_unknown < 2:
            raise InvalidInputError(
                f"score_norm='extension' needs >= 2 synthetic unknown classes, got "
                f"{self._n_unknown}: pass a pool (pool=) with voices below unknown_bound="
                f"{s.unknown_bound}"
            )
        if not s.method_spec.trains:
            self.centroids_ = _centroids(xp, labels, extra)
            self.ensemble_ = None
            self.members_ = np.arange(1)
            if s.score_norm != "none":
                cohort_centroids = ts.cohort
                if cohort_xy is not None:
                    cohort_centroids = _centroids(self._prep(cohort_xy[0]), cohort_xy[1], None)
                if cohort_centroids is None:
                    raise InvalidInputError(
                        f"score_norm={s.score_norm!r} needs a cohort: pass pool= or cohort="
                    )
                self.cohort_ = np.asarray(cohort_centroids, dtype=np.float32)
                self.cohort_stats_ = top_stats(self.centroids_ @ self.cohort_.T)
        else:
            self._train(ts)
            self._set_blend(xp, labels, extra)
        self._calibrate(xp, labels, ts.x_calibration)
        self._note_enrollment_condition(x)
        self.n_updates_, self.update_mode_ = 0, "cold"
        return self

    def update(
        self,
        X: np.ndarray,
        y: Sequence[object],
        pool: object = None,
        pool_labels: Sequence[object] | None = None,
        steps: int = WARM_STEPS,
        *,
        copies: tuple[np.ndarray, Sequence[object]] | None = None,
    ) -> OpenSetSpeakerIdentifier:
        """Refit for a changed enrollment, warm-starting from this fit (a household change).

        ``X, y, pool, copies`` are what :meth:`fit` would get for the new household: *every*
        enrolled speaker (the identifier keeps no enrollment data), people added, removed or
        given more clips. A trained ensemble keeps its shared layers and the rows of the classes
        still there, initialises rows for new people from their adapter features and
        fine-tunes ``steps`` steps (:mod:`speakerrpl.identifier.incremental`); then the
        decision is recalibrated for the new K as by :meth:`fit`. It fits cold instead when
        the method trains nothing (``cosine``: a fit is exact and fast), when too few classes
        are kept, or after ``MAX_WARM_UPDATES`` warm updates in a row. ``update_mode_`` says
        which ran (``warm`` / ``cold``), ``n_updates_`` counts the warm updates since the
        last cold fit (saved with the model).

        Example:
            >>> rng = np.random.default_rng(0)
            >>> means = rng.normal(size=(4, 16))
            >>> X = np.repeat(means, 4, axis=0) + 0.1 * rng.normal(size=(16, 16))
            >>> y = np.repeat(["ann", "bob", "cy", "dan"], 4)
            >>> clf = OpenSetSpeakerIdentifier(n_models=2, hidden=(32,), out_dim=8)
            >>> clf = clf.fit(X[:12], y[:12]).update(X, y)
            >>> clf.update_mode_, clf.classes_, clf.predict(X[12:13]).tolist()
            ('warm', ['ann', 'bob', 'cy', 'dan'], ['dan'])
        """
        self._check_fitted()
        s = self.settings
        if not s.method_spec.trains or self.ensemble_ is None:
            return self.fit(X, y, pool, pool_labels, copies=copies)
        if self.n_updates_ >= MAX_WARM_UPDATES:
            logger.info("cold refit after %d warm updates", self.n_updates_)
            return self.fit(X, y, pool, pool_labels, copies=copies)
        if not isinstance(steps, int) or steps < 1:
            raise InvalidInputError(f"steps must be an int >= 1, got {steps!r}")
        x = check_embeddings(X, self.dim_)
        classes, labels = check_labels(y, x.shape[0], s)
        xp = self._prep(x)
        ts = assemble(
            xp, labels, classes, self._prep_pool(check_pool(pool, pool_labels, self.dim_)), s
        )
        reason = warm_plan(self.training_classes_, ts.class_names)
        if reason is not None:
            logger.info("cold refit: %s", reason)
            return self.fit(X, y, pool, pool_labels, copies=copies)
        saved = dict(self.__dict__)
        try:
            self._warm(xp, labels, classes, ts, steps, copies)
            self._note_enrollment_condition(x)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)  # a failed update leaves the previous fit intact
            raise
        return self

    def _warm(
        self,
        xp: np.ndarray,
        labels: np.ndarray,
        classes: list[str],
        ts: Any,
        steps: int,
        copies: tuple[np.ndarray, Sequence[object]] | None,
    ) -> None:
        s, old = self.settings, self.ensemble_
        assert old is not None  # update() fits cold without an ensemble
        extra = self._prepared_copies(copies, classes)  # checked before any training
        xt = torch.as_tensor(ts.x, device=self._device)
        ens = warm_ensemble(old, self.training_classes_, ts.class_names, xt, ts.y)
        count = self.n_updates_ + 1
        orders = warm_generators(s.random_state, count, s.n_members)
        for name in ("_kept_ensemble", "zstats_", "decision_", "threshold_"):
            self.__dict__.pop(name, None)
        self.classes_, self.training_classes_ = classes, ts.class_names
        self._fit_ensemble(ens, ts, orders, replace(s.train_settings(), epochs=1, min_steps=steps))
        self._set_blend(xp, labels, extra)
        self._calibrate(xp, labels, ts.x_calibration)
        self.n_updates_, self.update_mode_ = count, "warm"

    def _set_blend(
        self, xp: np.ndarray, labels: np.ndarray, extra: tuple[np.ndarray, list[int]] | None
    ) -> None:
        """The enrollment centroids and the cosine blend for this household size, if blending."""
        for name in ("centroids_", "blend_"):
            self.__dict__.pop(name, None)
        if self.settings.blends:
            self.centroids_ = _centroids(xp, labels, extra)
            self.blend_ = cosine_blend_for(self.settings.method, len(self.classes_), self.table_set)

    def _prepared_copies(
        self, copies: tuple[np.ndarray, Sequence[object]] | None, classes: list[str]
    ) -> tuple[np.ndarray, list[int]] | None:
        """Checked and prepared ``copies`` with their class indices, or ``None`` when unused;
        sets ``copies_used_``."""
        self.copies_used_ = False
        if copies is None:
            return None
        s = self.settings
        if not s.takes_copies:
            raise InvalidInputError(
                f"copies= enter the cosine centroids, measured for the compensated CAM++ "
                f"default and method='cosine'; these settings (method={s.method!r}, "
                f"cosine_blend={s.cosine_blend}, channel_compensation={s.channel_compensation}, "
                f"score_norm={s.score_norm!r}) cannot use them"
            )
        if not self.compensated:
            raise InvalidInputError(
                f"copies= were measured on channel-compensated {TAILS_FRONTEND} embeddings; "
                f"these {self.dim_}-d embeddings are not compensated"
            )
        xc, names = check_copies(copies, self.dim_, classes)
        if len(classes) > COPIES_UP_TO_K:
            logger.info(
                "%d enrolled speakers: enrollment copies were measured up to K = %d; fitting "
                "without them", len(classes), COPIES_UP_TO_K,
            )  # fmt: skip
            return None
        self.copies_used_ = True
        return self._prep(xc), [classes.index(n) for n in names]

    @property
    def table_set(self) -> str:
        """The measured tables this fit reads (:func:`speakerrpl.identifier.tails.tables`)."""
        if getattr(self, "copies_used_", False):
            return COPIES
        return COMPENSATED if self.compensated else RAW

    def _set_compensation(self, dim: int) -> None:
        """Keep the shipped channel model when the settings ask for it and ``dim`` fits."""
        self.__dict__.pop("compensation_", None)
        s = self.settings
        if not s.compensates:
            return
        model = shipped_compensation(TAILS_FRONTEND)
        if dim == model.dim:
            self.compensation_ = model
        elif s.channel_compensation:
            raise InvalidInputError(
                f"channel_compensation=True: the shipped channel model is for {model.dim}-d "
                f"CAM++ embeddings, got {dim}-d; pass channel_compensation=None or False"
            )

    @property
    def compensated(self) -> bool:
        """Whether this fit scores channel-compensated embeddings (``compensation_``)."""
        return hasattr(self, "compensation_")

    def _compensate(self, x: np.ndarray) -> np.ndarray:
        model: ChannelCompensation | None = getattr(self, "compensation_", None)
        return np.asarray(x, dtype=np.float32) if model is None else model.apply(x)

    def _reset(self) -> None:
        """Forget everything a previous fit derived (fitted attributes and scoring caches)."""
        for name in [n for n in vars(self) if n.endswith("_") or n == "_kept_ensemble"]:
            delattr(self, name)

    def _prep_pool(
        self, pool: tuple[np.ndarray, np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        return None if pool is None else (self._prep(pool[0]), pool[1])

    @staticmethod
    def _check_device(device: str) -> torch.device:
        return torch.device(resolve_device(device))

    def _prep(self, x: np.ndarray) -> np.ndarray:
        out = self._compensate(x) - self.mean_.astype(np.float32)
        if self.settings.input_norm != "none":
            out = l2_normalize(out)
        return out

    def _train(self, ts: Any) -> None:
        s = self.settings
        ens, orders = build_ensemble(s, self.dim_, len(ts.class_names))
        self._fit_ensemble(ens.to(self._device), ts, orders, s.train_settings())

    def _fit_ensemble(
        self, ens: AdapterEnsemble, ts: Any, orders: list[torch.Generator], how: TrainSettings
    ) -> None:
        """Train ``ens`` on the training set ``ts`` and keep it (with member selection)."""
        s, dev = self.settings, self._device
        xu = None if ts.x_unknown is None else torch.as_tensor(ts.x_unknown, device=dev)
        xa, ya = augment_embeddings(
            ts.x, ts.y, s.augment, s.augment_noise, s.random_state, s.input_norm != "none"
        )
        x, y = torch.as_tensor(xa, device=dev), torch.as_tensor(ya, device=dev)
        train_ensemble(ens, x, y, orders, how, xu)
        self.ensemble_ = ens
        self.members_ = np.arange(s.n_members)
        if s.method_spec.has_points and s.selection != "none":
            self.members_ = self.select(s.selection)
        logger.info("kept %d of %d members", len(self.members_), s.n_members)

    def select(self, mode: str) -> np.ndarray:
        """Members eigenvalue-variance selection keeps in ``mode`` (``low``, ``high``, ``none``).

        Uses each member's centre and reciprocal points of the target + unknown classes and
        ``settings.members_dropped`` (see :func:`~speakerrpl.identifier.fusion.select_members`);
        ``fit`` stores ``select(settings.selection)`` as ``members_``.
        """
        loss: Any = self.ensemble_.loss if self.ensemble_ is not None else None
        if loss is None or not self.settings.method_spec.has_points:
            raise InvalidInputError(f"method {self.settings.method!r} has no points to select by")
        rows = len(self.classes_) + self._n_unknown
        v_q = eigenvalue_variance(loss.centre_points.detach().cpu().numpy()[:, :rows])
        v_p = eigenvalue_variance(loss.reciprocal_points.detach().cpu().numpy()[:, :rows])
        return select_members(v_q, v_p, self.settings.members_dropped, mode)

    @property
    def _n_unknown(self) -> int:
        """Synthetic unknown classes trained on (their columns follow the K targets)."""
        return sum(c.startswith("unknown:") for c in self.training_classes_)

    def _calibrate(self, xp: np.ndarray, labels: np.ndarray, calib: np.ndarray | None) -> None:
        ref = xp if calib is None else np.concatenate([xp, calib])
        self.zstats_ = self._target_score_stats(ref)
        own = np.eye(len(self.classes_), dtype=bool)[labels]
        fused = self._fused_scores(xp)
        cross = np.where(own, -np.inf, fused)
        pool = None if calib is None else self._fused_scores(calib)
        self.decision_ = calibrate_decision(self.settings, fused[own], cross, pool, self.table_set)
        self.threshold_ = self.decision_.score_threshold
        self.confidence_threshold_ = self.decision_.confidence_threshold

    def _target_score_stats(self, xp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each member's mean and std (M,) of its target scores on ``xp``, in row chunks.

        Streaming sums keep memory at one chunk's scores (at K = 1000 all of them would
        be 30 x 10,000 x 1,000 floats).
        """
        members = self.settings.n_members
        total, squares, count = np.zeros(members), np.zeros(members), 0
        for start in range(0, xp.shape[0], 1024):
            lg = self._member_logits(xp[start : start + 1024], all_members=True, all_classes=False)
            total += lg.sum(axis=(1, 2), dtype=np.float64)
            squares += np.square(lg, dtype=np.float64).sum(axis=(1, 2))
            count += lg.shape[1] * lg.shape[2]
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
        return mean, np.maximum(std, 1e-12)

    # ---------------------------------------------------------------- inference
    def _check_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise NotFittedError("this OpenSetSpeakerIdentifier is not fitted; call fit() first")

    def _scoring_ensemble(self, all_members: bool) -> AdapterEnsemble:
        """The trained ensemble, or a cached copy of only the kept members (``members_``)."""
        ens = self.ensemble_
        assert ens is not None
        keep = tuple(int(m) for m in self.members_)
        if all_members or keep == tuple(range(ens.n_members)):
            return ens
        cached = getattr(self, "_kept_ensemble", None)
        if cached is None or cached[0] is not ens or cached[1] != keep:
            cached = (ens, keep, ens.subset(keep))
            self._kept_ensemble = cached
        return cached[2]

    @torch.no_grad()
    def _member_logits(
        self, xp: np.ndarray, all_members: bool, all_classes: bool, extra_columns: int = 0
    ) -> np.ndarray:
        """Class scores (M, N, C) of prepared inputs, float32.

        Only the kept members unless ``all_members``; only the K target columns (and the
        ``extra_columns`` after them) unless ``all_classes`` (the large-K enrollments would
        otherwise hold M x N x C scores).
        """
        if self.ensemble_ is None:
            raw = xp @ self.centroids_.T
            if self.settings.score_norm == "none":
                return raw[None]
            return asnorm(raw, xp @ self.cohort_.T, self.cohort_stats_)[None].astype(np.float32)
        ens = self._scoring_ensemble(all_members)
        columns = None if all_classes else len(self.classes_) + extra_columns
        chunks = []
        for start in range(0, xp.shape[0], 4096):
            xb = torch.as_tensor(xp[start : start + 4096], device=self._device)
            z = ens.features(xb)
            if self.settings.score == "centre" and isinstance(ens.loss, SpeakerRPLv2Loss):
                lg = -torch.bmm(z, ens.loss.centre_points[:, :columns].transpose(1, 2))
            else:
                lg = ens.loss.logits(z)[..., :columns]
            chunks.append(lg.cpu().numpy())
        return np.concatenate(chunks, axis=1)

    def _fused_scores(self, xp: np.ndarray) -> np.ndarray:
        """Fused target scores (N, K) of the kept members for prepared inputs.

        With ``score_norm="extension"`` the unknown-class columns are fused too and each
        row's target scores are standardised by its top unknown-class scores. With a cosine
        blend (``settings.blends``, :mod:`.blend`) they are blended with the centroid cosine
        scores.
        """
        keep = self.members_
        stats = (self.zstats_[0][keep], self.zstats_[1][keep])
        rule, k = self.settings.fusion, len(self.classes_)
        cohort = self._n_unknown if self.settings.score_norm == "extension" else 0
        lg = self._member_logits(xp, False, all_classes=rule == "prob", extra_columns=cohort)
        if cohort:
            fused = fuse_scores(lg, k + cohort, rule, stats)
            fused = extension_norm(fused[:, :k], fused[:, k : k + cohort])
        else:
            fused = fuse_scores(lg, k, rule, stats)
        blend: CosineBlend | None = getattr(self, "blend_", None)
        if blend is None:
            return fused
        return blend.combine(xp @ self.centroids_.T, fused)

    def _inputs(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return self._prep(check_embeddings(X, self.dim_))

    def member_scores(self, X: np.ndarray) -> np.ndarray:
        """Every member's raw target scores (M, N, K), kept or not (see ``members_``)."""
        lg = self._member_logits(self._inputs(X), all_members=True, all_classes=False)
        return lg.astype(np.float64)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Fused target scores (N, K), columns in ``classes_`` order; higher = that speaker."""
        return self._fused_scores(self._inputs(X))

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Highest target score of each row (N,); low = likely a stranger."""
        return self.decision_function(X).max(axis=1)

    def confidence(self, X: np.ndarray) -> np.ndarray:
        """Calibrated confidence (N,) in [0, 1] that each row is its best-scoring target.

        ``1 -`` the estimated share of strangers that score at least as high: the same scale
        for every method and household size (``predict`` accepts ``>= confidence_threshold_``).
        """
        best = self.decision_function(X).max(axis=1)
        return self.decision_.confidence(best, self.condition_posterior(X))

    def condition_posterior(self, X: np.ndarray) -> np.ndarray | None:
        """Each row's condition posterior (N, C) relative to the enrollment's
        (:func:`.conditions.mismatch_posterior`) where the decision is quality-aware
        (``calibration="quality"``), else ``None``."""
        if not self.decision_.quality_aware:
            return None
        model = shipped_condition_model(self.settings.frontend or TAILS_FRONTEND)
        test = model.posterior(check_embeddings(X, self.dim_))
        enrolled = getattr(self, "enrollment_condition_", None)
        if enrolled is None:  # a model saved before the enrollment's posterior was kept
            return test
        return mismatch_posterior(test, enrolled, model.names)

    def _note_enrollment_condition(self, x: np.ndarray) -> None:
        """Keep the enrollment clips' condition posteriors (quality-aware decisions only)."""
        self.__dict__.pop("enrollment_condition_", None)
        if self.decision_.quality_aware:
            model = shipped_condition_model(self.settings.frontend or TAILS_FRONTEND)
            self.enrollment_condition_ = model.posterior(x)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Speaker names, or ``unknown_label`` where the confidence is below the threshold.

        With a single stranger tail, equivalently where the best raw score is below
        ``threshold_`` (the confidence is monotone in the best score); a quality-aware
        decision reads each row's condition posterior too.
        """
        scores = self.decision_function(X)
        names = np.asarray(self.classes_, dtype=object)[scores.argmax(axis=1)]
        accepted = self.decision_.accepts(scores.max(axis=1), self.condition_posterior(X))
        names[~accepted] = self.settings.unknown_label
        return names

    def score(self, X: np.ndarray, y: Sequence[object]) -> float:
        """Open-set accuracy: the share of rows whose ``predict`` equals ``y``.

        Strangers count as correct only when ``y`` names them ``unknown_label``.
        """
        truth = np.asarray([str(v) for v in y], dtype=object)
        if truth.shape != (np.asarray(X).shape[0],):
            raise InvalidInputError(f"need one label per row, got {truth.shape} for {len(X)} rows")
        return float(np.mean(self.predict(X) == truth))

    @torch.no_grad()
    def features(self, X: np.ndarray, member: int = 0) -> np.ndarray:
        """Adapter features (N, d) of one member (for plots); the prepared inputs for cosine."""
        xp = self._inputs(X)
        if self.ensemble_ is None:
            return xp
        z = self.ensemble_.features(torch.as_tensor(xp, device=self._device))[member]
        return z.cpu().numpy()

    def points(self, member: int = 0) -> dict[str, np.ndarray]:
        """One member's learnt points (rows in ``training_classes_`` order)."""
        self._check_fitted()
        if self.ensemble_ is None:
            return {"centroids": self.centroids_.copy()}
        names = {"reciprocal_points": "reciprocal", "centre_points": "centre", "weight": "weight"}
        return {
            short: p.detach()[member].cpu().numpy()
            for name, p in self.ensemble_.loss.named_parameters()
            if (short := names.get(name))
        }

    # ------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` + ``weights.safetensors`` into ``directory``."""
        self._check_fitted()
        return save_identifier(self, Path(directory))

    @classmethod
    def load(
        cls, directory: str | Path, frontend: str | None = None, dim: int | None = None
    ) -> OpenSetSpeakerIdentifier:
        """Read a saved identifier; a differing ``frontend``/``dim`` raises ModelMismatchError."""
        return load_identifier(cls, Path(directory), frontend, dim)


__all__ = ["OpenSetSpeakerIdentifier"]


def _centroids(
    xp: np.ndarray, labels: np.ndarray, extra: tuple[np.ndarray, list[int]] | None
) -> np.ndarray:
    """Unit centroids (K, D) of the prepared enrollment rows, with their copies when given."""
    if extra is None:
        return centroids(xp, labels.tolist())[1].astype(np.float32)
    rows = np.concatenate([xp, extra[0]])
    return centroids(rows, [*labels.tolist(), *extra[1]])[1].astype(np.float32)
