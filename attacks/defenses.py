"""Defenses as the evaluation sees them: R copies of logits for a batch, with a chosen backward.

Every defense in a results table (no defense, the EBM purifier, and the cheap baselines of
:mod:`attacks.baselines`) implements :class:`Defense`, so each is attacked by the same code, as
hard as the others. The defended prediction is the argmax of the mean logits over R copies.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from purifier.purifier import Gradient, Purifier, Seeds


class Defense(Protocol):
    """R stochastic copies of a defended classifier's logits."""

    name: str
    stochastic: bool

    def logits(self, x: torch.Tensor, copies: int, seed: Seeds, gradient: Gradient) -> torch.Tensor:
        """(N, C, H, W) in [0, 1] -> (N, copies, classes); ``gradient`` picks the backward."""
        ...

    def describe(self) -> dict:
        """Settings for the report."""
        ...


class NoDefense:
    """The bare classifier (deterministic: every copy is the same)."""

    name = "none"
    stochastic = False

    def __init__(self, classifier: nn.Module) -> None:
        self.classifier = classifier.eval()

    def logits(self, x: torch.Tensor, copies: int, seed: Seeds, gradient: Gradient) -> torch.Tensor:
        return self.classifier(x)[:, None]

    def describe(self) -> dict:
        return {"name": self.name}


class EBMDefense:
    """Langevin purification then classification (Hill et al.).

    Args:
        purifier: the :class:`Purifier`.
        classifier: classifier on [0, 1] images.
        steps: Langevin steps K of the defense (default: the purifier's).
        surrogate_steps: chain length used for exact-gradient attacks (default: ``steps``); a
            shorter surrogate makes the adaptive attack affordable, the verification always runs
            the full chain.
        step_size, temperature: Langevin overrides (default: the purifier's).
    """

    name = "ebm"
    stochastic = True

    def __init__(
        self,
        purifier: Purifier,
        classifier: nn.Module,
        steps: int | None = None,
        surrogate_steps: int | None = None,
        step_size: float | None = None,
        temperature: float | None = None,
    ) -> None:
        self.purifier, self.classifier = purifier, classifier.eval()
        self.config = purifier.config(steps=steps, step_size=step_size, temperature=temperature)
        self.surrogate_steps = surrogate_steps

    def logits(self, x: torch.Tensor, copies: int, seed: Seeds, gradient: Gradient) -> torch.Tensor:
        steps = self.surrogate_steps if (gradient == "exact" and self.surrogate_steps) else self.config.steps
        purified = self.purifier.copies(
            x, steps=steps, replicates=copies, step_size=self.config.step_size, temperature=self.config.temperature,
            seed=seed, gradient=gradient,
        )
        n, r = purified.shape[:2]
        return self.classifier(purified.flatten(0, 1)).view(n, r, -1)

    def describe(self) -> dict:
        return {"name": self.name, **self.config.to_dict(), "surrogate_steps": self.surrogate_steps,
                "ebm_sha256": self.purifier.metadata.get("weights", {}).get("sha256")}


def defended_predictions(defense: Defense, x: torch.Tensor, replicates: int, seeds: list[int], chunk: int = 64) -> torch.Tensor:
    """The defense's prediction with R copies per image (no gradient); ``seeds`` one per image."""
    preds = []
    copies = replicates if defense.stochastic else 1
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            preds.append(defense.logits(x[i : i + chunk], copies, seeds[i : i + chunk], "none").mean(1).argmax(1))
    return torch.cat(preds)
