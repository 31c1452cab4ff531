"""Warm household changes: refit a trained ensemble for a changed enrollment from its last fit.

Adding or removing a person changes only a few rows of the class layer of every member, so
:func:`warm_ensemble` keeps the shared adapter layers (weights and BatchNorm statistics) and the
rows of every training class that is still there (targets, and the synthetic unknown / anchor
classes of the class extension), drops the rows of classes that are gone, and initialises a
row for each new class from the adapter features of the training rows: per member and
class-row parameter, the row whose scores (``<z, row>``) on the new person's rows match the
kept rows' mean own-class score and on everyone else's rows their mean cross score (a ridge
least-squares solve). The same holds for every loss of :data:`speakerrpl.nn.methods.METHODS`:
weights and reciprocal points alike are rows scored by inner products with the features (the
sign comes out of the kept rows' own scores; ARPL's distance term is matched only through its
inner-product part). The members are then fine-tuned
for :data:`WARM_STEPS` steps on the whole new training set, and the identifier recalibrates
as a cold fit does (the decision depends on K).

A warm update needs a trained fit with at least :data:`MIN_KEPT` training classes in common
with the new one and no more new classes than kept ones; otherwise, and after
:data:`MAX_WARM_UPDATES` warm updates in a row, the identifier fits cold
(:meth:`~speakerrpl.identifier.estimator.OpenSetSpeakerIdentifier.update`).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from speakerrpl.nn.ensemble import AdapterEnsemble

logger = logging.getLogger(__name__)

WARM_STEPS = 10
"""Fine-tuning steps of a warm update (a cold fit of the default recipe runs >= 90)."""

MAX_WARM_UPDATES = 8
"""Warm updates in a row before :meth:`update` fits cold again (drift and privacy bound)."""

RIDGE = 0.1
"""Ridge weight of a new class's initial row, relative to the mean feature energy."""

MIN_KEPT = 2
"""Fewest training classes shared with the previous fit for a warm start."""


def warm_plan(old: Sequence[str], new: Sequence[str]) -> str | None:
    """Why a warm start from classes ``old`` to ``new`` is not possible, or ``None`` if it is.

    Example:
        >>> warm_plan(["ann", "bob", "cy"], ["ann", "bob", "dan"]) is None
        True
        >>> warm_plan(["ann", "bob"], ["ann", "cy", "dan"])
        'only 1 of 3 training classes kept (need 2)'
    """
    kept = len(set(old) & set(new))
    if kept < MIN_KEPT:
        return f"only {kept} of {len(new)} training classes kept (need {MIN_KEPT})"
    if len(new) - kept > kept:
        return f"{len(new) - kept} new training classes outnumber the {kept} kept ones"
    return None


def _new_rows(
    old_rows: torch.Tensor, z: torch.Tensor, y: torch.Tensor, kept: np.ndarray, ridge: float
) -> torch.Tensor:
    """Rows (M, C, d) of one class-row parameter for the new training classes.

    ``old_rows`` (M, C, d) holds each kept class's previous row at its new index; ``z`` the
    features (M, N, d) of the training rows, ``y`` their labels (N,). A new class's row ``w``
    solves the ridge problem ``min ||z w - t||^2 + ridge * tr(z^T z) / d * ||w||^2`` whose
    targets ``t`` are the kept rows' mean score on their own class's rows (for the new class's
    rows) and their mean score on other classes' rows (for every other row): the new person
    starts on the scale of the people already there.
    """
    kept_idx = torch.as_tensor(np.flatnonzero(kept), device=z.device)
    new_idx = torch.as_tensor(np.flatnonzero(~kept), device=z.device)
    scores = torch.bmm(z, old_rows[:, kept_idx].transpose(1, 2))  # (M, N, kept)
    own = y.unsqueeze(1) == kept_idx.unsqueeze(0)  # (N, kept)
    t_own = (scores * own).sum(dim=(1, 2)) / own.sum().clamp_min(1)
    t_cross = (scores * ~own).sum(dim=(1, 2)) / (~own).sum().clamp_min(1)
    mine = (y.unsqueeze(1) == new_idx.unsqueeze(0)).to(z.dtype)  # (N, new)
    targets = t_cross.view(-1, 1, 1) + (t_own - t_cross).view(-1, 1, 1) * mine  # (M, N, new)
    gram = torch.bmm(z.transpose(1, 2), z)  # (M, d, d)
    scale = gram.diagonal(dim1=1, dim2=2).mean(dim=1).view(-1, 1, 1)
    eye = torch.eye(z.shape[2], dtype=z.dtype, device=z.device)
    w = torch.linalg.solve(gram + ridge * scale * eye, torch.bmm(z.transpose(1, 2), targets))
    rows = old_rows.clone()
    rows[:, new_idx] = w.transpose(1, 2)
    return rows


@torch.no_grad()
def warm_ensemble(
    ensemble: AdapterEnsemble,
    old_classes: Sequence[str],
    new_classes: Sequence[str],
    x: torch.Tensor,
    y: np.ndarray,
) -> AdapterEnsemble:
    """A copy of ``ensemble`` whose class rows follow ``new_classes`` (training-class names).

    Args:
        ensemble: the fitted ensemble (left unchanged).
        old_classes: its training classes, in row order.
        new_classes: the new training classes, in row order.
        x: the new training inputs (N, D) on the ensemble's device; y: their labels (N,)
            indexing ``new_classes`` (every new class needs rows).
    """
    out = copy.deepcopy(ensemble).eval()
    old_index = {c: i for i, c in enumerate(old_classes)}
    kept = np.asarray([c in old_index for c in new_classes])
    source = torch.as_tensor(
        [old_index.get(c, 0) for c in new_classes], dtype=torch.long, device=x.device
    )
    labels = torch.as_tensor(y, device=x.device)
    present = np.bincount(y, minlength=len(new_classes)) > 0
    if not present[~kept].all():
        missing = [c for c, k, p in zip(new_classes, kept, present, strict=True) if not k and not p]
        raise ValueError(f"new classes without training rows: {missing}")
    z = out.features(x)
    loss = out.loss
    for name, param in list(loss.named_parameters()):
        if param.dim() != 3 or param.shape[1] != len(old_classes):
            continue  # not a class-row parameter (e.g. the radius): kept as it is
        rows = _new_rows(param.data[:, source], z, labels, kept, RIDGE)
        setattr(loss, name, nn.Parameter(rows.contiguous()))
    loss.n_classes = len(new_classes)
    logger.info(
        "warm start: %d classes kept, %d new, %d dropped",
        int(kept.sum()),
        int((~kept).sum()),
        len(set(old_classes) - set(new_classes)),
    )
    return out


def warm_generators(random_state: int, n_updates: int, n_members: int) -> list[torch.Generator]:
    """Batch-order generators of one warm update (seeded by ``random_state`` and the count).

    Example:
        >>> len(warm_generators(0, 1, 3))
        3
    """
    children = np.random.SeedSequence([random_state, 104_729, n_updates]).spawn(n_members)
    return [torch.Generator().manual_seed(int(c.generate_state(1)[0])) for c in children]


__all__ = [
    "MAX_WARM_UPDATES",
    "MIN_KEPT",
    "RIDGE",
    "WARM_STEPS",
    "warm_ensemble",
    "warm_generators",
    "warm_plan",
]
