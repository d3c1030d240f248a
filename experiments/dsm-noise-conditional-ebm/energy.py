"""A noise-conditional energy E(x, sigma) trained by denoising score matching, and the score-based
purification it allows (issue 9 probe; not part of the package).

E(x, sigma) = |x - D(x, sigma)|^2 / (2 sigma^2), D a small UNet with EDM preconditioning (Karras et al.
2022) conditioned on log sigma; the score is -grad_x E (Salimans & Ho 2021, "Should EBMs model the
energy or the score?"). Trained with denoising score matching (Vincent 2011) in the epsilon form
|sigma grad_x E(x + sigma eps, sigma) - eps|^2 over log-uniform sigma in [0.01, 2] (EBM range [-1, 1]).
Purification as in score-based adversarial purification (Yoon, Hwang & Lee, ICML 2021; DiffPure,
Nie et al. 2022): noise of scale sigma* added to the image, then a reverse process from sigma* to
sigma_min in N steps (deterministic DDIM/probability-flow steps on Tweedie's denoiser
D = x - sigma^2 grad E, or ancestral steps), or Tweedie's one-step denoiser without added noise.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from purifier.langevin import chain_noise, mix
from purifier.purifier import seed_list


class FiLMBlock(nn.Module):
    """Two 3x3 convolutions with GroupNorm and SiLU, scaled and shifted by the noise embedding."""

    def __init__(self, c_in: int, c_out: int, emb: int) -> None:
        super().__init__()
        self.n1 = nn.GroupNorm(min(8, c_in), c_in)
        self.c1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.n2 = nn.GroupNorm(min(8, c_out), c_out)
        self.c2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.film = nn.Linear(emb, 2 * c_out)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.silu(self.n1(x)))
        s, b = self.film(e)[:, :, None, None].chunk(2, 1)
        h = self.n2(h) * (1 + s) + b
        h = self.c2(F.silu(h))
        return h + self.skip(x)


class UNet(nn.Module):
    """A three-level UNet (widths ``ch``) on 32x32 single-channel images, conditioned on ``c_noise``."""

    def __init__(self, ch: tuple[int, ...] = (16, 32, 64), emb: int = 64) -> None:
        super().__init__()
        self.emb = nn.Sequential(nn.Linear(16, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.inp = nn.Conv2d(1, ch[0], 3, padding=1)
        self.down = nn.ModuleList()
        c = ch[0]
        skips = []
        for co in ch:
            self.down.append(FiLMBlock(c, co, emb))
            c = co
            skips.append(c)
        self.mid = FiLMBlock(c, c, emb)
        self.up = nn.ModuleList()
        for i, co in reversed(list(enumerate(ch))):
            self.up.append(FiLMBlock(c + skips[i], co, emb))
            c = co
        self.out = nn.Conv2d(c, 1, 3, padding=1)
        self.levels = len(ch)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        f = torch.arange(8, device=x.device, dtype=x.dtype)
        ang = c_noise[:, None] * torch.exp(f * math.log(1000.0) / 8)[None]
        e = self.emb(torch.cat([ang.sin(), ang.cos()], 1))
        h = self.inp(x)
        hs = []
        for i, b in enumerate(self.down):
            h = b(h, e)
            hs.append(h)
            if i < self.levels - 1:
                h = F.avg_pool2d(h, 2)
        h = self.mid(h, e)
        for j, b in enumerate(self.up):
            i = self.levels - 1 - j
            if h.shape[-1] != hs[i].shape[-1]:
                h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = b(torch.cat([h, hs[i]], 1), e)
        return self.out(F.silu(h))


class DenoisingEnergy(nn.Module):
    """E(x, sigma) for 28x28 images in [-1, 1] (padded to 32 with -1): (N, 1, 28, 28), (N,) -> (N,)."""

    def __init__(self, ch: tuple[int, ...] = (16, 32, 64), sigma_data: float = 0.62) -> None:
        super().__init__()
        self.net = UNet(ch)
        self.sd = sigma_data

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        s = sigma.view(-1, 1, 1, 1)
        sd = self.sd
        c_skip = sd**2 / (s**2 + sd**2)
        c_out = s * sd / (s**2 + sd**2).sqrt()
        c_in = 1 / (s**2 + sd**2).sqrt()
        xp = F.pad(x, (2, 2, 2, 2), value=-1.0)
        f = self.net(c_in * xp, sigma.log() / 4)[..., 2:-2, 2:-2]
        return c_skip * x + c_out * f

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        d = self.denoise(x, sigma)
        return ((x - d) ** 2).flatten(1).sum(1) / (2 * sigma**2)


def dsm_loss(energy: DenoisingEnergy, x0: torch.Tensor, sigma: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Denoising score matching in the epsilon form: mean |sigma grad_x E(x0 + sigma eps, sigma) - eps|^2."""
    xt = (x0 + sigma.view(-1, 1, 1, 1) * eps).requires_grad_(True)
    (g,) = torch.autograd.grad(energy(xt, sigma).sum(), xt, create_graph=True)
    return ((sigma.view(-1, 1, 1, 1) * g - eps) ** 2).flatten(1).mean(1).mean()


