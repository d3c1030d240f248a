"""Classifiers f(x) -> logits over images in [0, 1] (torchattacks' convention).

- ``small-cnn``: four 3x3 convs with two max-pools and a two-layer head, for 28x28 images; the
  size adversarial training can afford on a 2-core CPU.
- ``wide-resnet``: WRN-d-k (Zagoruyko & Komodakis 2016, https://arxiv.org/abs/1605.07146) for
  32x32 images, the usual CIFAR-10 robustness classifier.

Each model normalises its input itself (``mean``/``std`` arguments), so every caller hands it
plain [0, 1] pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from purifier.models.registry import register


class _Normalise(nn.Module):
    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


@register("small-cnn")
class SmallCNN(nn.Module):
    """conv(w)-conv(w)-pool-conv(2w)-conv(2w)-pool-fc(hidden)-fc(classes), ReLU.

    Args:
        in_channels: image channels (default 1).
        num_classes: number of classes (default 10).
        width: channels of the first two convs (default 32).
        hidden: width of the hidden dense layer (default 128).
        image_size: input side length, divisible by 4 (default 28).
        mean, std: per-channel normalisation applied to the [0, 1] input (default 0.5 / 0.5).

    Shape: (N, C, H, W) in [0, 1] -> (N, num_classes) logits.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        width: int = 32,
        hidden: int = 128,
        image_size: int = 28,
        mean: list[float] | None = None,
        std: list[float] | None = None,
    ) -> None:
        super().__init__()
        self.normalise = _Normalise(mean or [0.5] * in_channels, std or [0.5] * in_channels)
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        side = image_size // 4
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * w * side * side, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.normalise(x)))


class _WideBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.skip = nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False) if (stride != 1 or c_in != c_out) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = F.relu(self.bn1(x))
        h = self.conv2(F.relu(self.bn2(self.conv1(o))))
        return (self.skip(o) if self.skip is not None else x) + h


@register("wide-resnet")
class WideResNet(nn.Module):
    """WRN-depth-widen for 32x32 images.

    Args:
        in_channels: image channels (default 3).
        num_classes: number of classes (default 10).
        depth: 6n+4 (default 28).
        widen: width multiplier (default 10).
        mean, std: per-channel normalisation of the [0, 1] input (default CIFAR-10 statistics).

    Shape: (N, C, 32, 32) in [0, 1] -> (N, num_classes) logits.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        depth: int = 28,
        widen: int = 10,
        mean: list[float] | None = None,
        std: list[float] | None = None,
    ) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError("wide-resnet depth must be 6n+4")
        n = (depth - 4) // 6
        self.normalise = _Normalise(mean or [0.4914, 0.4822, 0.4465], std or [0.2470, 0.2435, 0.2616])
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        layers: list[nn.Module] = []
        c_in = widths[0]
        for stage, c_out in enumerate(widths[1:]):
            for b in range(n):
                layers.append(_WideBlock(c_in, c_out, 2 if (stage > 0 and b == 0) else 1))
                c_in = c_out
        self.blocks = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(c_in)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.stem(self.normalise(x)))
        h = F.adaptive_avg_pool2d(F.relu(self.bn(h)), 1).flatten(1)
        return self.fc(h)
