"""A denoising term for midrun EBM training (issue 9, "anything else the literature suggests"): denoising
score matching (Vincent 2011; Song & Ermon 2019; used for purification by Yoon et al. 2021) written in
the units of the purification chain.

Maximum likelihood with noised rejuvenation teaches the energy to pull noised images back only
indirectly, through whatever the persistent chains happen to visit. This term asks it directly: for a
training image x and a noised copy x~ = x + sigma n, the chain's drift at x~, followed for ``horizon``
steps, should land on x, i.e. x~ - horizon * drift * grad E(x~) = x, with drift = eps^2 / (2 T) the
chain's drift coefficient at the training step size and temperature. The squared residual is divided by
sigma^2 and the number of pixels, so an energy flat around x~ scores 1 and a perfect one 0. Its
minimiser is Tweedie's denoiser (the residual's target is x~ - E[x | x~]), scaled to the chain."""

from __future__ import annotations

import torch

from purifier.errors import SettingsError


def check_denoising(weight: float, sigmas: list[float], horizon: float) -> None:
    """Refuse settings the term cannot use (a negative weight, no or non-positive noise levels, horizon <= 0)."""
    if weight < 0:
        raise SettingsError(f"denoise_weight must be >= 0, got {weight}")
    if weight and (not sigmas or any(not s > 0 for s in sigmas)):
        raise SettingsError(f"denoise_noise must be a non-empty list of sigmas > 0, got {sigmas}")
    if weight and not horizon > 0:
        raise SettingsError(f"denoise_horizon must be > 0, got {horizon}")


def denoising_loss(model: torch.nn.Module, clean: torch.Tensor, sigmas: list[float], scale: float, gen: torch.Generator) -> torch.Tensor:
    """Mean over the batch of |x~ - scale * grad E(x~) - x|^2 / (sigma^2 * pixels), one sigma per image
    drawn from ``sigmas``; differentiable in the model's parameters (double backward)."""
    n = len(clean)
    sigma = torch.tensor(sigmas, dtype=clean.dtype)[torch.randint(len(sigmas), (n,), generator=gen)].to(clean.device)
    noise = sigma.view(-1, *[1] * (clean.dim() - 1)) * torch.randn(clean.shape, generator=gen).to(clean.device)
    noisy = (clean + noise).requires_grad_(True)
    (grad,) = torch.autograd.grad(model(noisy).sum(), noisy, create_graph=True)
    residual = noise - scale * grad
    return (residual.pow(2).flatten(1).sum(1) / (sigma.pow(2) * clean[0].numel())).mean()
