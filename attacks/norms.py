"""Threat models: projection onto the eps-ball, the steepest-ascent step and the random start,
written once for every attack (Linf and L2)."""

from __future__ import annotations

from enum import StrEnum

import torch


class Norm(StrEnum):
    """The distance measure of a threat model."""

    LINF = "linf"
    L2 = "l2"


def _flat_norm(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (x.ndim - 1)))


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: Norm) -> torch.Tensor:
    """Nearest point to ``x_adv`` within the eps-ball around ``x`` and inside [0, 1]."""
    delta = x_adv - x
    if norm is Norm.LINF:
        delta = delta.clamp(-eps, eps)
    else:
        delta = delta * (eps / _flat_norm(delta)).clamp(max=1.0)
    return (x + delta).clamp(0.0, 1.0)


def ascent_step(grad: torch.Tensor, step_size: float, norm: Norm) -> torch.Tensor:
    """The steepest-ascent step of length ``step_size`` in the norm (sign for Linf, unit for L2)."""
    if norm is Norm.LINF:
        return step_size * grad.sign()
    return step_size * grad / _flat_norm(grad)


def random_start(x: torch.Tensor, eps: float, norm: Norm, generator: torch.Generator | None = None) -> torch.Tensor:
    """A uniform point of the eps-ball (Linf) or a point of its interior (L2), clipped to [0, 1]."""
    if norm is Norm.LINF:
        delta = (torch.rand(x.shape, generator=generator) * 2 - 1) * eps
    else:
        d = torch.randn(x.shape, generator=generator)
        r = torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), generator=generator) ** (1.0 / d[0].numel())
        delta = d / _flat_norm(d) * r * eps
    return (x + delta.to(x.device)).clamp(0.0, 1.0)
