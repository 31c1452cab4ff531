"""The vectorised ensemble equals M separately trained single adapters."""

from __future__ import annotations

import pytest
import torch

from speakerrpl.errors import InvalidInputError
from speakerrpl.nn.adapter import Adapter
from speakerrpl.nn.ensemble import AdapterEnsemble, StackedAdapter
from speakerrpl.nn.losses import SpeakerRPLPlusLoss, SpeakerRPLv2Loss
from speakerrpl.nn.train import TrainSettings, train_ensemble, train_single

pytestmark = pytest.mark.usefixtures("one_torch_thread")


D, H, DOUT, C, SEEDS = 12, (16, 10), 6, 4, (11, 12, 13)


def _members(norm: str, loss_cls: type) -> tuple[list[Adapter], list]:
    gens = [torch.Generator().manual_seed(s) for s in SEEDS]
    adapters = [Adapter(D, DOUT, H, norm, generator=g) for g in gens]
    return adapters, [loss_cls(C, DOUT, generator=g) for g in gens]


@pytest.mark.parametrize(
    ("norm", "loss_cls", "batch"),
    [
        ("batch", SpeakerRPLv2Loss, 8),
        ("layer", SpeakerRPLv2Loss, 0),
        ("batch", SpeakerRPLPlusLoss, 8),
    ],
)
def test_ensemble_equals_loop_of_single_adapters(norm: str, loss_cls: type, batch: int) -> None:
    torch.manual_seed(0)
    x, y = torch.randn(30, D), torch.arange(30) % C
    xu = torch.randn(9, D) if loss_cls is SpeakerRPLPlusLoss else None
    settings = TrainSettings(epochs=4, batch_size=batch, lr=0.05, lr_decay_at=0.5)
    order = [torch.Generator().manual_seed(100 + s) for s in SEEDS]

    adapters, losses = _members(norm, loss_cls)
    ens = AdapterEnsemble(StackedAdapter(adapters), loss_cls.stack(losses))
    hist = train_ensemble(ens, x, y, order, settings, xu)

    adapters, losses = _members(norm, loss_cls)
    feats, logits = ens.features(x), ens.logits(x)
    for m, (adapter, loss) in enumerate(zip(adapters, losses, strict=True)):
        g = torch.Generator().manual_seed(100 + SEEDS[m])
        train_single(adapter, loss, x, y, g, settings, xu)
        with torch.no_grad():
            z = adapter(x)
            assert torch.allclose(feats[m], z, atol=1e-4), m
            assert torch.allclose(logits[m], loss.logits(z[None])[0], atol=1e-4), m
            assert torch.allclose(
                ens.loss.reciprocal_points[m], loss.reciprocal_points[0], atol=1e-5
            )
    assert hist[-1] < hist[0]  # it actually trained
    assert not torch.allclose(feats[0], feats[1])  # members differ


def test_members_use_their_own_batch_order() -> None:
    """Same init, different order generators -> different members after training."""
    gens = [torch.Generator().manual_seed(0) for _ in range(2)]
    ens = AdapterEnsemble(
        StackedAdapter.create(gens, D, DOUT, H),
        SpeakerRPLv2Loss.stack([SpeakerRPLv2Loss(C, DOUT, generator=g) for g in gens]),
    )
    x, y = torch.randn(20, D), torch.arange(20) % C
    assert torch.allclose(ens.eval().features(x)[0], ens.features(x)[1])
    order = [torch.Generator().manual_seed(s) for s in (1, 2)]
    train_ensemble(ens, x, y, order, TrainSettings(epochs=2, batch_size=4))
    assert not torch.allclose(ens.features(x)[0], ens.features(x)[1])


def test_min_steps_raises_the_epochs_of_small_training_sets() -> None:
    """Training length is at least ``min_steps`` optimizer steps; 0 keeps ``epochs`` exactly."""
    assert TrainSettings(epochs=3, batch_size=4, min_steps=0).epochs_for(8) == 3
    assert TrainSettings(epochs=3, batch_size=4, min_steps=9).epochs_for(8) == 5  # 2 steps/epoch
    assert TrainSettings(epochs=3, batch_size=4, min_steps=9).epochs_for(40) == 3  # 10 steps/epoch
    assert TrainSettings(epochs=1, batch_size=0, min_steps=4).epochs_for(40) == 4  # full batch
    adapters, losses = _members("batch", SpeakerRPLv2Loss)
    ens = AdapterEnsemble(StackedAdapter(adapters), SpeakerRPLv2Loss.stack(losses))
    x, y = torch.randn(8, D), torch.arange(8) % C
    order = [torch.Generator().manual_seed(s) for s in SEEDS]
    hist = train_ensemble(ens, x, y, order, TrainSettings(epochs=2, batch_size=4, min_steps=9))
    assert len(hist) == 5


def test_mismatched_parts_and_settings_raise() -> None:
    adapters, losses = _members("batch", SpeakerRPLv2Loss)
    with pytest.raises(InvalidInputError):
        AdapterEnsemble(StackedAdapter(adapters[:2]), SpeakerRPLv2Loss.stack(losses))
    with pytest.raises(InvalidInputError):
        TrainSettings(batch_size=1)
    with pytest.raises(InvalidInputError):
        TrainSettings(min_steps=-1)
    with pytest.raises(InvalidInputError):
        Adapter(D, DOUT, H, norm="group")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_ensemble_trains_on_cuda() -> None:
    adapters, losses = _members("batch", SpeakerRPLv2Loss)
    ens = AdapterEnsemble(StackedAdapter(adapters), SpeakerRPLv2Loss.stack(losses)).cuda()
    x, y = torch.randn(20, D, device="cuda"), (torch.arange(20) % C).cuda()
    order = [torch.Generator().manual_seed(s) for s in SEEDS]
    train_ensemble(ens, x, y, order, TrainSettings(epochs=2, batch_size=4))
    assert ens.logits(x).device.type == "cuda"
