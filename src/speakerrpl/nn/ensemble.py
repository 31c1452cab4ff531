"""A vectorised ensemble: M adapters and their losses with parameters stacked on a leading axis.

One forward pass of :class:`StackedAdapter` runs all ``M`` members with batched matmuls;
member ``m`` computes exactly what an :class:`~speakerrpl.nn.adapter.Adapter` built with the
same generator computes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from speakerrpl.errors import InvalidInputError
from speakerrpl.nn.adapter import DEFAULT_HIDDEN, Adapter
from speakerrpl.nn.losses import OpenSetLoss

_BN_EPS = 1e-5
_BN_MOMENTUM = 0.1
_LN_EPS = 1e-5


class StackedAdapter(nn.Module):
    """``M`` bias-free MLP adapters as stacked weights ``(M, in, out)``.

    Args:
        adapters: the single adapters to stack (same architecture); their parameters and
            running statistics are copied.

    Example:
        >>> import torch
        >>> gens = [torch.Generator().manual_seed(s) for s in range(3)]
        >>> parts = [Adapter(8, 4, hidden=(6,), generator=g) for g in gens]
        >>> StackedAdapter(parts).eval()(torch.randn(3, 5, 8)).shape
        torch.Size([3, 5, 4])
    """

    def __init__(self, adapters: Sequence[Adapter]) -> None:
        super().__init__()
        if not adapters:
            raise InvalidInputError("StackedAdapter needs at least one adapter")
        first = adapters[0]
        self.n_members = len(adapters)
        self.in_dim, self.out_dim = first.in_dim, first.out_dim
        self.hidden, self.norm = first.hidden, first.norm
        linears = [[m for m in a.net if isinstance(m, nn.Linear)] for a in adapters]
        norms = [
            [m for m in a.net if isinstance(m, nn.BatchNorm1d | nn.LayerNorm)] for a in adapters
        ]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([lin[i].weight.detach().t() for lin in linears]).clone())
            for i in range(len(linears[0]))
        )
        self.gammas = nn.ParameterList(
            nn.Parameter(torch.stack([n[i].weight.detach() for n in norms]).clone())
            for i in range(len(norms[0]))
        )
        self.betas = nn.ParameterList(
            nn.Parameter(torch.stack([n[i].bias.detach() for n in norms]).clone())
            for i in range(len(norms[0]))
        )
        for i in range(len(norms[0]) if self.norm == "batch" else 0):
            mean = torch.stack([n[i].running_mean for n in norms])  # type: ignore[misc]
            var = torch.stack([n[i].running_var for n in norms])  # type: ignore[misc]
            self.register_buffer(f"running_mean{i}", mean.clone())
            self.register_buffer(f"running_var{i}", var.clone())

    @classmethod
    def create(
        cls,
        generators: Sequence[torch.Generator],
        in_dim: int,
        out_dim: int = 192,
        hidden: Sequence[int] = DEFAULT_HIDDEN,
        norm: str = "batch",
    ) -> StackedAdapter:
        """Build ``len(generators)`` members, member ``m`` initialised from ``generators[m]``."""
        return cls([Adapter(in_dim, out_dim, hidden, norm, generator=g) for g in generators])

    def _batch_norm(self, h: torch.Tensor, i: int) -> torch.Tensor:
        rm: torch.Tensor = getattr(self, f"running_mean{i}")
        rv: torch.Tensor = getattr(self, f"running_var{i}")
        if self.training:
            # mean of squared deviations along the batch axis: 3x faster on CPU than
            # Tensor.var(dim=1), which reduces across the (M, B, H) layout's middle axis
            mean = h.mean(dim=1, keepdim=True)
            centred = h - mean
            var = centred.square().mean(dim=1, keepdim=True)
            n = h.shape[1]
            with torch.no_grad():
                rm.mul_(1 - _BN_MOMENTUM).add_(_BN_MOMENTUM * mean[:, 0])
                rv.mul_(1 - _BN_MOMENTUM).add_(_BN_MOMENTUM * var[:, 0] * n / max(n - 1, 1))
        else:
            centred, var = h - rm.unsqueeze(1), rv.unsqueeze(1)
        h = centred * torch.rsqrt(var + _BN_EPS)
        return h * self.gammas[i].unsqueeze(1) + self.betas[i].unsqueeze(1)

    def _layer_norm(self, h: torch.Tensor, i: int) -> torch.Tensor:
        h = F.layer_norm(h, h.shape[-1:], eps=_LN_EPS)
        return h * self.gammas[i].unsqueeze(1) + self.betas[i].unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (M, B, D) member inputs (or shared (B, D) inputs) to features (M, B, d)."""
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.n_members, -1, -1)
        normalize: Callable[[torch.Tensor, int], torch.Tensor] = (
            self._batch_norm if self.norm == "batch" else self._layer_norm
        )
        h = x
        for i, w in enumerate(self.weights[:-1]):
            h = F.relu(normalize(torch.bmm(h, w), i))
        return torch.bmm(h, self.weights[-1])


