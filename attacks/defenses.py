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
        input_classifier: a second classifier that reads the *unpurified* input (a hybrid of
            purification and, say, adversarial training); when given, each copy's output is the
            sum of log-probabilities ``log p(purified copy) + input_weight * log p(input)``, so
            an attack must fool both, and its gradient reaches the input through both paths.
        input_weight: the weight of the input classifier's log-probabilities.
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
        input_classifier: nn.Module | None = None,
        input_weight: float = 1.0,
    ) -> None:
        self.purifier, self.classifier = purifier, classifier.eval()
        self.config = purifier.config(steps=steps, step_size=step_size, temperature=temperature)
        self.surrogate_steps = surrogate_steps
        self.input_classifier = input_classifier.eval() if input_classifier is not None else None
        self.input_weight = input_weight

    def logits(self, x: torch.Tensor, copies: int, seed: Seeds, gradient: Gradient) -> torch.Tensor:
        steps = self.surrogate_steps if (gradient == "exact" and self.surrogate_steps) else self.config.steps
        purified = self.purifier.copies(
            x, steps=steps, replicates=copies, step_size=self.config.step_size, temperature=self.config.temperature,
            seed=seed, gradient=gradient,
        )
        return self.classify(purified, x)

    def classify(self, purified: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(N, R, C, H, W) purified copies of ``x`` -> (N, R, classes): the classifier's logits, or with an
        input classifier the summed log-probabilities of both."""
        n, r = purified.shape[:2]
        logits = self.classifier(purified.flatten(0, 1)).view(n, r, -1)
        if self.input_classifier is None:
            return logits
        return logits.log_softmax(-1) + self.input_weight * self.input_classifier(x).log_softmax(-1)[:, None]

    def describe(self) -> dict:
        extra = {} if self.input_classifier is None else {"input_weight": self.input_weight}
        return {"name": self.name, **self.config.to_dict(), "surrogate_steps": self.surrogate_steps,
                "ebm_sha256": self.purifier.metadata.get("weights", {}).get("sha256"), **extra}


def defended_predictions(defense: Defense, x: torch.Tensor, replicates: int, seeds: list[int], chunk: int = 64) -> torch.Tensor:
    """The defense's prediction with R copies per image (no gradient); ``seeds`` one per image."""
    preds = []
    copies = replicates if defense.stochastic else 1
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            preds.append(defense.logits(x[i : i + chunk], copies, seeds[i : i + chunk], "none").mean(1).argmax(1))
    return torch.cat(preds)
