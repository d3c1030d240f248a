"""The purifier: images in [0, 1] in, Langevin-purified images in [0, 1] out.

``Purifier`` wraps an EBM checkpoint: it converts [0, 1] images to the range the EBM works in
(recorded in the checkpoint), runs R independent chains per image with :class:`LangevinSampler`,
converts back and clamps to [0, 1]. Its backward pass is chosen per call:
- ``"none"``: no gradient (serving, evaluation);
- ``"bpda"``: straight-through identity (Athalye et al. 2018, BPDA), d purified / d x = I;
- ``"exact"``: the true Jacobian of the chain (:mod:`purifier.chain_gradient`).

Usage::

    purifier = Purifier.load("mnist")
    clean = purifier(images, steps=500, seed=0)            # (N, C, H, W)
    copies = purifier.copies(images, replicates=8, seed=0)  # (N, R, C, H, W)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from purifier.chain_gradient import exact_chain
from purifier.checkpoint import load_checkpoint, resolve
from purifier.errors import SettingsError
from purifier.langevin import LangevinConfig, LangevinSampler, StepHook, chain_starts, chain_streams
from purifier.variants import is_variant, read_variant

Gradient = Literal["none", "bpda", "exact"]
Seeds = int | Sequence[int] | torch.Tensor


class Purifier(nn.Module):
    """Langevin purification with an EBM.

    Args:
        energy: the EBM, mapping images in ``data_range`` to energies (N,).
        defaults: default :class:`LangevinConfig` (steps, step size, temperature, replicates).
        data_range: (lo, hi), the range the EBM was trained on (default (-1, 1)).
        image_shape: (C, H, W) the EBM takes, checked on every call (default: not checked).
        metadata: the checkpoint's metadata, kept for reports.
        micro_batch: see :class:`LangevinSampler` (default 8).
    """

    def __init__(
        self,
        energy: nn.Module,
        defaults: LangevinConfig | None = None,
        data_range: tuple[float, float] = (-1.0, 1.0),
        image_shape: tuple[int, int, int] | None = None,
        metadata: dict[str, Any] | None = None,
        micro_batch: int | None = 8,
    ) -> None:
        super().__init__()
        self.energy = energy.eval()
        for p in self.energy.parameters():
            p.requires_grad_(False)
        self.defaults = defaults or LangevinConfig()
        self.data_range = (float(data_range[0]), float(data_range[1]))
        self.image_shape = tuple(image_shape) if image_shape is not None else None
        self.metadata = metadata or {}
        self.micro_batch = micro_batch

    @classmethod
    def load(cls, model: str | Path, device: str | torch.device = "cpu", expected_sha256: str | None = None) -> Purifier:
        """A purifier from a checkpoint path, a model folder, a shipped model name, or a purification
        variant (:mod:`purifier.variants`)."""
        energy, meta = load_checkpoint(resolve(model, "ebm"), expected_sha256=expected_sha256, device=device)
        defaults = LangevinConfig.from_dict(meta.get("langevin", {}))
        if is_variant(model):
            variant = read_variant(model)
            defaults, meta = variant.apply(defaults), {**meta, "variant": {"path": str(variant.path), "langevin": variant.langevin}}
        return cls(
            energy,
            defaults,
            tuple(meta.get("data_range", (-1.0, 1.0))),  # type: ignore[arg-type]
            tuple(meta["image_shape"]) if "image_shape" in meta else None,  # type: ignore[arg-type]
            meta,
        )

    @property
    def device(self) -> torch.device:
        return next(self.energy.parameters()).device

    def config(self, **overrides: Any) -> LangevinConfig:
        """The default Langevin settings with ``overrides`` (None values ignored)."""
        return self.defaults.updated(**overrides)

    def to_energy_range(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self.data_range
        return x * (hi - lo) + lo

    def from_energy_range(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self.data_range
        return (x - lo) / (hi - lo)

    def energy_of(self, x: torch.Tensor) -> torch.Tensor:
        """E(x) per image for images in [0, 1] (no gradient)."""
        self._check(x)
        with torch.no_grad():
            return self.energy(self.to_energy_range(x.to(self.device)))

    def forward(self, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """One purified copy per image: (N, C, H, W) -> (N, C, H, W). Takes :meth:`copies`' options."""
        kwargs["replicates"] = 1
        return self.copies(x, **kwargs)[:, 0]

    def copies(
        self,
        x: torch.Tensor,
        *,
        steps: int | None = None,
        replicates: int | None = None,
        step_size: float | None = None,
        temperature: float | None = None,
        seed: Seeds = 0,
        gradient: Gradient = "none",
        hook: StepHook | None = None,
    ) -> torch.Tensor:
        """R purified copies per image: (N, C, H, W) in [0, 1] -> (N, R, C, H, W) in [0, 1].

        ``seed`` is one int for every image or one per image; an image's copies depend only on
        its pixels, its seed and the settings. ``hook`` sees chain indices ``i * R + r``.
        """
        cfg = self.config(steps=steps, replicates=replicates, step_size=step_size, temperature=temperature)
        if gradient == "none":
            return self.run_chains(x, cfg, seed, hook)[0]
        n, r = x.shape[0], cfg.replicates
        streams, start = self._chain_starts(x, cfg, seed)
        sampler = LangevinSampler(self.energy, cfg, self.micro_batch)
        if gradient == "exact":
            if hook is not None:
                raise SettingsError("a step hook cannot be combined with exact gradients")
            out = exact_chain(start, sampler, streams)
            purified = self.from_energy_range(out).clamp(0.0, 1.0)
        elif gradient == "bpda":  # identity backward, straight through the final clamp too
            out = sampler.run(start, streams, hook=hook).x
            purified = self.from_energy_range(start + (out - start.detach()).detach())
            purified = purified + (purified.clamp(0.0, 1.0) - purified).detach()
        else:
            raise SettingsError(f"gradient must be 'none', 'bpda' or 'exact', got {gradient!r}")
        return purified.view(n, r, *x.shape[1:])

    def run_chains(self, x: torch.Tensor, config: LangevinConfig, seed: Seeds = 0, hook: StepHook | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Purify without gradient: (copies (N, R, C, H, W) in [0, 1], completed (N * R,) bool).

        Chains a ``hook`` stops keep their last state and are marked not completed."""
        n, r = x.shape[0], config.replicates
        streams, start = self._chain_starts(x, config, seed)
        result = LangevinSampler(self.energy, config, self.micro_batch).run(start, streams, hook=hook)
        return self.from_energy_range(result.x).clamp(0.0, 1.0).view(n, r, *x.shape[1:]), result.completed

    def trajectory(self, x: torch.Tensor, at_steps: Sequence[int], *, replicates: int | None = None, seed: Seeds = 0) -> dict[int, torch.Tensor]:
        """Purified copies after each of ``at_steps`` steps of the same chains (no gradient):
        ``{K: (N, R, C, H, W)}``, each equal to :meth:`copies` with ``steps=K``, at the cost of the largest K.
        With a step-size or temperature schedule each K is a chain of its own (the schedule spans its K
        steps), so the cost is the sum of the K."""
        cfg = self.config(replicates=replicates)
        if cfg.step_size_final is not None or cfg.temperature_final is not None:
            return {k: self.run_chains(x, cfg.updated(steps=k), seed)[0] for k in sorted(set(at_steps))}
        n, r = x.shape[0], cfg.replicates
        streams, state = self._chain_starts(x, cfg, seed)
        origin, out, done = state, {}, 0
        for k in sorted(set(at_steps)):
            state = LangevinSampler(self.energy, cfg.updated(steps=k - done), self.micro_batch).run(state, streams, start_step=done, origin=origin).x
            done = k
            out[k] = self.from_energy_range(state).clamp(0.0, 1.0).view(n, r, *x.shape[1:])
        return out

    def _chain_starts(self, x: torch.Tensor, config: LangevinConfig, seed: Seeds) -> tuple[list[int], torch.Tensor]:
        """Noise streams and start states of the N * R chains (image-major), in the EBM's range."""
        self._check(x)
        streams = chain_streams(seed_list(seed, x.shape[0]), config.replicates)
        return streams, chain_starts(self.to_energy_range(x.to(self.device)), streams, config.replicates, config.init_noise)

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4:
            raise SettingsError(f"expected images (N, C, H, W), got shape {tuple(x.shape)}")
        if self.image_shape is not None and tuple(x.shape[1:]) != self.image_shape:
            raise SettingsError(f"this EBM takes images of shape {self.image_shape}, got {tuple(x.shape[1:])}")
        if not torch.isfinite(x).all():
            raise SettingsError("images contain NaN or infinite values")


def seed_list(seed: Seeds, n: int) -> list[int]:
    """Per-image seeds: one int for every image, or a sequence/tensor of ``n``."""
    if isinstance(seed, int):
        return [seed] * n
    seeds = [int(s) for s in (seed.tolist() if isinstance(seed, torch.Tensor) else seed)]
    if len(seeds) != n:
        raise SettingsError(f"{n} images but {len(seeds)} seeds")
    return seeds
