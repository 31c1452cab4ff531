"""Open-set losses: the formulas of docs/method.md by direct loops, ensemble axis, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from speakerrpl.errors import InvalidInputError
from speakerrpl.nn.losses import (
    ARPLLoss,
    LogitNormLoss,
    SoftmaxLoss,
    SpeakerRPLPlusLoss,
    SpeakerRPLv1Loss,
    SpeakerRPLv2Loss,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


M, B, C, D = 2, 5, 4, 3


def _ce(logits: list[float], y: int) -> float:
    top = max(logits)
    return -(logits[y] - top - math.log(sum(math.exp(v - top) for v in logits)))


def _spec_v2(z, y, p, q, r, t, lam, tau) -> list[float]:
    """docs/method.md step 6, one member at a time, one sample at a time, plain Python floats."""
    out = []
    for m in range(len(z)):
        total = 0.0
        for b in range(len(z[m])):
            zb, yb = z[m][b], y[m][b]
            dot = [sum(zb[j] * p[m][c][j] for j in range(D)) for c in range(C)]
            l_rpl = _ce([-v / t for v in dot], yb)
            dist = sum((zb[j] - p[m][yb][j]) ** 2 for j in range(D)) / D
            l_margin = max(0.0, dist - r[m] + 1.0)
            mm = [-sum(zb[j] * q[m][c][j] for j in range(D)) / t for c in range(C)]
            norm = math.sqrt(sum(v * v for v in mm))
            l_ln = _ce([v / (tau * norm) for v in mm], yb)
            total += l_rpl + lam * l_margin + l_ln
        out.append(total / len(z[m]))
    return out


@pytest.mark.parametrize(("t", "lam", "tau"), [(1.0, 5.0, 1.0), (0.5, 2.0, 0.04)])
def test_v2_loss_equals_loop_evaluation_of_spec(t: float, lam: float, tau: float) -> None:
    g = torch.Generator().manual_seed(1)
    loss = SpeakerRPLv2Loss(C, D, n_members=M, temperature=t, weight_margin=lam, tau=tau)
    with torch.no_grad():
        loss.reciprocal_points.copy_(torch.randn(M, C, D, generator=g))
        loss.centre_points.copy_(torch.randn(M, C, D, generator=g))
        loss.radius.copy_(torch.tensor([0.3, 2.5]))
    z = torch.randn(M, B, D, generator=g) * 2
    y = torch.randint(0, C, (M, B), generator=g)
    got = loss(z, y).tolist()
    want = _spec_v2(
        z.tolist(), y.tolist(), loss.reciprocal_points.tolist(), loss.centre_points.tolist(),
        loss.radius.tolist(), t, lam, tau,
    )  # fmt: skip
    assert got == pytest.approx(want, rel=1e-5)
    assert loss.logits(z)[1, 2].tolist() == pytest.approx(
        [-float(z[1, 2] @ loss.reciprocal_points[1, c].detach()) for c in range(C)], rel=1e-5
    )


def test_v2_initialisation_matches_spec() -> None:
    loss = SpeakerRPLv2Loss(C, D, n_members=M, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(loss.reciprocal_points.norm(dim=-1), torch.ones(M, C))
    assert loss.centre_points.abs().sum() == 0 and loss.radius.abs().sum() == 0


LOSSES = [
    SoftmaxLoss,
    LogitNormLoss,
    ARPLLoss,
    SpeakerRPLv1Loss,
    SpeakerRPLPlusLoss,
    SpeakerRPLv2Loss,
]


@pytest.mark.parametrize("cls", LOSSES)
def test_members_are_independent(cls: type) -> None:
    """Stacked loss == each member's own loss; a member's gradient ignores the others."""
    gens = [torch.Generator().manual_seed(s) for s in (5, 6)]
    singles = [cls(C, D, generator=g) for g in gens]
    stacked = cls.stack(singles)
    z = torch.randn(M, B, D, requires_grad=True)
    y = torch.randint(0, C, (M, B))
    values = stacked(z, y) + stacked.unknown_loss(z)
    for m, single in enumerate(singles):
        own = single(z[m : m + 1], y[m : m + 1]) + single.unknown_loss(z[m : m + 1])
        assert float(values[m].detach()) == pytest.approx(float(own[0].detach()), rel=1e-5)
    values[0].backward()
    assert z.grad is not None and z.grad[1].abs().sum() == 0 and z.grad[0].abs().sum() > 0


def test_logitnorm_is_scale_invariant_and_plus_uses_unknowns() -> None:
    ln = LogitNormLoss(C, D, generator=torch.Generator().manual_seed(0), tau=0.04)
    z, y = torch.randn(1, B, D), torch.randint(0, C, (1, B))
    assert float(ln(z, y)[0].detach()) == pytest.approx(float(ln(3 * z, y)[0].detach()), rel=1e-5)
    plus = SpeakerRPLPlusLoss(C, D, generator=torch.Generator().manual_seed(0), beta=1.0)
    # a uniform class distribution (z = 0) has the lowest unknown loss: exp(-log C) = 1 / C
    assert float(plus.unknown_loss(torch.zeros(1, B, D))[0].detach()) == pytest.approx(
        1 / C, rel=1e-5
    )
    assert float(plus.unknown_loss(10 * torch.randn(1, B, D))[0].detach()) > 1 / C


def _np_ce(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean cross-entropy over the batch axis of (M, B, C) logits, per member."""
    top = logits.max(axis=-1, keepdims=True)
    logp = logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(logp, y[..., None], axis=-1)[..., 0].mean(axis=1)