class DSMDefense:
    """Noise of scale ``init_noise`` (default ``sigma_start``), then ``steps`` reverse steps from
    ``sigma_start`` to ``sigma_min`` (``mode`` ``ddim`` or ``ancestral``), then the classifier; the
    :class:`attacks.defenses.Defense` protocol, so the project's PGD, EOT and verification attack it."""

    name = "dsm"
    stochastic = True

    def __init__(self, energy: DenoisingEnergy, classifier: nn.Module, sigma_start: float, steps: int, sigma_min: float = 0.01,
                 mode: str = "ddim", init_noise: float | None = None) -> None:
        self.energy, self.classifier = energy.eval(), classifier.eval()
        for p in self.energy.parameters():
            p.requires_grad_(False)
        self.s0, self.n, self.smin, self.mode = sigma_start, steps, sigma_min, mode
        self.init = sigma_start if init_noise is None else init_noise
        self.sigmas = [sigma_start * (sigma_min / sigma_start) ** (i / max(1, steps - 1)) for i in range(steps)] + [0.0]

    def grad(self, x: torch.Tensor, s: float, create: bool) -> torch.Tensor:
        with torch.enable_grad():
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.energy(x, torch.full((x.shape[0],), s)).sum(), x, create_graph=create)
        return g

    def purify(self, x01: torch.Tensor, copies: int, seed: int | list[int], gradient: str) -> torch.Tensor:
        n = x01.shape[0]
        streams = [mix(s, r) for s in seed_list(seed, n) for r in range(copies)]
        x = (x01 * 2 - 1).repeat_interleave(copies, 0)
        shape = x.shape[1:]
        x = x + self.init * chain_noise(streams, -1, shape)
        exact = gradient == "exact"
        for i in range(self.n):
            si, sn = self.sigmas[i], self.sigmas[i + 1]
            g = self.grad(x, si, exact)
            if self.mode == "ddim":
                d = x - si**2 * g
                x = d + (sn / si) * (x - d)
            elif sn == 0:  # ancestral; the last step denoises
                x = x - si**2 * g
            else:
                v = si**2 - sn**2
                x = x - v * g + math.sqrt(v) * chain_noise(streams, i, shape)
        return ((x.clamp(-1, 1) + 1) / 2).view(n, copies, *shape)

    def logits(self, x: torch.Tensor, copies: int, seed: int | list[int], gradient: str) -> torch.Tensor:
        if gradient == "exact":
            p = self.purify(x, copies, seed, "exact")
        else:
            with torch.no_grad():
                p = self.purify(x.detach(), copies, seed, "none")
            if gradient == "bpda":
                p = p + (x[:, None] - x[:, None].detach())
        n, r = p.shape[:2]
        return self.classifier(p.flatten(0, 1)).view(n, r, -1)

    def describe(self) -> dict:
        return {"name": "dsm", "sigma": self.s0, "steps": self.n, "mode": self.mode, "init_noise": self.init}
