"""Purified copies of a training set, for classifiers that learn what the chain hands them.

A purifier's output is not a clean image: chains thin strokes, smooth texture and, on adversarial
inputs, leave residues. A classifier trained only on clean images meets these images first at test
time. Training on a mix of clean images and their purified copies (one chain per image, seeded by
its index in the training set, so the set is the same however it is chunked) removes that shift.
With ``attack`` set, the chains start at adversarial examples of the training images instead
(PGD against a fixed classifier, made by the caller: this package holds no attacks), so the
classifier also learns what the chain leaves of an attack.

Purifying a training set costs minutes to hours, so the copies are cached under the download cache
(``purified/``), keyed by the EBM's weights, the Langevin settings, the seed and the images.
"""

from __future__ import annotations

from typing import Any

import torch
from tqdm import tqdm

from purifier.errors import SettingsError
from purifier.purifier import Purifier
from purifier.training.attack_starts import check_attack, is_int, is_number
from purifier.training.image_cache import cache_key, load_cached, store_cached

KEYS = {"model", "fraction", "seed", "attack"}


def check_purified_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Validate a classifier config's ``purified`` table: model (reference), fraction in (0, 1], seed,
    and optionally attack = {classifier (reference), eps > 0, steps >= 1}."""
    if not isinstance(settings, dict):
        raise SettingsError("purified: must be a table (model, fraction, seed, attack)")
    if unknown := set(settings) - KEYS:
        raise SettingsError(f"purified: unknown keys {sorted(unknown)} (known: {', '.join(sorted(KEYS))})")
    if not isinstance(settings.get("model"), str):
        raise SettingsError('purified: needs model = "EBM reference or purification variant"')
    fraction = settings.get("fraction", 0.5)
    if not is_number(fraction) or not 0 < fraction <= 1:
        raise SettingsError(f"purified: fraction must be in (0, 1], got {fraction!r}")
    if not is_int(seed := settings.get("seed", 0)):
        raise SettingsError(f"purified: seed must be an integer, got {seed!r}")
    checked = {"model": settings["model"], "fraction": float(fraction), "seed": seed}
    if "attack" in settings:
        checked["attack"] = check_attack(settings["attack"], "purified.attack")
    return checked


def purified_copies(
    purifier: Purifier, x: torch.Tensor, seed: int = 0, chunk: int = 256, progress: bool = True, cache: bool = True
) -> tuple[torch.Tensor, dict[str, Any]]:
    """One purified copy of each image of ``x`` (N, C, H, W) in [0, 1], image i seeded ``seed + i``.

    Returns (copies, description); the description (EBM sha256, settings, seed, cache key) goes into
    the classifier's metadata.
    """
    config = purifier.config(replicates=1)
    described = {
        "ebm_sha256": purifier.metadata.get("weights", {}).get("sha256"),
        "langevin": config.to_dict(),
        "seed": seed,
        "images": len(x),
    }
    key = cache_key(described, x)
    described["cache_key"] = key
    if cache and (cached := load_cached("purified", key)) is not None:
        return cached, described
    out = torch.empty_like(x)
    for i in tqdm(range(0, len(x), chunk), disable=not progress, desc="purifying training images"):
        batch = x[i : i + chunk]
        out[i : i + len(batch)] = purifier.run_chains(batch, config, list(range(seed + i, seed + i + len(batch))))[0][:, 0].cpu()
    if cache:
        store_cached("purified", key, out, described)
    return out, described


def mix(x: torch.Tensor, purified: torch.Tensor, idx: torch.Tensor, fraction: float, gen: torch.Generator) -> torch.Tensor:
    """The batch ``idx``: each row its purified copy with probability ``fraction``, else the clean image."""
    use = torch.rand(len(idx), generator=gen) < fraction
    return torch.where(use.view(-1, *[1] * (x.ndim - 1)), purified[idx], x[idx])
