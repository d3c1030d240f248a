"""Settings of adversarial classifier training, and training through the purifier.

Plain PGD training (Madry et al. 2018) attacks the bare classifier. With ``through`` set, the
classifier is trained as the defense uses it: each attacked image is a BPDA(+EOT) PGD example
against the purifier followed by the classifier being trained (made by the caller's ``perturb``:
this package holds no attacks), and what the classifier learns from is one seeded chain of the
purifier started at it, as at test time. ``fraction`` attacks only that share of each batch
(the rest: the clean image, through the chain too when ``through`` is set), the mix Goodfellow et
al. (2015) trained on, which keeps clean accuracy when fine-tuning a natural classifier
(``init_from``). This is the costly recipe: every attacked image costs ``steps + 1`` chains of
``eot`` copies plus the one it is trained on.
"""

from __future__ import annotations

from typing import Any

import torch

from purifier.errors import SettingsError
from purifier.langevin import mix
from purifier.purifier import Purifier
from purifier.training.attack_starts import is_int, is_number

KEYS = {"eps", "steps", "step_size", "norm", "warmup", "fraction", "through", "eot"}


def check_adversarial_settings(settings: object) -> dict[str, Any]:
    """Validate a classifier config's ``adversarial`` table: eps > 0, steps >= 1, step_size > 0,
    norm linf or l2, warmup and fraction in [0, 1] / (0, 1], through (purifier reference) and eot
    >= 1 (only with through); returns it with the defaults of the unset keys that have one
    (steps 10, norm linf, warmup 0, fraction 1, eot 1 with through)."""
    if not isinstance(settings, dict):
        raise SettingsError("adversarial: must be a table (eps, steps, step_size, norm, warmup, fraction, through, eot)")
    if unknown := set(settings) - KEYS:
        raise SettingsError(f"adversarial: unknown keys {sorted(unknown)} (known: {', '.join(sorted(KEYS))})")
    checked = {"steps": 10, "norm": "linf", "warmup": 0.0, "fraction": 1.0, **settings}
    if not is_number(checked.get("eps")) or checked["eps"] <= 0:
        raise SettingsError(f"adversarial: eps must be a number > 0, got {checked.get('eps')!r}")
    if not is_int(checked["steps"]) or checked["steps"] < 1:
        raise SettingsError(f"adversarial: steps must be an integer >= 1, got {checked['steps']!r}")
    if "step_size" in checked and (not is_number(checked["step_size"]) or checked["step_size"] <= 0):
        raise SettingsError(f"adversarial: step_size must be a number > 0, got {checked['step_size']!r}")
    if checked["norm"] not in ("linf", "l2"):
        raise SettingsError(f"adversarial: norm must be linf or l2, got {checked['norm']!r}")
    if not is_number(checked["warmup"]) or not 0 <= checked["warmup"] <= 1:
        raise SettingsError(f"adversarial: warmup must be in [0, 1], got {checked['warmup']!r}")
    if not is_number(checked["fraction"]) or not 0 < checked["fraction"] <= 1:
        raise SettingsError(f"adversarial: fraction must be in (0, 1], got {checked['fraction']!r}")
    if "through" in checked:
        if not isinstance(checked["through"], str):
            raise SettingsError('adversarial: through must be a purifier reference, e.g. "configs/purify/mnist-noised-box.toml"')
        checked.setdefault("eot", 1)
    if "eot" in checked and ("through" not in checked or not is_int(checked["eot"]) or checked["eot"] < 1):
        raise SettingsError(f"adversarial: eot is the number of chains per attack gradient (an integer >= 1) and needs through, got {checked['eot']!r}")
    return {**checked, "eps": float(checked["eps"]), "warmup": float(checked["warmup"]), "fraction": float(checked["fraction"])}


class DefendedView:
    """What the classifier sees at test time, for a training batch: one chain of ``purifier`` per
    image, seeded by (training seed, step, row), so a run repeats."""

    def __init__(self, purifier: Purifier, seed: int) -> None:
        self.purifier, self.seed = purifier, seed

    def __call__(self, x: torch.Tensor, step: int) -> torch.Tensor:
        with torch.no_grad():
            return self.purifier(x, seed=[mix(self.seed, step, j) for j in range(len(x))])


def attacked_rows(n: int, fraction: float, gen: torch.Generator) -> torch.Tensor:
    """The rows of a batch of ``n`` to attack: each with probability ``fraction`` (all when 1)."""
    if fraction >= 1:
        return torch.ones(n, dtype=torch.bool)
    return torch.rand(n, generator=gen) < fraction

