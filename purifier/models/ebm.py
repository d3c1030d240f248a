"""Energy functions E(x): R^{C x H x W} -> R, one scalar per image (lower = more likely).

- ``conv-ebm``: the 5-layer ConvNet of Hill, Mitchell & Zhu (Stochastic Security, ICLR 2021;
  https://arxiv.org/abs/2005.13525): conv3x3, three stride-2 conv4x4 doubling the width, and a
  final 4x4 valid conv to one number. 28x28 inputs are padded to 32x32 with the value of black in
  the EBM's range (-1 for data in [-1, 1]).
- ``resnet-ebm``: a wider residual energy in the style of the EBM Life Cycle midrun models (Hill
  et al. 2022, https://arxiv.org/abs/2205.12243), meant for GPU users.

Both use LeakyReLU, which is twice differentiable almost everywhere (the exact-gradient attack
differentiates through the energy's input gradient) and exports to ONNX.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from purifier.models.registry import register


@register("conv-ebm")
class ConvEBM(nn.Module):
    """Hill et al.'s small ConvNet energy.

    Args:
        in_channels: image channels (1 for MNIST, 3 for CIFAR-10).
        width: channels of the first layer; later layers use 2x, 4x, 8x (default 16).
        image_size: input side length; inputs smaller than 32 are padded to 32 (default 28).
        pad_value: value used for padding, black in the EBM's data range (default -1.0).
        negative_slope: LeakyReLU slope (default 0.05).

    Shape: (N, C, H, W) in the EBM's data range -> (N,) energies.
    """

    def __init__(
        self,
        in_channels: int = 1,
        width: int = 16,
        image_size: int = 28,
        pad_value: float = -1.0,
        negative_slope: float = 0.05,
    ) -> None:
        super().__init__()
        if image_size > 32:
            raise ValueError("conv-ebm takes images up to 32x32")
        self.pad = (32 - image_size) // 2
        self.pad_value = pad_value
        self.negative_slope = negative_slope
        w = width
        self.convs = nn.ModuleList(
            [
                nn.Conv2d(in_channels, w, 3, 1, 1),
                nn.Conv2d(w, 2 * w, 4, 2, 1),
                nn.Conv2d(2 * w, 4 * w, 4, 2, 1),
                nn.Conv2d(4 * w, 8 * w, 4, 2, 1),
            ]
        )
        self.head = nn.Conv2d(8 * w, 1, 4, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, value=self.pad_value)
        for conv in self.convs:
            x = F.leaky_relu(conv(x), self.negative_slope)
        return self.head(x).flatten()


class _ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, negative_slope: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.skip = nn.Conv2d(c_in, c_out, 1, stride, 0) if (stride != 1 or c_in != c_out) else nn.Identity()
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.leaky_relu(x, self.negative_slope))
        h = self.conv2(F.leaky_relu(h, self.negative_slope))
        return self.skip(x) + h


@register("resnet-ebm")
class ResNetEBM(nn.Module):
    """A residual energy (pre-activation blocks, no normalisation layers, sum-pooled head).

    Args:
        in_channels: image channels (default 3).
        widths: channels of each stage; every stage after the first halves the resolution
            (default (128, 256, 256, 256), about the EBM Life Cycle CIFAR-10 size).
        blocks_per_stage: residual blocks per stage (default 2).
        image_size: input side length, padded to the next multiple of 2**(stages-1) (default 32).
        pad_value: padding value in the EBM's range (default -1.0).
        negative_slope: LeakyReLU slope (default 0.05).

    Shape: (N, C, H, W) in the EBM's data range -> (N,) energies.
    """

    def __init__(
        self,
        in_channels: int = 3,
        widths: tuple[int, ...] | list[int] = (128, 256, 256, 256),
        blocks_per_stage: int = 2,
        image_size: int = 32,
        pad_value: float = -1.0,
        negative_slope: float = 0.05,
    ) -> None:
        super().__init__()
        factor = 2 ** (len(widths) - 1)
        padded = -(-image_size // factor) * factor
        self.pad = (padded - image_size) // 2
        self.pad_value = pad_value
        self.negative_slope = negative_slope
        self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, 1)
        blocks: list[nn.Module] = []
        c_in = widths[0]
        for i, c_out in enumerate(widths):
            for b in range(blocks_per_stage):
                blocks.append(_ResidualBlock(c_in, c_out, 2 if (i > 0 and b == 0) else 1, negative_slope))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(c_in, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, value=self.pad_value)
        h = self.blocks(self.stem(x))
        h = F.leaky_relu(h, self.negative_slope).sum(dim=(2, 3))
        return self.head(h).flatten()
