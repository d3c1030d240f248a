"""Langevin dynamics on an energy E(x): the sampler every other part of ebm-purify calls.

One step, for a density p(x) ~ exp(-E(x) / T) (Hill, Mitchell & Zhu, "Stochastic Security",
ICLR 2021, https://arxiv.org/abs/2005.13525; "EBM Life Cycle", 2022):

    x_{t+1} = x_t - (eps^2 / (2 T)) * grad_x E(x_t) + eps * z_t,      z_t ~ N(0, I)

optionally followed by a clamp to [lo, hi]. With T = 1 this is the unadjusted Langevin algorithm;
its stationary law for E(x) = |x - mu|^2 / 2 is N(mu, T * I) up to O(eps^2) bias. With
``step_size_final`` set, eps is annealed geometrically from ``step_size`` at step 0 to
``step_size_final`` at step K - 1 (a step-size schedule: the drift scales with eps^2 and the noise
with eps); with ``temperature_final`` set, T is annealed the same way from ``temperature`` (a
temperature schedule: the drift scales with 1 / T, the noise stays eps). Both may be set. With
``box`` set, every state is also clamped to the Linf ball of that radius around its chain's start
(projected Langevin; with ``clamp`` too, to their intersection): a chain started at an attacked
image x + delta with |delta|_inf <= eps stays where the clean image x is, within box >= eps, and
cannot turn the attack's faint strokes into full ones.

Noise is a pure function of (chain stream, step): chain streams come from a per-image seed and a
replicate index (:func:`chain_streams`), and step t of a chain draws from a CPU generator seeded
with ``mix(stream, t)``. Therefore an image's output depends only on its pixels, its seed and the
settings, never on its batch-mates or position, and any step's noise can be regenerated later (the
exact-gradient backward in :mod:`purifier.chain_gradient` and the ONNX backend rely on it).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
from torch import nn

from purifier.errors import SettingsError

_MASK64 = (1 << 64) - 1

# Called after each completed step with (steps done, indices of the chains still running);
# may return a bool mask over those chains: False stops a chain (its last state is kept).
StepHook = Callable[[int, torch.Tensor], "torch.Tensor | None"]


def mix(*parts: int) -> int:
    """Hash integers into a 63-bit seed (SplitMix64 finaliser chained over the parts)."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (p & _MASK64)) & _MASK64
        h = (h + 0x9E3779B97F4A7C15) & _MASK64
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK64
        h ^= h >> 31
    return h >> 1


def chain_streams(seeds: Sequence[int], replicates: int) -> list[int]:
    """Stream ids of the ``len(seeds) * replicates`` chains, image-major (image i, copy r)."""
    return [mix(int(s), r) for s in seeds for r in range(replicates)]


