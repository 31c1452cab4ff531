"""The single adapter: a small bias-free MLP on top of frozen speaker embeddings.

This plain ``nn.Module`` is the reference the vectorised ensemble (:mod:`speakerrpl.nn.ensemble`)
is tested against: member ``m`` of an ensemble equals an :class:`Adapter` built with the same
generator.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

from speakerrpl.errors import InvalidInputError

DEFAULT_HIDDEN: tuple[int, ...] = (512, 256, 256)
NORMS = ("batch", "layer")


def init_linear(fan_in: int, fan_out: int, generator: torch.Generator | None) -> torch.Tensor:
    """A ``(fan_out, fan_in)`` weight drawn like ``nn.Linear``'s default (uniform +-1/sqrt(fan_in)).

    Example:
        >>> init_linear(4, 2, torch.Generator().manual_seed(0)).shape
        torch.Size([2, 4])
    """
    bound = 1.0 / math.sqrt(fan_in)
    return (torch.rand(fan_out, fan_in, generator=generator) * 2.0 - 1.0) * bound


def check_architecture(in_dim: int, hidden: Sequence[int], out_dim: int, norm: str) -> None:
    """Raise :class:`InvalidInputError` on an impossible adapter shape or unknown norm."""
    if in_dim < 1 or out_dim < 1 or any(h < 1 for h in hidden):
        raise InvalidInputError(
            f"adapter sizes must be positive, got in={in_dim}, hidden={tuple(hidden)}, "
            f"out={out_dim}"
        )
    if norm not in NORMS:
        raise InvalidInputError(f"norm must be one of {NORMS}, got {norm!r}")


class Adapter(nn.Module):
    """Bias-free MLP ``D -> 512 -> 256 -> 256 -> d``; normalization + ReLU after each hidden layer.

    Args:
        in_dim: input embedding dimension ``D``.
        out_dim: output dimension ``d`` (default 192).
        hidden: hidden layer widths.
        norm: ``"batch"`` (BatchNorm1d, default) or ``"layer"`` (LayerNorm).
        generator: torch generator for the initial weights.

    Example:
        >>> import torch
        >>> net = Adapter(8, 4, hidden=(6,), generator=torch.Generator().manual_seed(0))
        >>> net.eval()(torch.randn(3, 8)).shape
        torch.Size([3, 4])
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 192,
        hidden: Sequence[int] = DEFAULT_HIDDEN,
        norm: str = "batch",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        check_architecture(in_dim, hidden, out_dim, norm)
        sizes = [in_dim, *hidden]
        layers: list[nn.Module] = []
        for fan_in, fan_out in itertools.pairwise(sizes):
            layers += [self._linear(fan_in, fan_out, generator), self._norm(norm, fan_out)]
            layers.append(nn.ReLU())
        layers.append(self._linear(sizes[-1], out_dim, generator))
        self.net = nn.Sequential(*layers)
        self.in_dim, self.out_dim, self.hidden, self.norm = in_dim, out_dim, tuple(hidden), norm

    @staticmethod
    def _linear(fan_in: int, fan_out: int, generator: torch.Generator | None) -> nn.Linear:
        # skip_init: nn.Linear's own initialisation would draw from the global generator
        layer = torch.nn.utils.skip_init(nn.Linear, fan_in, fan_out, bias=False)
        with torch.no_grad():
            layer.weight.copy_(init_linear(fan_in, fan_out, generator))
        return layer

    @staticmethod
    def _norm(kind: str, width: int) -> nn.Module:
        return nn.BatchNorm1d(width) if kind == "batch" else nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map embeddings (B, D) to adapter features (B, d)."""
        return self.net(x)
