"""Cheap preprocessing defenses that every results table carries next to the EBM, attacked by the
same code as hard as the EBM:

- ``binarize``: pixels thresholded at ``threshold`` (Madry et al. noted MNIST's near-binary
  images make this strong against small Linf attacks). Its backward is BPDA through a smooth
  surrogate, sigmoid((x - threshold) / temperature), as Athalye et al. (2018) recommend for
  non-differentiable quantisation.
- ``noise-median``: Gaussian noise of scale ``sigma`` then a ``kernel`` x ``kernel`` median
  filter, stochastic (R copies, EOT applies). ``bpda`` is the identity backward; ``exact``
  differentiates through the noise and the median (a selection, differentiable almost everywhere).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from purifier.langevin import chain_noise, chain_streams
from purifier.purifier import Gradient, Seeds, seed_list


class BinarizeDefense:
    name = "binarize"
    stochastic = False

    def __init__(self, classifier: nn.Module, threshold: float = 0.5, temperature: float = 0.05) -> None:
        self.classifier, self.threshold, self.temperature = classifier.eval(), threshold, temperature

    def transform(self, x: torch.Tensor, gradient: Gradient) -> torch.Tensor:
        hard = (x > self.threshold).to(x.dtype)
        if gradient == "none":
            return hard
        soft = torch.sigmoid((x - self.threshold) / self.temperature)
        return hard + (soft - soft.detach())

    def logits(self, x: torch.Tensor, copies: int, seed: Seeds, gradient: Gradient) -> torch.Tensor:
        return self.classifier(self.transform(x, gradient))[:, None]

    def describe(self) -> dict:
        return {"name": self.name, "threshold": self.threshold, "surrogate_temperature": self.temperature}


def median_filter(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """k x k median filter with reflect padding, (N, C, H, W) -> same shape."""
    pad = kernel // 2
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    patches = padded.unfold(2, kernel, 1).unfold(3, kernel, 1)
    return patches.reshape(*patches.shape[:4], -1).median(dim=-1).values


class NoiseMedianDefense:
    name = "noise-median"
    stochastic = True

    def __init__(self, classifier: nn.Module, sigma: float = 0.25, kernel: int = 3) -> None:
        self.classifier, self.sigma, self.kernel = classifier.eval(), sigma, kernel

    def transform(self, x: torch.Tensor, copies: int, seed: Seeds, gradient: Gradient) -> torch.Tensor:
        streams = chain_streams(seed_list(seed, len(x)), copies)
        noise = chain_noise(streams, 0, x.shape[1:]).to(x.device)
        start = x.repeat_interleave(copies, dim=0)
        out = median_filter((start + self.sigma * noise).clamp(0, 1), self.kernel)
        if gradient == "bpda":
            out = start + (out - start).detach()
        return out

    def logits(self, x: torch.Tensor, copies: int, seed: Seeds, gradient: Gradient) -> torch.Tensor:
        out = self.transform(x, copies, seed, gradient)
        return self.classifier(out).view(len(x), copies, -1)

    def describe(self) -> dict:
        return {"name": self.name, "sigma": self.sigma, "kernel": self.kernel}
