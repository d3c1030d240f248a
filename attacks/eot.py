"""Gradients of a stochastic defense for PGD: the loss on the mean logits over ``eot`` copies
(expectation over transformation, Athalye et al. 2018, https://arxiv.org/abs/1802.00420), taken
through the purifier either straight through (BPDA, as Hill et al. attack their defense) or
exactly through the Langevin chain (the adaptive attack of Croce et al. 2022). Copies are one
batch, and every call draws fresh chain noise: from the per-row seeds PGD passes, else from the
source's seed and a call counter.

When the exact gradient runs through a shorter surrogate chain, the logits returned for the
attack's success record (and early stopping) come from the full defense on the same point, with
the same copies count: a point that fools only the surrogate is not a success."""

from __future__ import annotations

import torch

from attacks.defenses import Defense
from attacks.losses import Loss, attack_loss
from attacks.pgd import GradientSource
from purifier.langevin import mix
from purifier.purifier import Gradient, Seeds


def eot_gradient(defense: Defense, eot: int, gradient: Gradient, loss: Loss = Loss.CE, seed: int = 0, targeted: bool = False) -> GradientSource:
    """A :data:`GradientSource` over ``eot`` purified copies with the given backward (``bpda``/``exact``)."""
    calls = [0]

    def source(x_adv: torch.Tensor, labels: torch.Tensor, seeds: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        calls[0] += 1
        noise: Seeds = mix(seed, calls[0]) if seeds is None else seeds
        with torch.enable_grad():
            xg = x_adv.detach().requires_grad_(True)
            copies = eot if defense.stochastic else 1
            logits = defense.logits(xg, copies, noise, gradient).mean(1)
            value = attack_loss(logits, labels, loss, targeted)
            (grad,) = torch.autograd.grad(value.sum(), xg)
        record = logits.detach()
        surrogate = getattr(defense, "surrogate_steps", None)
        if gradient == "exact" and surrogate and surrogate < defense.config.steps:  # type: ignore[attr-defined]
            with torch.no_grad():
                again = mix(seed, calls[0], 1) if seeds is None else [mix(s, 1) for s in seeds]
                record = defense.logits(x_adv.detach(), copies, again, "none").mean(1)
        return value.detach(), grad, record

    return source
