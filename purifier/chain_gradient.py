"""Exact gradients through a Langevin chain, in memory that does not grow with the chain's length.

For x_{t+1} = x_t - c_t * grad E(x_t) + eps_t * z_t (c_t = eps_t^2 / 2T), the vector-Jacobian product of
one step is v_t = v_{t+1} - c_t * H(x_t) v_{t+1} (H the Hessian of E; clamped entries pass no
gradient to x_t), computed as a Hessian-vector product by double backpropagation. Entries clamped to
the ``box`` around the chain's start x_0 equal x_0 -+ box there, so their v goes to x_0 directly. The forward pass keeps
only every ``segment``-th state; the backward pass recomputes each segment's states from its
checkpoint, regenerating the same noise (noise is a pure function of stream and step, see
:mod:`purifier.langevin`). Memory: O(K / segment + segment) states; compute: one extra forward
sweep plus one double-backward per step. This is the "full-gradient" adaptive attack that
Croce et al. 2022 (https://arxiv.org/abs/2202.13711) ask purification defenses to face.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from purifier.langevin import Bound, LangevinSampler, box_binds, chain_bounds, frozen, langevin_update


def exact_chain(x0: torch.Tensor, sampler: LangevinSampler, streams: Sequence[int], segment: int | None = None) -> torch.Tensor:
    """Run ``sampler``'s chain from ``x0`` with a backward pass that is the exact chain Jacobian."""
    steps = sampler.config.steps
    seg = segment or max(1, math.isqrt(max(steps, 1)))
    return _ExactChain.apply(x0, sampler, list(streams), seg)


class _ExactChain(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x0: torch.Tensor, sampler: LangevinSampler, streams: list[int], segment: int) -> torch.Tensor:  # type: ignore[override]
        ctx.sampler, ctx.streams, ctx.segment = sampler, streams, segment
        ctx.bounds = chain_bounds(sampler.config, x0.detach())
        checkpoints = [x0.detach()]
        x = x0.detach()
        with frozen(sampler.energy), torch.no_grad():
            for t in range(sampler.config.steps):
                x = sampler.step(x, streams, t, ctx.bounds)
                if (t + 1) % segment == 0 and t + 1 < sampler.config.steps:
                    checkpoints.append(x)
        ctx.checkpoints = checkpoints
        return x

    @staticmethod
    def backward(ctx, v: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:  # type: ignore[override]
        sampler: LangevinSampler = ctx.sampler
        steps, seg, cfg = sampler.config.steps, ctx.segment, sampler.config
        lo, hi = ctx.bounds
        moves = box_binds(cfg, ctx.checkpoints[0])
        v = v.detach()
        to_origin = torch.zeros_like(v)
        with frozen(sampler.energy):
            for k in reversed(range(len(ctx.checkpoints))):
                start, end = k * seg, min((k + 1) * seg, steps)
                states = [ctx.checkpoints[k]]
                with torch.no_grad():
                    for t in range(start, end - 1):
                        states.append(sampler.step(states[-1], ctx.streams, t, ctx.bounds))
                for t in reversed(range(start, end)):
                    v, held = _step_vjp(sampler, states[t - start], ctx.streams, t, v, lo, hi, moves)
                    to_origin += held
        return v + to_origin, None, None, None


def _step_vjp(
    sampler: LangevinSampler, x: torch.Tensor, streams: list[int], t: int, v: torch.Tensor, lo: Bound, hi: Bound,
    moves: tuple[torch.Tensor, torch.Tensor] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(v^T d x_{t+1} / d x_t, the part of v that goes to x_0): entries the clamp held at a bound pass nothing to
    x_t, and to x_0 where that bound is the box's (``moves``: where the lower / upper bound is)."""
    cfg = sampler.config
    to_origin = torch.zeros_like(v)
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(sampler.energy(xg).sum(), xg, create_graph=True)
        if lo is not None or hi is not None:
            with torch.no_grad():
                pre = langevin_update(x, g, sampler.noise(streams, t, x.shape[1:], x.device), cfg.drift_at(t), cfg.step_size_at(t))
                below = pre < lo if lo is not None else torch.zeros_like(pre, dtype=torch.bool)
                above = pre > hi if hi is not None else torch.zeros_like(pre, dtype=torch.bool)
                if moves is not None:
                    to_origin = v * ((below & moves[0]) | (above & moves[1]))
                v = v * ~(below | above)
        (hv,) = torch.autograd.grad(g, xg, grad_outputs=v)
    return v - cfg.drift_at(t) * hv, to_origin
