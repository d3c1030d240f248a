"""Training configurations: dataclasses read from TOML files (one file per shipped model in
``configs/``), with command-line overrides. Unknown keys are an error, so a typo never trains
silently with a default."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from purifier.errors import SettingsError

T = TypeVar("T")


@dataclass
class EBMTrainConfig:
    """Midrun maximum-likelihood EBM training (Hill, Mitchell & Zhu; see :mod:`purifier.training.ebm`)."""

    dataset: str = "mnist"
    architecture: dict[str, Any] = field(default_factory=lambda: {"name": "conv-ebm", "args": {}})
    data_range: tuple[float, float] = (-1.0, 1.0)
    data_noise: float = 0.02           # std of the noise added to positive (data) images
    iterations: int = 3000
    batch_size: int = 64
    bank_size: int = 10000             # persistent chains, initialised from data
    rejuvenation: float = 0.05         # probability a drawn bank state is replaced by fresh data
    rejuvenation_noise: list[float] = field(default_factory=lambda: [0.0])  # sigmas mixed into rejuvenated data
    rejuvenation_attack: dict[str, Any] | None = None  # {classifier, eps, steps, images, fraction}: restart at PGD examples too
    init_from: str | None = None       # start from this EBM's weights (model reference): fine-tuning, e.g. with noised rejuvenation
    langevin_steps: int = 50           # K, Langevin steps per update
    step_size: float = 0.0125
    temperature: float = 1e-4
    lr: float = 1e-4
    lr_warmup: int = 200
    lr_final_fraction: float = 0.1     # cosine decay from lr to lr * this
    ema: float = 0.999
    grad_clip: float | None = None
    energy_penalty: float = 0.0        # alpha * mean(E_pos^2 + E_neg^2)
    denoise_weight: float = 0.0        # weight of the denoising term (purifier.training.denoising); 0 = off
    denoise_noise: list[float] = field(default_factory=lambda: [0.3, 0.6, 1.0])  # its sigmas (EBM range)
    denoise_horizon: float = 3.0       # chain steps (at step_size, temperature) whose drift should undo the noise
    divergence_gap: float | None = None  # |E_neg - E_pos| above this (or a non-finite loss) counts as divergence
    max_rollbacks: int = 3             # on divergence: back to the last checkpoint with the learning rate scaled, at most this often
    rollback_lr_factor: float = 0.5
    seed: int = 0
    checkpoint_every: int = 500
    sample_every: int = 1000
    log_every: int = 10
    grid_steps: list[int] = field(default_factory=lambda: [0, 100, 500, 1000, 2000])  # columns of the chain grids
    purify: dict[str, Any] = field(default_factory=lambda: {"steps": 500, "step_size": 0.0125, "temperature": 1e-4, "replicates": 1})


@dataclass
class ClassifierTrainConfig:
    """Classifier training, natural or PGD adversarial (Madry et al.), optionally through a purifier
    (:mod:`purifier.training.adversarial`)."""

    dataset: str = "mnist"
    architecture: dict[str, Any] = field(default_factory=lambda: {"name": "small-cnn", "args": {}})
    epochs: int = 3
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_final_fraction: float = 0.05
    augment_shift: int = 0             # random translations of up to this many pixels (zero fill) per training image; 0 = off
    adversarial: dict[str, Any] | None = None  # {eps, steps, step_size, norm, warmup, fraction, through, eot}: PGD training
    init_from: str | None = None       # start from this classifier's weights (model reference): fine-tuning
    purified: dict[str, Any] | None = None     # {"model", "fraction", "seed", "attack"}: train on purified copies too
    seed: int = 0
    log_every: int = 20
    checkpoint_every: int = 50         # steps between the resumable training states (``--resume``)


def load_config(cls: type[T], path: str | Path | None, overrides: dict[str, Any] | None = None) -> T:
    """Build ``cls`` from a TOML file (or defaults) and then ``overrides`` (None values ignored)."""
    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            values = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise SettingsError(f"{p}: config file not found") from None
        except tomllib.TOMLDecodeError as err:
            raise SettingsError(f"{p}: invalid TOML ({err})") from None
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        raise SettingsError(f"unknown config keys: {', '.join(unknown)}")
    if "data_range" in values:
        values["data_range"] = tuple(values["data_range"])
    return cls(**values)


def to_dict(config: object) -> dict[str, Any]:
    """The config as plain JSON-able data (for checkpoints and logs)."""
    return dataclasses.asdict(config)  # type: ignore[call-overload]
