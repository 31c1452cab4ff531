"""The method registry: every open-set scorer declared once, and the ensemble it trains.

Each :class:`Method` says which loss its adapters train with (``None``: no adapter, the
centroid-cosine baseline), which identifier settings that loss takes, how the synthetic pool is
used (class extension or unlabelled unknown samples) and whether eigenvalue-variance selection
applies (only losses with both centre and reciprocal points). The identifier's settings, the
evaluation harness and the CLI all read :data:`METHODS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from speakerrpl.errors import InvalidInputError
from speakerrpl.nn.ensemble import AdapterEnsemble, StackedAdapter
from speakerrpl.nn.losses import (
    ARPLLoss,
    LogitNormLoss,
    OpenSetLoss,
    SoftmaxLoss,
    SpeakerRPLPlusLoss,
    SpeakerRPLv1Loss,
    SpeakerRPLv2Loss,
)

__all__ = ["DEFAULT_METHOD", "METHODS", "Method", "build_ensemble", "get_method"]

_RPL = ("temperature", "weight_margin")


@dataclass(frozen=True)
class Method:
    """One selectable open-set scorer.

    Args:
        name: the ``method=`` value.
        title: how result tables name it.
        loss: the adapters' loss class; ``None`` for the training-free cosine baseline.
        loss_params: identifier settings passed to the loss constructor by name.
        class_extension: trains on synthetic unknown + anchor classes from the pool.
        unknown_samples: uses pool voices as unlabelled unknown samples (SpeakerRPL+).
        has_points: the loss has centre and reciprocal points, so eigenvalue-variance
            selection applies.
        default_tau: LogitNorm temperature when the settings leave ``tau`` unset.
        min_utterances: fewest enrollment utterances per speaker by default.
    """

    name: str
    title: str
    loss: type[OpenSetLoss] | None
    loss_params: tuple[str, ...] = ()
    class_extension: bool = False
    unknown_samples: bool = False
    has_points: bool = False
    default_tau: float | None = None
    min_utterances: int = 2

    @property
    def trains(self) -> bool:
        """Whether the method trains an adapter ensemble."""
        return self.loss is not None


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("cosine", "Cosine (enrollment centroids)", None, min_utterances=1),
        Method("softmax", "Softmax adapter", SoftmaxLoss),
        Method("logitnorm", "LogitNorm adapter", LogitNormLoss, ("tau",), default_tau=0.04),
        Method("arpl", "ARPL", ARPLLoss, _RPL),
        Method("rpl_v1", "SpeakerRPL v1", SpeakerRPLv1Loss, _RPL),
        Method(
            "rpl_v1_plus", "SpeakerRPL+", SpeakerRPLPlusLoss, (*_RPL, "beta"), unknown_samples=True
        ),
        Method(
            "rpl_v2",
            "SpeakerRPL v2",
            SpeakerRPLv2Loss,
            (*_RPL, "tau", "use_logitnorm", "centre_init"),
            class_extension=True,
            has_points=True,
            default_tau=1.0,
        ),
    )
}
"""Every method, in the order result tables list them."""

DEFAULT_METHOD = "softmax"
"""The shipped default scorer: a fused ensemble of softmax adapters, blended with the centroid
cosine score by the identifier (``IdentifierSettings.cosine_blend``; ``docs/results.md``)."""


def get_method(name: str) -> Method:
    """The registered method ``name``; an unknown name lists the valid ones.

    Example:
        >>> get_method("rpl_v2").has_points, get_method("cosine").trains
        (True, False)
    """
    try:
        return METHODS[name]
    except KeyError:
        raise InvalidInputError(f"method must be one of {tuple(METHODS)}, got {name!r}") from None


def build_ensemble(
    method: Method,
    loss_params: Mapping[str, Any],
    *,
    n_members: int,
    in_dim: int,
    n_classes: int,
    out_dim: int,
    hidden: tuple[int, ...],
    norm: str,
    random_state: int,
) -> tuple[AdapterEnsemble, list[torch.Generator]]:
    """The untrained ensemble of ``method`` and each member's batch-order generator.

    Member ``m``'s initialisation and batch-order generators both derive from
    ``random_state`` and ``m``; nothing draws from torch's global generator.

    Example:
        >>> ens, orders = build_ensemble(get_method("softmax"), {}, n_members=2, in_dim=8,
        ...     n_classes=3, out_dim=4, hidden=(16,), norm="batch", random_state=0)
        >>> ens.n_members, len(orders)
        (2, 2)
    """
    if method.loss is None:
        raise InvalidInputError(f"method {method.name!r} trains no ensemble")
    children = np.random.SeedSequence(random_state).spawn(n_members)
    seeds = [c.generate_state(2, dtype=np.uint64) for c in children]
    inits = [torch.Generator().manual_seed(int(a) >> 1) for a, _ in seeds]
    orders = [torch.Generator().manual_seed(int(b) >> 1) for _, b in seeds]
    adapter = StackedAdapter.create(inits, in_dim, out_dim, hidden, norm)
    params = {k: loss_params[k] for k in method.loss_params}
    loss = method.loss.stack(
        [method.loss(n_classes, out_dim, generator=g, **params) for g in inits]
    )
    return AdapterEnsemble(adapter, loss), orders
