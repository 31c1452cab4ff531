"""Validated settings of :class:`speakerrpl.identifier.OpenSetSpeakerIdentifier`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from speakerrpl.errors import InvalidInputError
from speakerrpl.identifier.class_extension import UNKNOWN_RULES
from speakerrpl.identifier.fusion import FUSIONS, SELECTIONS
from speakerrpl.identifier.score_norm import SCORE_NORMS
from speakerrpl.identifier.tails import BLEND_WEIGHTS, COMPENSATED_TAILS, COPIES_TAILS
from speakerrpl.identifier.tails import FRONTEND as TAILS_FRONTEND
from speakerrpl.nn.adapter import DEFAULT_HIDDEN, check_architecture
from speakerrpl.nn.ensemble import AdapterEnsemble
from speakerrpl.nn.losses import CENTRE_INITS
from speakerrpl.nn.methods import DEFAULT_METHOD, METHODS, Method, get_method
from speakerrpl.nn.methods import build_ensemble as build_method_ensemble
from speakerrpl.nn.train import TrainSettings
from speakerrpl.runtime import check_device_name

INPUT_NORMS = ("l2", "center_l2", "none")
SCORES = ("reciprocal", "centre")
CALIBRATIONS = ("quality", "tail", "max", "pool", "enrollment")
PUBLISHED_TRAINING = {"epochs": 75, "batch_size": 16, "lr": 0.01, "min_steps": 0}
"""Overrides that give the paper's training recipe exactly (the defaults are a faster one)."""

PRESETS: dict[str, dict[str, Any]] = {
    # the shipped default (the measured best, see docs/results.md): a fusion of 30 softmax
    # adapters on the enrollment alone (class extension only for K = 1), blended with the
    # centroid cosine score (cosine_blend, weight by household size)
    "default": {},
    # SpeakerRPL v2 with this project's shorter training (15 x 32, >= 90 steps)
    "rpl_v2": {"method": "rpl_v2"},
    # SpeakerRPL v2 exactly as published: 75 epochs x 16, zero centre points, tau 1,
    # momentum on the radius, eigenvalue-variance selection r = 10 of 30
    "rpl_v2_published": {
        "method": "rpl_v2", "cosine_blend": False, "channel_compensation": False,
        **PUBLISHED_TRAINING,
    },
    # v2 with the repairs of docs/calibration.md switched on (an ablation, not the default)
    "rpl_v2_repaired": {
        "method": "rpl_v2", "centre_init": "sphere", "tau": 0.04, "radius_plain": True,
    },
}  # fmt: skip
"""Named configurations: ``IdentifierSettings.preset(name, **overrides)``."""