@pytest.mark.parametrize("tau", [0.04, 1.0])
def test_logitnorm_loss_is_wei_et_al_on_the_class_axis(tau: float) -> None:
    """Wei et al. 2022: CE of f / (tau ||f||_2), the norm over the class axis, f = W z."""
    gens = [torch.Generator().manual_seed(s) for s in (3, 4)]
    loss = LogitNormLoss.stack([LogitNormLoss(C, D, generator=g, tau=tau) for g in gens])
    z, y = torch.randn(M, B, D, generator=gens[0]), torch.randint(0, C, (M, B))
    w = loss.weight.detach().double().numpy()  # (M, C, D)
    f = np.einsum("mbd,mcd->mbc", z.double().numpy(), w)
    want = _np_ce(f / (tau * np.linalg.norm(f, axis=-1, keepdims=True)), y.numpy())
    np.testing.assert_allclose(loss(z, y).detach().double().numpy(), want, rtol=1e-5)
    np.testing.assert_allclose(loss.logits(z).detach().double().numpy(), f, rtol=1e-5)


def test_arpl_logits_equal_an_independent_numpy_computation() -> None:
    """ARPL (Chen et al. 2021): ``||z - P_c||^2 / d - <z, P_c>``, and CE of logits / T + margin."""
    g = torch.Generator().manual_seed(2)
    loss = ARPLLoss.stack([ARPLLoss(C, D, generator=g, temperature=0.5) for _ in range(M)])
    with torch.no_grad():
        loss.radius.copy_(torch.tensor([0.2, 1.5]))
    z, y = 2 * torch.randn(M, B, D, generator=g), torch.randint(0, C, (M, B), generator=g)
    zn, p = z.double().numpy(), loss.reciprocal_points.detach().double().numpy()
    diff = zn[:, :, None, :] - p[:, None, :, :]  # (M, B, C, D)
    want = (diff**2).sum(-1) / D - np.einsum("mbd,mcd->mbc", zn, p)
    np.testing.assert_allclose(loss.logits(z).detach().double().numpy(), want, rtol=1e-5)
    own = np.take_along_axis(diff, y.numpy()[:, :, None, None], axis=2)[:, :, 0]  # (M, B, D)
    radius = loss.radius.detach().double().numpy()[:, None]
    margin = np.maximum(0.0, (own**2).mean(-1) - radius + 1.0).mean(axis=1)
    total = _np_ce(want / 0.5, y.numpy()) + 5.0 * margin
    np.testing.assert_allclose(loss(z, y).detach().double().numpy(), total, rtol=1e-5)


def test_bad_arguments_raise() -> None:
    with pytest.raises(InvalidInputError):
        SpeakerRPLv2Loss(1, D)
    with pytest.raises(InvalidInputError):
        SpeakerRPLv2Loss(C, D, tau=0.0)
    with pytest.raises(InvalidInputError):
        LogitNormLoss(C, D, tau=-1.0)


def test_v2_sphere_centres_are_unit_and_a_plain_radius_does_not_overshoot() -> None:
    import torch

    from speakerrpl.errors import InvalidInputError
    from speakerrpl.nn.adapter import Adapter
    from speakerrpl.nn.losses import SpeakerRPLv2Loss
    from speakerrpl.nn.train import TrainSettings, train_single

    g = torch.Generator().manual_seed(0)
    loss = SpeakerRPLv2Loss(3, 4, generator=g, centre_init="sphere")
    assert torch.allclose(loss.centre_points.norm(dim=-1), torch.ones(1, 3))
    with pytest.raises(InvalidInputError, match="centre_init"):
        SpeakerRPLv2Loss(3, 4, centre_init="ones")
    x, y = torch.randn(24, 8, generator=g), torch.arange(24) % 3
    radii = {}
    for plain in (False, True):
        gen = torch.Generator().manual_seed(1)
        net, lo = Adapter(8, 4, hidden=(6,), generator=gen), SpeakerRPLv2Loss(3, 4, generator=gen)
        settings = TrainSettings(epochs=30, batch_size=8, lr=0.01, radius_plain=plain)
        train_single(net, lo, x, y, torch.Generator().manual_seed(2), settings)
        radii[plain] = float(lo.radius.detach()[0])
    # without momentum R rises only while the hinge is active: it stays below the momentum run
    assert 0 < radii[True] < radii[False]