def chain_noise(streams: Sequence[int], step: int, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """z_t for each chain on the CPU: standard normal, a pure function of (stream, step), so every
    backend and device draws the same noise."""
    out = torch.empty((len(streams), *shape))
    gen = torch.Generator()
    for i, s in enumerate(streams):
        gen.manual_seed(mix(s, step))
        out[i].normal_(generator=gen)
    return out


# dtypes the energy gradient may be computed in
PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU runs bfloat16 convolutions natively (AVX-512 BF16 or AMX, as oneDNN reports it). Without them
    torch emulates bfloat16, and an energy gradient costs several times a float32 one: 13x for the Fashion-MNIST EBM at
    batch 64 on an AVX2-only EPYC (191 against 2457 image-steps/s), where the AVX-512 EPYC of the benchmarks ran it 1.5x faster."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


# noise index of the start perturbation (steps use 0, 1, ...)
INIT_NOISE_STEP = -1


def chain_starts(x: torch.Tensor, streams: Sequence[int], replicates: int, init_noise: float = 0.0) -> torch.Tensor:
    """Start states of the ``len(x) * replicates`` chains (image-major) from images in the EBM's range,
    each perturbed by ``init_noise`` times its own start noise (a pure function of its stream)."""
    start = x.repeat_interleave(replicates, dim=0)
    if init_noise > 0:
        start = start + init_noise * chain_noise(streams, INIT_NOISE_STEP, x.shape[1:]).to(x.device, x.dtype)
    return start


@dataclass(frozen=True)
class LangevinConfig:
    """Settings of a Langevin chain.

    Args:
        steps: number of Langevin steps K (default 500).
        step_size: eps, the noise scale per step (default 0.0125).
        temperature: T; the drift is eps^2 / (2 T) * grad E (default 1e-4).
        clamp: optional (lo, hi) applied after every step, in the EBM's range (default None:
            no clamping in the chain, as Hill et al. do).
        replicates: purified copies per image (default 1).
        init_noise: sigma of Gaussian noise added to each chain's start, in the EBM's range, before
            the first step (noise-then-Langevin, as score-based purification does; default 0).
        precision: ``float32`` (default) or ``bfloat16``: the dtype the energy gradient is computed
            in (autocast); the chain state stays float32. bfloat16 runs about 2x faster on CPUs with
            AVX512-BF16/AMX; its error is far below the chain's own noise (tests/test_precision.py).
        step_size_final: eps at the last step of a geometric step-size schedule over steps
            0..K-1 (default None: constant ``step_size``). Chains continued past K keep the final eps.
            A value equal to ``step_size`` is stored as None (how a change on top of a scheduled
            default asks for a constant chain).
        temperature_final: T at the last step of a geometric temperature schedule over steps 0..K-1
            (default None: constant ``temperature``); continued chains keep the final T. Equal to
            ``temperature``: None, as for the step size.
        box: radius of the Linf ball around each chain's start that every state is clamped to, in the
            EBM's range (default None: no ball). For a [-1, 1] EBM, 0.6 is radius 0.3 in [0, 1] images.
    """

    steps: int = 500
    step_size: float = 0.0125
    temperature: float = 1e-4
    clamp: tuple[float, float] | None = None
    replicates: int = 1
    init_noise: float = 0.0
    precision: str = "float32"
    step_size_final: float | None = None
    temperature_final: float | None = None
    box: float | None = None

    def __post_init__(self) -> None:
        if self.clamp is not None:  # from JSON or TOML as a list
            if len(self.clamp) != 2:
                raise SettingsError(f"clamp must be (lo, hi), got {self.clamp}")
            object.__setattr__(self, "clamp", (float(self.clamp[0]), float(self.clamp[1])))
        if self.steps < 0:
            raise SettingsError(f"steps must be >= 0, got {self.steps}")
        if not self.step_size > 0:
            raise SettingsError(f"step_size must be > 0, got {self.step_size}")
        if not self.temperature > 0:
            raise SettingsError(f"temperature must be > 0, got {self.temperature}")
        if self.replicates < 1:
            raise SettingsError(f"replicates must be >= 1, got {self.replicates}")
        if self.precision not in PRECISIONS:
            raise SettingsError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.step_size_final is not None and not self.step_size_final > 0:
            raise SettingsError(f"step_size_final must be > 0, got {self.step_size_final}")
        if self.temperature_final is not None and not self.temperature_final > 0:
            raise SettingsError(f"temperature_final must be > 0, got {self.temperature_final}")
        if not self.init_noise >= 0:
            raise SettingsError(f"init_noise must be >= 0, got {self.init_noise}")
        if self.box is not None and not self.box > 0:
            raise SettingsError(f"box must be > 0, got {self.box}")
        if self.clamp is not None and not self.clamp[0] < self.clamp[1]:
            raise SettingsError(f"clamp must be (lo, hi) with lo < hi, got {self.clamp}")
        # a schedule that ends where it starts is no schedule: this is how settings on top of a scheduled default
        # (a variant, a request) ask for a constant chain
        if self.step_size_final == self.step_size:
            object.__setattr__(self, "step_size_final", None)
        if self.temperature_final == self.temperature:
            object.__setattr__(self, "temperature_final", None)

    def _geometric(self, start: float, final: float | None, step: int) -> float:
        if final is None:
            return start
        progress = min(1.0, max(0, step) / max(1, self.steps - 1))
        return start * (final / start) ** progress

    def step_size_at(self, step: int) -> float:
        """eps at chain step ``step`` (constant unless a schedule is set)."""
        return self._geometric(self.step_size, self.step_size_final, step)

    def temperature_at(self, step: int) -> float:
        """T at chain step ``step`` (constant unless a schedule is set)."""
        return self._geometric(self.temperature, self.temperature_final, step)

    def drift_at(self, step: int) -> float:
        """The gradient coefficient eps_t^2 / (2 T_t) at chain step ``step``."""
        return self.step_size_at(step) ** 2 / (2.0 * self.temperature_at(step))

    def chain_label(self) -> str:
        """Step size and temperature with their schedules, e.g. ``eps 0.025 -> 0.00625, T 0.0001``."""
        eps = f"eps {self.step_size:g}" + (f" -> {self.step_size_final:g}" if self.step_size_final is not None else "")
        temp = f"T {self.temperature:g}" + (f" -> {self.temperature_final:g}" if self.temperature_final is not None else "")
        return f"{eps}, {temp}" + (f", box {self.box:g}" if self.box is not None else "")

    def updated(self, **changes: Any) -> LangevinConfig:
        """A copy with the given fields changed; None values are ignored."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["clamp"] = list(self.clamp) if self.clamp is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LangevinConfig:
        known = {f.name: d[f.name] for f in fields(cls) if f.name != "clamp" and f.name in d}
        clamp = d.get("clamp")
        return cls(**known, clamp=tuple(clamp) if clamp is not None else None)


Bound = float | torch.Tensor | None
Bounds = tuple[Bound, Bound]


def langevin_update(
    x: torch.Tensor, grad: torch.Tensor, noise: torch.Tensor, drift: float | torch.Tensor, scale: float | torch.Tensor,
    lo: Bound = None, hi: Bound = None,
) -> torch.Tensor:
    """One Langevin update, ``x - drift * grad + scale * noise``, then clamped to [lo, hi] (numbers or
    per-element tensors; None: no bound); ``drift`` is eps_t^2 / (2 T_t) and ``scale`` eps_t
    (:meth:`LangevinConfig.drift_at`, :meth:`~LangevinConfig.step_size_at`). The ONNX step graphs
    trace this function with all of ``drift``, ``scale``, ``lo`` and ``hi`` as inputs."""
    x = x - drift * grad + scale * noise
    return x if lo is None and hi is None else x.clamp(min=lo, max=hi)


def chain_bounds(config: LangevinConfig, origin: torch.Tensor) -> Bounds:
    """(lo, hi) every state of chains started at ``origin`` is clamped to: ``clamp``, the ``box``
    around ``origin``, or their intersection (tensors shaped like ``origin`` when there is a box)."""
    lo, hi = config.clamp if config.clamp is not None else (None, None)
    if config.box is None:
        return lo, hi
    lower, upper = origin - config.box, origin + config.box
    return (lower.clamp(min=lo) if lo is not None else lower), (upper.clamp(max=hi) if hi is not None else upper)


def box_binds(config: LangevinConfig, origin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Where the lower / upper bound of :func:`chain_bounds` is the box's, not the clamp's (boolean
    tensors shaped like ``origin``; None without a box): a state held there moves with ``origin``."""
    if config.box is None:
        return None
    if config.clamp is None:
        free = torch.ones_like(origin, dtype=torch.bool)
        return free, free
    return origin - config.box > config.clamp[0], origin + config.box < config.clamp[1]


def rows_of(bounds: Bounds, rows: torch.Tensor) -> Bounds:
    """The bounds of some chains (per-chain tensors are indexed, numbers and None pass)."""
    return tuple(b[rows] if isinstance(b, torch.Tensor) else b for b in bounds)  # type: ignore[return-value]


@dataclass
class LangevinResult:
    """Final states of the chains and which of them ran every step (the rest were stopped)."""

    x: torch.Tensor
    completed: torch.Tensor


class LangevinSampler:
    """Batched Langevin chains on an energy; the EBM's parameters never receive gradients.

    Args:
        energy: module mapping (N, C, H, W) -> (N,) energies, in its own data range.
        config: :class:`LangevinConfig`.
        micro_batch: pad the rows to a multiple of this many before evaluating the energy
            gradient, so each row always meets the same kernels: CPU convolution kernels are
            chosen by batch size and round differently (batch 1 and 3 differ in the last bit),
            while every multiple of 8 rows gives each row the same bits as groups of 8 do (checked
            for these models up to 256 rows, in float32 and bfloat16, 1 and 2 threads; the
            invariance tests guard it). An image's output is then bit-identical whatever batch it
            lands in. None evaluates the whole batch as it is (training). Default 8.
        group_rows: at most this many rows per energy call (rounded down to a multiple of
            ``micro_batch``; default 256); ``group_rows=micro_batch`` is the strictest setting.

    Usage::

        sampler = LangevinSampler(ebm, LangevinConfig(steps=500))
        out = sampler.run(x, chain_streams(seeds=[0] * len(x), replicates=1)).x
    """

    def __init__(self, energy: nn.Module, config: LangevinConfig, micro_batch: int | None = 8, group_rows: int = 256) -> None:
        if micro_batch is not None and micro_batch < 1:
            raise SettingsError(f"micro_batch must be >= 1, got {micro_batch}")
        self.energy = energy
        self.config = config
        self.micro_batch = micro_batch
        if config.precision == "bfloat16" and isinstance(energy, nn.Module):  # not the ONNX backend's sampler (no torch energy)
            weight = next(energy.parameters(), None)
            if (weight is None or weight.device.type == "cpu") and not cpu_has_native_bfloat16():
                warnings.warn(
                    "precision bfloat16: this CPU has no native bfloat16 (torch CPU capability "
                    f"{torch.backends.cpu.get_cpu_capability()}), so the energy gradients are emulated and run several "
                    "times slower than with precision float32", RuntimeWarning, stacklevel=2,
                )
        self.group_rows = max(micro_batch, group_rows - group_rows % micro_batch) if micro_batch else group_rows

    def energy_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """E(x) per image and grad_x E(x), without touching parameter gradients."""
        m = self.micro_batch
        if m is None:
            return self._energy_and_grad(x)
        n = x.shape[0]
        padded = torch.cat([x, x.new_zeros((-n % m, *x.shape[1:]))]) if n % m else x
        parts = [self._energy_and_grad(chunk) for chunk in padded.split(self.group_rows)]
        return torch.cat([e for e, _ in parts])[:n], torch.cat([g for _, g in parts])[:n]

    def _energy_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = self.config.precision != "float32"
        with torch.enable_grad(), torch.autocast(x.device.type, dtype=PRECISIONS[self.config.precision], enabled=low):
            x = x.detach().requires_grad_(True)
            e = self.energy(x).float()
            (g,) = torch.autograd.grad(e.sum(), x)
        return e.detach(), g

    def noise(self, streams: Sequence[int], step: int, shape: torch.Size, device: torch.device) -> torch.Tensor:
        """z_t for each chain (see :func:`chain_noise`)."""
        return chain_noise(streams, step, shape).to(device)

    def update(self, x: torch.Tensor, grad: torch.Tensor, noise: torch.Tensor, step: int, bounds: Bounds) -> torch.Tensor:
        """The Langevin update at chain step ``step`` (see :func:`langevin_update`), clamped to ``bounds``
        (these rows' :func:`chain_bounds`: a box's bounds depend on each chain's start, so they are always given)."""
        c = self.config
        return langevin_update(x, grad, noise, c.drift_at(step), c.step_size_at(step), *bounds)

    def step(self, x: torch.Tensor, streams: Sequence[int], step: int, bounds: Bounds) -> torch.Tensor:
        """One Langevin step of every chain."""
        _, g = self.energy_and_grad(x)
        return self.update(x, g, self.noise(streams, step, x.shape[1:], x.device), step, bounds)

    def advance(self, x: torch.Tensor, streams: Sequence[int], step: int, remaining: int, bounds: Bounds) -> tuple[torch.Tensor, int]:
        """Advance every chain by some steps (here one; backends may fuse several); returns (x, steps taken)."""
        return self.step(x, streams, step, bounds), 1

    def run(
        self,
        x: torch.Tensor,
        streams: Sequence[int],
        hook: StepHook | None = None,
        start_step: int = 0,
        origin: torch.Tensor | None = None,
    ) -> LangevinResult:
        """Run ``config.steps`` steps from ``x`` (one row per chain, ``len(streams)`` rows).

        ``hook`` is called after every step; chains it stops keep their last state and are
        marked not completed. ``start_step`` offsets the noise index and ``origin`` gives the chains'
        first states, the centres of the ``box`` (default ``x``), to continue a chain.
        """
        if len(streams) != x.shape[0]:
            raise SettingsError(f"{x.shape[0]} chains but {len(streams)} streams")
        _no_inference_mode()
        x = x.detach().clone()
        bounds = chain_bounds(self.config, (origin if origin is not None else x).detach())
        active = torch.arange(x.shape[0])
        streams = list(streams)
        end, t = start_step + self.config.steps, start_step
        with _frozen(self.energy), torch.no_grad():
            while t < end and len(active) > 0:
                everyone = len(active) == x.shape[0]
                rows = x if everyone else x[active]
                rows_bounds = bounds if everyone else rows_of(bounds, active)
                rows, taken = self.advance(rows, [streams[i] for i in active.tolist()], t, end - t, rows_bounds)
                t += taken
                if everyone:
                    x = rows
                else:
                    x[active] = rows
                if hook is not None:
                    keep = hook(t - start_step, active)
                    if keep is not None:
                        active = active[keep.to(torch.bool).cpu()]
        completed = torch.zeros(x.shape[0], dtype=torch.bool)
        completed[active] = True
        return LangevinResult(x=x, completed=completed)


class _frozen:
    """Context: parameters of a module stop requiring gradients, restored on exit."""

    def __init__(self, module: nn.Module | None) -> None:
        self.params = [p for p in module.parameters() if p.requires_grad] if module is not None else []

    def __enter__(self) -> None:
        for p in self.params:
            p.requires_grad_(False)

    def __exit__(self, *exc: object) -> None:
        for p in self.params:
            p.requires_grad_(True)


def frozen(module: nn.Module) -> _frozen:
    """Context manager in which ``module``'s parameters do not require gradients."""
    return _frozen(module)


def _no_inference_mode() -> None:
    if torch.is_inference_mode_enabled():
        raise SettingsError("Langevin purification needs autograd: call it under torch.no_grad(), not inference_mode()")