class AdapterEnsemble(nn.Module):
    """A stacked adapter and the stacked loss that owns each member's points.

    Args:
        adapter: the ``M``-member :class:`StackedAdapter`.
        loss: an :class:`~speakerrpl.nn.losses.OpenSetLoss` with ``n_members == M``.

    Example:
        >>> import torch
        >>> from speakerrpl.nn.losses import SpeakerRPLv2Loss
        >>> gens = [torch.Generator().manual_seed(s) for s in range(2)]
        >>> net = StackedAdapter.create(gens, in_dim=8, out_dim=4, hidden=(6,))
        >>> loss = SpeakerRPLv2Loss.stack([SpeakerRPLv2Loss(3, 4, generator=g) for g in gens])
        >>> AdapterEnsemble(net, loss).eval().logits(torch.randn(5, 8)).shape
        torch.Size([2, 5, 3])
    """

    def __init__(self, adapter: StackedAdapter, loss: OpenSetLoss) -> None:
        super().__init__()
        if adapter.n_members != loss.n_members or adapter.out_dim != loss.dim:
            raise InvalidInputError(
                f"adapter ({adapter.n_members} members, d={adapter.out_dim}) and loss "
                f"({loss.n_members} members, d={loss.dim}) do not match"
            )
        self.adapter = adapter
        self.loss = loss

    @property
    def n_members(self) -> int:
        """Number of members ``M``."""
        return self.adapter.n_members

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Adapter features (M, N, d) of shared inputs (N, D)."""
        return self.adapter(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (M, N, C) of shared inputs (N, D); higher = that class."""
        return self.loss.logits(self.adapter(x))

    def subset(self, members: Sequence[int]) -> AdapterEnsemble:
        """A copy holding only ``members`` (in that order): every stacked tensor is sliced.

        Scoring with the subset equals scoring with the whole ensemble and keeping those rows,
        at the cost of the kept members only.

        Example:
            >>> import torch
            >>> from speakerrpl.nn.losses import SpeakerRPLv2Loss
            >>> gens = [torch.Generator().manual_seed(s) for s in range(3)]
            >>> net = StackedAdapter.create(gens, in_dim=8, out_dim=4, hidden=(6,))
            >>> loss = SpeakerRPLv2Loss.stack([SpeakerRPLv2Loss(3, 4, generator=g) for g in gens])
            >>> ens = AdapterEnsemble(net, loss).eval()
            >>> x = torch.randn(5, 8)
            >>> torch.allclose(ens.subset([2, 0]).logits(x), ens.logits(x)[[2, 0]])
            True
        """
        idx = torch.as_tensor(list(members), dtype=torch.long)
        if idx.numel() == 0 or idx.min() < 0 or idx.max() >= self.n_members:
            raise InvalidInputError(f"members must be in [0, {self.n_members}), got {members}")
        out = copy.deepcopy(self)
        with torch.no_grad():
            for module in out.modules():
                for param in module.parameters(recurse=False):
                    param.data = param.data[idx.to(param.device)].clone()
                for name, buffer in module.named_buffers(recurse=False):
                    module.register_buffer(name, buffer[idx.to(buffer.device)].clone())
        out.adapter.n_members = out.loss.n_members = int(idx.numel())
        return out