@dataclass(frozen=True)
class IdentifierSettings:
    """Everything that defines an identifier; unknown keys and bad values are errors.

    Args:
        method: ``cosine`` (centroid baseline), ``softmax`` (default: the best measured open-set
            scorer as a 30-member fusion), ``logitnorm``, ``arpl``, ``rpl_v1``, ``rpl_v1_plus``
            or ``rpl_v2`` (SpeakerRPL v2; as published: ``preset("rpl_v2_published")``).
        n_models: ensemble size ``M`` (1 for ``cosine``).
        selection: ``low`` (eigenvalue-variance selection, rpl_v2 only), ``none``, ``high``.
        selection_r: members dropped per criterion (``None``: ``n_models // 3``, the published
            10 of 30). Selection drops the ``r`` members of highest centre-point and the ``r``
            of highest reciprocal-point eigenvalue variance, up to ``2r`` members, so with
            selection on (a method with points, ``selection`` not ``none``) ``2r < n_models``
            is required and checked here, before any training; ensembles of 1 or 2 members
            keep every member by default.
        fusion: ``logits`` (mean raw scores), ``zscore`` or ``prob``.
        tau: LogitNorm temperature; ``None`` takes the method's default (rpl_v2: 1.0, the
            published code's value; ``logitnorm``: 0.04, the LogitNorm paper's).
        temperature, weight_margin, beta: loss ``T``, ``lambda`` and SpeakerRPL+'s weight.
        use_logitnorm: rpl_v2's LogitNorm branch on/off (ablation).
        centre_init: rpl_v2 centre points start at ``zero`` (published) or on the unit
            ``sphere`` (so the LogitNorm branch keeps learning; ablation).
        radius_plain: train the radius without momentum / weight decay (ablation).
        score: rpl_v2 class score: ``reciprocal`` (``-<z, P>``, as published) or ``centre``
            (``-<z, Q>``).
        n_unknown, n_anchors, unknown_bound: class extension (docs/method.md, step 4).
        unknown_rule: how the unknown voices are picked: ``mean`` (published: mean cosine to
            the targets below ``unknown_bound``, alternately the most and the least similar)
            or ``per_target`` (the bound applies per target; each target in turn gets its own
            hardest allowed negative; ablation,
            :func:`~speakerrpl.identifier.class_extension.select_class_extension`).
        pool_utts_per_class: utterances used per pool class (None: as many as the largest
            enrollment, so pool classes do not outweigh 3-utterance targets).
        n_calibration: held-out pool voices for the threshold (never used as classes).
        augment: perturbed copies of every training row (embedding-level enrollment
            augmentation, :func:`~speakerrpl.identifier.training_set.augment_embeddings`);
            0 = none.
        augment_noise: norm of the Gaussian perturbation of each copy.
        epochs, batch_size, lr, lr_decay_at: training (default 15, 32, 0.01, 2/3; the
            published recipe is ``epochs=75, batch_size=16, min_steps=0``:
            ``IdentifierSettings(**PUBLISHED_TRAINING)``).
        min_steps: fewest optimizer steps per adapter: ``epochs`` is raised to
            ``ceil(min_steps / steps_per_epoch)`` when it gives fewer, so small training sets
            still train enough (default 90; measurements in ``docs/method.md``, "Measured
            defaults").
        hidden, out_dim, norm: adapter architecture.
        input_norm: ``l2`` (default), ``center_l2`` (subtract the pool mean first), ``none``.
        score_norm: ``none`` (default); for cosine ``asnorm`` (adaptive S-norm against the
            pool cohort); for methods with class extension (rpl_v2) ``extension``: each test's
            target scores standardised by the top fused scores of the synthetic unknown
            classes the ensemble was trained with (a test-side, T-norm-like cohort; needs
            ``n_unknown >= 2``; ablation). See :mod:`speakerrpl.identifier.score_norm`.
        cosine_blend: trained methods: blend the enrollment-centroid cosine score into the
            fused score with the household-size weight measured on development folds
            (:mod:`speakerrpl.identifier.blend`). ``None`` (default): on for the methods with a
            measured weight and the CAM++ frontend, off otherwise; ``False``: the adapters
            alone (as published); ``True``: on, an error where nothing was measured.
        channel_compensation: whiten the embeddings against channel variability with the
            WCCN model shipped for CAM++ before any scoring
            (:mod:`speakerrpl.identifier.channel`). ``None`` (default): on for the CAM++
            frontend and the methods whose stranger tails were measured with it, when the
            embeddings have CAM++'s size; ``False``: raw embeddings (as published); ``True``:
            on, an error for another frontend or embedding size.
        target_far: share of strangers the identifier may accept; the decision accepts when
            the calibrated confidence is ``>= 1 - target_far`` (see
            :mod:`speakerrpl.identifier.decision`).
        calibration: ``quality`` (default): the confidence comes from the stranger-score
            tails measured on development folds for the method's default recipe
            (:mod:`speakerrpl.identifier.tails`; other recipes fit one at enrollment), one per
            test condition where they were measured (the compensated CAM++ default up to
            K = 20), weighed by each clip's condition posterior
            (:mod:`speakerrpl.identifier.conditions`), and the threshold is
            ``confidence >= 1 - target_far``. ``tail``: the single tail of the condition where
            strangers score highest, for every clip (the previous default). The former
            raw-score rules stay selectable for comparison: ``pool`` (held-out synthetic
            voices), ``enrollment`` (each enrollment utterance vs the other enrolled
            speakers) or ``max`` (the stricter of both); their threshold is then expressed on
            the same confidence scale.
        calibration_margin: legacy rules only. ``alpha`` in [0, 1): the threshold ``t`` is
            raised to ``t + alpha * (s_min - t)``, ``s_min`` the lowest own-speaker score of the
            enrollment utterances (0 = the plain impostor rule, see
            :func:`~speakerrpl.identifier.calibration.raise_by_margin`); default 0.2 (why:
            ``docs/method.md``, "Measured defaults").
        threshold: explicit threshold on this model's raw best-target score (model specific:
            it is converted to the confidence scale, ``confidence_threshold_``).
        confidence_threshold: explicit threshold on the calibrated confidence scale in [0, 1]
            (the same meaning for every model kind and household size: pin this one).
        min_utterances: fewest enrollment utterances per speaker (None: 1 cosine, 2 others).
        unknown_label: what ``predict`` returns for a rejected utterance.
        random_state: seed of everything random.
        device: ``cpu`` (default) or ``cuda``.
        frontend: name of the embedding frontend, recorded by ``save`` and checked by ``load``.
            ``None`` (default) is taken to be CAM++: the measured stranger tails, blend weights
            and channel model apply. Embeddings from another model (a 192-d ECAPA-TDNN, say)
            should name it (``frontend="onnx"``), or set ``channel_compensation=False``; the
            CLI and the service always pass the frontend's name.

    Example:
        >>> IdentifierSettings(method="cosine").n_models
        30
    """

    method: str = DEFAULT_METHOD
    n_models: int = 30
    selection: str = "low"
    selection_r: int | None = None
    fusion: str = "logits"
    tau: float | None = None
    temperature: float = 1.0
    weight_margin: float = 5.0
    beta: float = 0.001
    use_logitnorm: bool = True
    centre_init: str = "zero"
    radius_plain: bool = False
    score: str = "reciprocal"
    n_unknown: int = 40
    n_anchors: int = 1
    unknown_bound: float = 0.3
    unknown_rule: str = "mean"
    pool_utts_per_class: int | None = None
    n_calibration: int = 20
    augment: int = 0
    augment_noise: float = 0.6
    epochs: int = 15
    batch_size: int = 32
    lr: float = 0.01
    lr_decay_at: float | None = 2.0 / 3.0
    min_steps: int = 90
    hidden: tuple[int, ...] = field(default=DEFAULT_HIDDEN)
    out_dim: int = 192
    norm: str = "batch"
    input_norm: str = "l2"
    score_norm: str = "none"
    cosine_blend: bool | None = None
    channel_compensation: bool | None = None
    target_far: float = 0.01
    calibration: str = "quality"
    calibration_margin: float = 0.2
    threshold: float | None = None
    confidence_threshold: float | None = None
    min_utterances: int | None = None
    unknown_label: str = "<unknown>"
    random_state: int = 0
    device: str = "cpu"
    frontend: str | None = None

    def __post_init__(self) -> None:
        get_method(self.method)
        choices = {
            "selection": SELECTIONS,
            "fusion": FUSIONS,
            "input_norm": INPUT_NORMS,
            "score": SCORES,
            "calibration": CALIBRATIONS,
            "score_norm": SCORE_NORMS,
            "centre_init": CENTRE_INITS,
            "unknown_rule": UNKNOWN_RULES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise InvalidInputError(
                    f"{name} must be one of {allowed}, got {getattr(self, name)!r}"
                )
        counts = {"n_models": 1, "n_anchors": 0, "n_unknown": 0, "selection_r": 0, "augment": 0}
        for name, low in counts.items():
            value = getattr(self, name)
            if (value is not None or name != "selection_r") and (
                not isinstance(value, int) or value < low
            ):
                raise InvalidInputError(f"{name} must be an int >= {low}, got {value!r}")
        self._check_selection()
        if not 0 <= self.target_far < 1:
            raise InvalidInputError(f"target_far must be in [0, 1), got {self.target_far}")
        if not 0 <= self.calibration_margin < 1:
            raise InvalidInputError(
                f"calibration_margin must be in [0, 1), got {self.calibration_margin}"
            )
        if self.confidence_threshold is not None:
            if self.threshold is not None:
                raise InvalidInputError(
                    "give threshold (raw score) or confidence_threshold, not both"
                )
            if not 0 <= self.confidence_threshold <= 1:
                raise InvalidInputError(
                    "confidence_threshold is on the calibrated confidence scale [0, 1], got "
                    f"{self.confidence_threshold}; a raw model score goes in threshold="
                )
        self._check_score_norm()
        if self.cosine_blend and (not self.method_spec.trains or self.method not in BLEND_WEIGHTS):
            measured = ", ".join(sorted(BLEND_WEIGHTS))
            raise InvalidInputError(
                f"cosine_blend=True needs a blend weight measured for method {self.method!r} "
                f"(measured: {measured}); pass cosine_blend=None or False"
            )
        if self.channel_compensation and self.frontend not in (None, TAILS_FRONTEND):
            raise InvalidInputError(
                f"channel_compensation=True needs CAM++ embeddings (frontend None or "
                f"{TAILS_FRONTEND!r}), got frontend {self.frontend!r}"
            )
        if not self.augment_noise >= 0:
            raise InvalidInputError(f"augment_noise must be >= 0, got {self.augment_noise}")
        if self.tau is not None and self.tau <= 0:
            raise InvalidInputError(f"tau must be > 0, got {self.tau}")
        check_device_name(self.device)
        if not self.unknown_label:
            raise InvalidInputError("unknown_label must be a non-empty string")
        if self.min_utterances is not None and self.min_utterances < 1:
            raise InvalidInputError(f"min_utterances must be >= 1, got {self.min_utterances}")
        check_architecture(1, self.hidden, self.out_dim, self.norm)
        self.train_settings()  # validates the optimisation values

    def _check_score_norm(self) -> None:
        spec = self.method_spec
        if self.score_norm == "asnorm" and spec.trains:
            raise InvalidInputError("score_norm='asnorm' applies to method='cosine' only")
        if self.score_norm == "extension":
            if not spec.class_extension:
                with_ext = [m.name for m in METHODS.values() if m.class_extension]
                raise InvalidInputError(
                    f"score_norm='extension' scores against the synthetic unknown classes, "
                    f"which only {with_ext} train with; got method={self.method!r}"
                )
            if self.n_unknown < 2:
                raise InvalidInputError(
                    f"score_norm='extension' needs n_unknown >= 2, got {self.n_unknown}"
                )

    def _check_selection(self) -> None:
        r = self.members_dropped
        if self.method_spec.has_points and self.selection != "none" and 2 * r >= self.n_members:
            raise InvalidInputError(
                f"selection_r={r} may drop all {self.n_members} members (2 * selection_r "
                f"must be < n_models); lower selection_r, raise n_models or set selection='none'"
            )

    @property
    def members_dropped(self) -> int:
        """``selection_r`` resolved: members dropped per selection criterion."""
        return default_selection_r(self.n_models) if self.selection_r is None else self.selection_r

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> IdentifierSettings:
        """The named configuration of :data:`PRESETS`, with ``overrides`` on top.

        Example:
            >>> IdentifierSettings.preset("rpl_v2_published").epochs
            75
        """
        if name not in PRESETS:
            raise InvalidInputError(f"preset must be one of {tuple(PRESETS)}, got {name!r}")
        return cls(**{**PRESETS[name], **overrides})

    @property
    def blends(self) -> bool:
        """``cosine_blend`` resolved: on by default where a weight was measured for the method
        and frontend (:mod:`speakerrpl.identifier.blend`), off for every other method."""
        if self.cosine_blend is not None:
            return self.cosine_blend
        return (
            self.method_spec.trains
            and self.method in BLEND_WEIGHTS
            and self.frontend in (None, TAILS_FRONTEND)
        )

    @property
    def compensates(self) -> bool:
        """``channel_compensation`` resolved from the settings alone: on by default for the
        CAM++ frontend and the methods with a tail measured on compensated embeddings. (A fit
        still skips it by default for embeddings of another size: ``compensation_``.)"""
        if self.channel_compensation is not None:
            return self.channel_compensation
        return self.frontend in (None, TAILS_FRONTEND) and self.method in COMPENSATED_TAILS

    @property
    def takes_copies(self) -> bool:
        """Whether a fit can use channel copies of the enrollment (``fit(..., copies=)``):
        they enter the cosine centroids, so the scorer must have a cosine part (``cosine``
        or a blend), unnormalised, on compensated CAM++ embeddings where the tables were
        measured (:data:`speakerrpl.identifier.tails.COPIES_TAILS`)."""
        cosine_part = not self.method_spec.trains or self.blends
        measured = self.method in COPIES_TAILS and self.frontend in (None, TAILS_FRONTEND)
        return cosine_part and measured and self.compensates and self.score_norm == "none"

    @property
    def method_spec(self) -> Method:
        """The registry entry of ``method``."""
        return METHODS[self.method]

    @property
    def n_members(self) -> int:
        """Ensemble size actually trained (1 for cosine)."""
        return self.n_models if self.method_spec.trains else 1

    @property
    def required_utterances(self) -> int:
        """Fewest enrollment utterances per speaker."""
        if self.min_utterances is not None:
            return self.min_utterances
        return self.method_spec.min_utterances

    def loss_params(self) -> dict[str, Any]:
        """Loss constructor arguments of the method (``tau`` resolved to its default)."""
        tau = self.method_spec.default_tau if self.tau is None else self.tau
        values = {**self.to_dict(), "tau": tau}
        return {name: values[name] for name in self.method_spec.loss_params}

    def train_settings(self) -> TrainSettings:
        """The optimisation part as :class:`~speakerrpl.nn.train.TrainSettings`."""
        return TrainSettings(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            lr_decay_at=self.lr_decay_at,
            min_steps=self.min_steps,
            radius_plain=self.radius_plain,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        out = asdict(self)
        out["hidden"] = list(self.hidden)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IdentifierSettings:
        """Inverse of :meth:`to_dict`; unknown keys are errors."""
        known = {f.name for f in fields(cls)}
        extra = sorted(set(data) - known)
        if extra:
            raise InvalidInputError(f"unknown identifier settings: {extra}")
        values = dict(data)
        if "hidden" in values:
            values["hidden"] = tuple(values["hidden"])
        return cls(**values)


def default_selection_r(n_models: int) -> int:
    """Members dropped per selection criterion when unset: a third of the ensemble.

    Example:
        >>> default_selection_r(30), default_selection_r(2)
        (10, 0)
    """
    return n_models // 3


def build_ensemble(
    s: IdentifierSettings, in_dim: int, n_classes: int
) -> tuple[AdapterEnsemble, list[torch.Generator]]:
    """The untrained ensemble ``s`` describes (:func:`speakerrpl.nn.methods.build_ensemble`)."""
    return build_method_ensemble(
        s.method_spec,
        s.loss_params(),
        n_members=s.n_members,
        in_dim=in_dim,
        n_classes=n_classes,
        out_dim=s.out_dim,
        hidden=s.hidden,
        norm=s.norm,
        random_state=s.random_state,
    )
