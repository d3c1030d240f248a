"""Projected gradient descent (Madry et al. 2018, https://arxiv.org/abs/1706.06083), Linf and L2.

The attack loop is generic over how a gradient is obtained: :class:`PGD` asks its
``gradient_source`` for (per-example loss, input gradient, logits) at the current point, so the
same loop serves the bare classifier, BPDA+EOT and exact-gradient attacks (see
:mod:`attacks.bpda_eot` and :mod:`attacks.adaptive`). It records, for each image, whether any
iterate was misclassified by the logits the source returned (the "evaluate while optimising"
record of Hill et al.), and keeps the iterate with the highest loss across restarts.

Seeds: with one seed per image the attack on an image (its random starts, and the chain noise a
stochastic source draws for it at each step) depends only on that image and its seed, whatever
batch it lands in; with one int the batch shares one random stream (the sources' own counter).

With ``stop_after=P`` an image leaves the attack once the source's logits have misclassified it
at P consecutive iterates (its final point is then that iterate, and later restarts skip it);
images that resist get the full budget. This saves most of the cost of a stochastic defense that
is already broken, and the verification (:mod:`attacks.verify`) still decides with the full
defense whether the image counts as broken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from attacks.losses import Loss, attack_loss
from attacks.norms import Norm, ascent_step, project, random_start
from purifier.langevin import mix
from purifier.purifier import seed_list


class GradientSource(Protocol):
    """(x_adv, labels, per-row seeds or None) -> (per-example loss, d loss / d x_adv, logits used for the success record).
    A stochastic source draws its randomness for row j from ``seeds[j]`` when given, else from its own counter."""

    def __call__(self, x_adv: torch.Tensor, labels: torch.Tensor, seeds: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ...


def default_step_size(eps: float, steps: int) -> float:
    """The step length every PGD of this project uses unless told otherwise: 2.5 eps / steps (Madry et al.)."""
    return 2.5 * eps / max(1, steps)


@dataclass
class PGDResult:
    """The attack's output: ``x_adv`` (final point of the restart with the highest final loss), ``fooled_any`` (some iterate
    was misclassified by the source's logits), the iterates kept for verification (``iterates``:
    (T, N, C, H, W) and ``iterate_fooled``: (T, N), only when asked), and the gradient evaluations
    spent on each image."""

    x_adv: torch.Tensor
    fooled_any: torch.Tensor
    iterates: torch.Tensor | None
    iterate_fooled: torch.Tensor | None
    gradient_evaluations: torch.Tensor  # per image
    grad_finite: bool
    grad_nonzero: bool


class PGD:
    """PGD with random start and restarts.

    Args:
        gradient_source: callable giving loss, gradient and logits (see :data:`GradientSource`),
            or use :meth:`on_model` for a plain differentiable classifier.
        norm: :class:`Norm` (``linf`` or ``l2``).
        eps: radius of the threat model, images in [0, 1] (default 0.3).
        step_size: step length per iteration (default 0.01).
        steps: iterations per restart (default 40).
        restarts: independent random starts; the highest-loss result is kept (default 1).
        random_init: start from a random point of the ball (default True).
        keep_iterates: keep every iterate for worst-case verification (default False).
        stop_after: stop attacking an image after this many consecutive misclassified iterates
            (default None: always run every step).
        seed: one int for the batch, or one per image (the attack on each image is then independent
            of its batch; see the module docstring) (default 0).

    Usage::

        x_adv = PGD.on_model(classifier, Norm.LINF, eps=0.3, steps=40).run(x, y).x_adv
    """

    def __init__(
        self,
        gradient_source: GradientSource,
        norm: Norm = Norm.LINF,
        eps: float = 0.3,
        step_size: float = 0.01,
        steps: int = 40,
        restarts: int = 1,
        random_init: bool = True,
        keep_iterates: bool = False,
        stop_after: int | None = None,
        seed: int | Sequence[int] = 0,
    ) -> None:
        if stop_after is not None and stop_after < 1:
            raise ValueError("stop_after must be >= 1 or None")
        self.gradient_source = gradient_source
        self.norm = Norm(norm)
        self.eps, self.step_size, self.steps, self.restarts = eps, step_size, steps, restarts
        self.random_init, self.keep_iterates, self.stop_after, self.seed = random_init, keep_iterates, stop_after, seed

    @classmethod
    def on_model(cls, model: nn.Module, norm: Norm = Norm.LINF, loss: Loss = Loss.CE, targeted: bool = False, **kwargs: object) -> PGD:
        """PGD against a differentiable classifier taking [0, 1] images."""
        return cls(model_gradient(model, Loss(loss), targeted), norm, **kwargs)  # type: ignore[arg-type]

    def run(self, x: torch.Tensor, labels: torch.Tensor) -> PGDResult:
        n = x.shape[0]
        seeds = None if isinstance(self.seed, int) else seed_list(self.seed, n)
        gen = torch.Generator().manual_seed(self.seed) if seeds is None else None
        best = x.clone()
        best_loss = torch.full((n,), float("-inf"), device=x.device)
        fooled = torch.zeros(n, dtype=torch.bool, device=x.device)
        stopped = torch.zeros(n, dtype=torch.bool, device=x.device)
        evaluations = torch.zeros(n, dtype=torch.long)
        iterates: list[torch.Tensor] = []
        iterate_fooled: list[torch.Tensor] = []
        finite, nonzero = True, False
        for restart in range(self.restarts):
            x_adv = self._start(x, restart, gen, seeds)
            streak = torch.zeros(n, dtype=torch.long, device=x.device)
            for i in range(self.steps + 1):
                rows = torch.nonzero(~stopped).flatten()
                if len(rows) == 0:
                    break
                row_seeds = None if seeds is None else [mix(seeds[j], restart, i) for j in rows.tolist()]
                loss, grad, logits = self.gradient_source(x_adv[rows], labels[rows], row_seeds)
                evaluations[rows.cpu()] += 1
                finite &= bool(torch.isfinite(grad).all())
                nonzero |= bool(grad.abs().amax() > 0)
                wrong = torch.zeros(n, dtype=torch.bool, device=x.device)
                wrong[rows] = logits.argmax(1) != labels[rows]
                fooled |= wrong
                streak = torch.where(wrong, streak + 1, torch.zeros_like(streak))
                stops = streak >= self.stop_after if self.stop_after is not None else torch.zeros_like(stopped)
                ends = stops.clone()
                if i == self.steps:
                    ends[rows] = True
                # the final point of this restart (or the point where an image stops): keep the highest loss
                row_loss = torch.full((n,), float("-inf"), device=x.device)
                row_loss[rows] = loss
                improved = ends & (row_loss > best_loss)
                best[improved], best_loss[improved] = x_adv[improved], row_loss[improved]
                if self.keep_iterates:
                    iterates.append(x_adv.detach().cpu())
                    iterate_fooled.append(wrong.cpu())
                stopped |= stops
                if i < self.steps:
                    step = torch.zeros_like(x_adv)
                    step[rows] = ascent_step(grad, self.step_size, self.norm)
                    x_adv = torch.where(stopped.view(-1, *[1] * (x.dim() - 1)), x_adv, project(x_adv + step, x, self.eps, self.norm)).detach()
        return PGDResult(
            best.detach(), fooled, torch.stack(iterates) if iterates else None,
            torch.stack(iterate_fooled) if iterate_fooled else None, evaluations, finite, nonzero,
        )

    def _start(self, x: torch.Tensor, restart: int, gen: torch.Generator | None, seeds: list[int] | None) -> torch.Tensor:
        if not self.random_init:
            return x.clone()
        if seeds is None:
            return random_start(x, self.eps, self.norm, gen)
        return torch.cat([random_start(x[j : j + 1], self.eps, self.norm, torch.Generator().manual_seed(mix(s, restart)))
                          for j, s in enumerate(seeds)])


def model_gradient(model: nn.Module, loss: Loss = Loss.CE, targeted: bool = False) -> GradientSource:
    """A :data:`GradientSource` for a plain differentiable classifier."""

    def source(x_adv: torch.Tensor, labels: torch.Tensor, seeds: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            xg = x_adv.detach().requires_grad_(True)
            logits = model(xg)
            value = attack_loss(logits, labels, loss, targeted)
            (grad,) = torch.autograd.grad(value.sum(), xg)
        return value.detach(), grad, logits.detach()

    return source
