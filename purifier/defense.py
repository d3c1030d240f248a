"""The defended classifier: purify R copies, classify each, average the logits.

``DefendedClassifier`` is an ``nn.Module`` over [0, 1] images (torchattacks' convention), so any
attack library runs on it unchanged. Its backward through the purifier is ``"bpda"`` (identity,
Athalye et al. 2018 / Hill et al. 2021) or ``"exact"`` (through the chain). Every call draws new
chain noise (seed ``mix(seed, call index)``), as a deployed stochastic defense does, which is what
EOT attacks average over; ``fixed_noise=True`` reuses the same noise on every call.

Usage::

    defended = DefendedClassifier(Purifier.load("mnist"), classifier, replicates=8, steps=500)
    logits = defended(images)   # (N, classes), mean over 8 purified copies
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from purifier.langevin import mix
from purifier.purifier import Gradient, Purifier, Seeds


class DefendedClassifier(nn.Module):
    """Purify-then-classify with logits averaged over purified copies.

    Args:
        purifier: the :class:`Purifier`.
        classifier: a classifier taking [0, 1] images.
        replicates: R, purified copies per image (default: the purifier's).
        steps: Langevin steps (default: the purifier's).
        gradient: backward through purification, ``"bpda"`` (default) or ``"exact"``.
        seed: base seed of the chain noise (default 0).
        fixed_noise: use the same noise on every call (default False).
        langevin: further Langevin overrides (``step_size``, ``temperature``).
    """

    def __init__(
        self,
        purifier: Purifier,
        classifier: nn.Module,
        replicates: int | None = None,
        steps: int | None = None,
        gradient: Gradient = "bpda",
        seed: int = 0,
        fixed_noise: bool = False,
        **langevin: Any,
    ) -> None:
        super().__init__()
        self.purifier, self.classifier = purifier, classifier.eval()
        self.replicates, self.steps, self.gradient = replicates, steps, gradient
        self.seed, self.fixed_noise, self.langevin = seed, fixed_noise, langevin
        self.calls = 0

    def next_seed(self) -> int:
        """The seed of the next call's chains."""
        if self.fixed_noise:
            return self.seed
        self.calls += 1
        return mix(self.seed, self.calls)

    def purified_logits(self, x: torch.Tensor, seed: Seeds | None = None, replicates: int | None = None) -> torch.Tensor:
        """Logits of every purified copy: (N, C, H, W) -> (N, R, classes)."""
        copies = self.purifier.copies(
            x, steps=self.steps, replicates=replicates or self.replicates, seed=self.next_seed() if seed is None else seed,
            gradient=self.gradient if torch.is_grad_enabled() else "none", **self.langevin,
        )
        n, r = copies.shape[:2]
        logits = self.classifier(copies.flatten(0, 1))
        return logits.view(n, r, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Defended logits: the mean over R purified copies, (N, classes)."""
        return self.purified_logits(x).mean(dim=1)
