"""Midrun EBM training by maximum likelihood (Hill, Mitchell & Zhu, "Stochastic Security",
ICLR 2021; "EBM Life Cycle", 2022, https://arxiv.org/abs/2205.12243).

Each update draws a batch from a persistent bank of chain states (initialised from data), replaces
a fraction of them with fresh data images ("rejuvenation", optionally noised), advances them K
Langevin steps (:mod:`purifier.langevin`) to get negatives, and minimises

    L(theta) = mean E(x_data + n) - mean E(x_neg)   [+ alpha * mean(E_data^2 + E_neg^2)]   [+ w * L_denoise]

with Adam (linear warm-up, cosine decay); L_denoise (``denoise_weight`` w > 0) is the denoising term
of :mod:`purifier.training.denoising`, asking the chain's drift at noised training images to undo the
noise. The negatives return to the bank. With ``rejuvenation_attack`` set, a fraction of the
rejuvenated states restart instead at Linf PGD examples of the first ``images`` training images
against a fixed classifier (made once, before training, by the caller's
:data:`~purifier.training.attack_starts.AttackSource`), so the energy also learns to lead attacked
images back to the data, which is what purification asks of it.

Chains started at data that stay on the data manifold for hundreds to thousands of steps are what
purification needs; the sample grids written during training (bank states; chains started at test images,
after 0, 100, 500, 1000, 2000 steps by default) show whether they do. The exponential moving average of the
weights is the model that is saved for purification. With ``divergence_gap`` set, an iteration whose
energy gap |E(neg) - E(pos)| exceeds it (or whose loss is not finite) is not applied: training goes
back to the last checkpoint with the learning rate scaled down (``rollback_lr_factor``), at most
``max_rollbacks`` times, and otherwise stops with :class:`~purifier.errors.TrainingDiverged`,
keeping the last good checkpoint.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from purifier.checkpoint import save_checkpoint
from purifier.data import load_dataset
from purifier.errors import SettingsError, TrainingDiverged
from purifier.grids import save_grid
from purifier.langevin import LangevinConfig, LangevinSampler, mix
from purifier.models import build
from purifier.training.attack_starts import AttackSource, check_attack, is_int, is_number
from purifier.training.configs import EBMTrainConfig, to_dict
from purifier.training.denoising import check_denoising, denoising_loss
from purifier.training.state import load_initial_weights, load_state, save_state


def lr_at(iteration: int, base: float, warmup: int, total: int, final_fraction: float) -> float:
    """Linear warm-up to ``base`` over ``warmup`` iterations, then cosine decay to ``base * final_fraction``."""
    if iteration < warmup:
        return base * (iteration + 1) / warmup
    progress = min(1.0, (iteration - warmup) / max(1, total - warmup))
    return base * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


def train_ebm(
    config: EBMTrainConfig,
    out_dir: str | Path,
    data_dir: str | Path | None = None,
    device: str = "cpu",
    resume: bool = False,
    provenance: dict[str, Any] | None = None,
    progress: bool = True,
    on_log: Callable[[dict[str, Any]], None] | None = None,
    attack_source: AttackSource | None = None,
) -> Path:
    """Train a midrun EBM; write the EMA model as ``out_dir/ebm.{safetensors,json}`` and return its path.

    ``attack_source`` is required when ``config.rejuvenation_attack`` is set."""
    check_denoising(config.denoise_weight, config.denoise_noise, config.denoise_horizon)
    out = Path(out_dir)
    (out / "samples").mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    lo, hi = config.data_range
    x_train, y_train = load_dataset(config.dataset, "train", data_dir)
    x_test, _ = load_dataset(config.dataset, "test", data_dir)
    attacked = _attacked_pool(config, x_train, y_train, attack_source)
    x_train = x_train * (hi - lo) + lo
    model = build(config.architecture["name"], **config.architecture.get("args", {})).to(device)
    if config.init_from and not resume:
        load_initial_weights(model, config.init_from, "ebm", config.architecture)
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    bank = x_train[torch.randperm(len(x_train), generator=gen)[: config.bank_size]].clone()
    start, elapsed, info = 0, 0.0, {}
    state_path = out / "state"
    if resume:
        rest, info = load_state(state_path, {"model": model, "ema": ema}, optimizer)
        bank, start, elapsed = rest["bank"], info["iteration"], info["elapsed_s"]
        gen.set_state(rest["rng"])
    sampler = LangevinSampler(
        model, LangevinConfig(steps=config.langevin_steps, step_size=config.step_size, temperature=config.temperature), micro_batch=None
    )
    log = open(out / "train_log.jsonl", "a")
    bar = tqdm(initial=start, total=config.iterations, disable=not progress, desc="train-ebm")
    t0 = time.perf_counter() - elapsed
    it, lr_scale, rollbacks = start, float(info.get("lr_scale", 1.0)), int(info.get("rollbacks", 0))
    while it < config.iterations:
        for g in optimizer.param_groups:
            g["lr"] = lr_scale * lr_at(it, config.lr, config.lr_warmup, config.iterations, config.lr_final_fraction)
        idx = torch.randint(len(bank), (config.batch_size,), generator=gen)
        states = bank[idx]
        fresh = torch.rand(config.batch_size, generator=gen) < config.rejuvenation
        if fresh.any():
            states[fresh] = _rejuvenate(x_train, int(fresh.sum()), config, gen, attacked)
        streams = [mix(config.seed, it, j) for j in range(config.batch_size)]
        neg = sampler.run(states.to(device), streams).x
        pos = x_train[torch.randint(len(x_train), (config.batch_size,), generator=gen)].to(device)
        pos = pos + config.data_noise * torch.randn(pos.shape, generator=gen).to(device)
        e_pos, e_neg = model(pos), model(neg)
        loss = e_pos.mean() - e_neg.mean()
        gap = -loss.item()  # E(neg) - E(pos), before any energy penalty
        if not math.isfinite(gap) or (config.divergence_gap is not None and abs(gap) > config.divergence_gap):
            if rollbacks >= config.max_rollbacks or not state_path.with_suffix(".json").is_file():
                raise TrainingDiverged(
                    f"training diverged at iteration {it + 1} (energy gap {gap:.3g}) after {rollbacks} rollbacks; lower lr or raise divergence_gap"
                )
            rest, saved = load_state(state_path, {"model": model, "ema": ema}, optimizer)
            bank, back_to = rest["bank"], saved["iteration"]
            gen.set_state(rest["rng"])
            lr_scale, rollbacks = lr_scale * config.rollback_lr_factor, rollbacks + 1
            log.write(json.dumps({"event": "rollback", "iteration": it + 1, "gap": gap, "to_iteration": back_to, "lr_scale": lr_scale}) + "\n")
            bar.update(back_to - it)
            it = back_to
            continue
        if config.energy_penalty:
            loss = loss + config.energy_penalty * (e_pos.pow(2).mean() + e_neg.pow(2).mean())
        denoise = None
        if config.denoise_weight:  # no extra draws otherwise, so runs without it keep their random stream
            clean = x_train[torch.randint(len(x_train), (config.batch_size,), generator=gen)].to(device)
            denoise = denoising_loss(model, clean, config.denoise_noise, config.denoise_horizon * sampler.config.drift_at(0), gen)
            loss = loss + config.denoise_weight * denoise
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip or float("inf"))
        optimizer.step()
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), model.parameters(), strict=True):
                pe.lerp_(p, 1.0 - config.ema)
        bank[idx] = neg.detach().cpu()
        it += 1
        bar.update(1)
        if it % config.log_every == 0 or it == config.iterations:
            rec = {
                "iteration": it, "loss": loss.item(), "e_pos": e_pos.mean().item(), "e_neg": e_neg.mean().item(),
                "gap": gap, "grad_norm": float(grad_norm), "lr": optimizer.param_groups[0]["lr"],
                "elapsed_s": round(time.perf_counter() - t0, 1),
            }
            if denoise is not None:
                rec["denoise"] = denoise.item()
            log.write(json.dumps(rec) + "\n")
            log.flush()
            bar.set_postfix(loss=f"{rec['loss']:+.3f}", gap=f"{rec['gap']:+.3f}", gnorm=f"{rec['grad_norm']:.2f}")
            if on_log:
                on_log(rec)
        if it % config.checkpoint_every == 0 or it == config.iterations:
            info = {"iteration": it, "elapsed_s": time.perf_counter() - t0, "lr_scale": lr_scale, "rollbacks": rollbacks, "config": to_dict(config)}
            save_state(state_path, {"bank": bank, "rng": gen.get_state()}, {"model": model, "ema": ema}, optimizer, info)
            _export(ema, config, out, it, time.perf_counter() - t0, provenance)
        if it % config.sample_every == 0 or it == config.iterations:
            _sample_grids(ema, config, bank, x_test, out / "samples", it)
    bar.close()
    log.close()
    return out / "ebm.json"


def check_rejuvenation_attack(settings: object) -> dict[str, Any]:
    """Validate ``rejuvenation_attack``: classifier, eps, steps (as for every attack start), images an
    integer >= 1 and fraction in (0, 1]."""
    where = "rejuvenation_attack"
    checked = check_attack(settings, where, frozenset({"images", "fraction"}))
    if not is_int(checked["images"]) or checked["images"] < 1:
        raise SettingsError(f"{where}: images must be an integer >= 1, got {checked['images']!r}")
    if not is_number(checked["fraction"]) or not 0 < checked["fraction"] <= 1:
        raise SettingsError(f"{where}: fraction must be in (0, 1], got {checked['fraction']!r}")
    return checked


def _attacked_pool(config: EBMTrainConfig, x: torch.Tensor, y: torch.Tensor, source: AttackSource | None) -> tuple[torch.Tensor, float] | None:
    """PGD examples of the first ``images`` training images (in the EBM's range) and the fraction of
    rejuvenated chains that restart at them, or None."""
    if config.rejuvenation_attack is None:
        return None
    settings = check_rejuvenation_attack(config.rejuvenation_attack)
    if source is None:
        raise ValueError("rejuvenation_attack needs an attack_source function")
    n = min(settings["images"], len(x))
    lo, hi = config.data_range
    return source(x[:n], y[:n], settings) * (hi - lo) + lo, float(settings["fraction"])


def _rejuvenate(x_train: torch.Tensor, n: int, config: EBMTrainConfig, gen: torch.Generator, attacked: tuple[torch.Tensor, float] | None) -> torch.Tensor:
    fresh = x_train[torch.randint(len(x_train), (n,), generator=gen)]
    sigmas = torch.tensor(config.rejuvenation_noise, dtype=torch.float32)
    sigma = sigmas[torch.randint(len(sigmas), (n,), generator=gen)].view(-1, 1, 1, 1)
    fresh = fresh + sigma * torch.randn(fresh.shape, generator=gen)
    if attacked is not None:  # no extra draws otherwise, so runs without it keep their random stream
        pool, fraction = attacked
        use = torch.rand(n, generator=gen) < fraction
        fresh[use] = pool[torch.randint(len(pool), (int(use.sum()),), generator=gen)]
    return fresh


def _export(ema: torch.nn.Module, config: EBMTrainConfig, out: Path, iteration: int, seconds: float, provenance: dict[str, Any] | None) -> Path:
    lo, hi = config.data_range
    args = config.architecture.get("args", {})
    shape = [args.get("in_channels", 1), args.get("image_size", 28), args.get("image_size", 28)]
    meta = {
        "kind": "ebm",
        "architecture": {"name": config.architecture["name"], "args": args},
        "dataset": config.dataset,
        "image_shape": shape,
        "data_range": [lo, hi],
        "langevin": LangevinConfig.from_dict(config.purify).to_dict(),
        "training": {"recipe": "midrun", "iterations": iteration, "wall_time_s": round(seconds, 1), "config": to_dict(config), **(provenance or {})},
    }
    return save_checkpoint(ema, out / "ebm", meta)


def _sample_grids(ema: torch.nn.Module, config: EBMTrainConfig, bank: torch.Tensor, x_test: torch.Tensor, folder: Path, iteration: int) -> None:
    lo, hi = config.data_range
    save_grid([((bank[i * 16 : (i + 1) * 16] - lo) / (hi - lo)).clamp(0, 1) for i in range(4)], folder / f"bank_{iteration:06d}.png")
    x = x_test[:10] * (hi - lo) + lo
    streams = list(range(len(x)))
    columns, previous = [x], 0
    for k in sorted(set(config.grid_steps) - {0}):
        cfg = LangevinConfig.from_dict(config.purify).updated(steps=k - previous)
        columns.append(LangevinSampler(ema, cfg).run(columns[-1], streams, start_step=previous).x)
        previous = k
    rows = [torch.stack([c[i] for c in columns]) for i in range(len(x))]
    save_grid([((r - lo) / (hi - lo)).clamp(0, 1) for r in rows], folder / f"chains_{iteration:06d}.png")
