"""Settings of the adversarial examples that training chains start from.

Two training recipes start Langevin chains at PGD examples of training images made against a fixed
classifier: a classifier trained on purified transfer examples (``purified.attack``,
:mod:`purifier.training.purified_data`) and an EBM whose rejuvenated chains restart at such
examples (``rejuvenation_attack``, :mod:`purifier.training.ebm`). This package holds no attacks,
so the caller supplies an :data:`AttackSource` (the CLI passes Linf PGD from :mod:`attacks.pgd`);
this module checks the settings both share and caches what the source makes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from purifier.checkpoint import read_metadata, resolve
from purifier.errors import SettingsError
from purifier.training.image_cache import cache_key, load_cached, store_cached

# (images in [0, 1], labels, attack settings {classifier, eps, steps, ...}) -> adversarial images in [0, 1]
AttackSource = Callable[[torch.Tensor, torch.Tensor, dict[str, Any]], torch.Tensor]

ATTACK_KEYS = {"classifier", "eps", "steps"}


def is_int(value: object) -> bool:
    """True for an integer that is not a bool (TOML and JSON integers)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """True for an integer or a float, not a bool or a string."""
    return is_int(value) or isinstance(value, float)


def check_attack(attack: object, where: str, extra: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Validate an attack table with exactly the keys classifier (model reference), eps > 0 and
    steps >= 1, plus ``extra`` (checked by the caller); returns it with eps as a float."""
    keys = ATTACK_KEYS | extra
    if not isinstance(attack, dict) or set(attack) != keys:
        raise SettingsError(f"{where}: needs exactly {', '.join(sorted(keys))}")
    eps, steps = attack["eps"], attack["steps"]
    if not isinstance(attack["classifier"], str) or not (is_number(eps) and eps > 0) or not (is_int(steps) and steps >= 1):
        raise SettingsError(f"{where}: classifier is a model reference, eps > 0, steps an integer >= 1")
    return {**attack, "eps": float(eps)}


def cached_attack(source: AttackSource, method: str) -> AttackSource:
    """``source`` with its results cached (:mod:`purifier.training.image_cache`, kind ``attacked``), keyed
    by ``method`` (what the source computes, e.g. its attack and step rule), the classifier, eps and
    steps, the attacked classifier's weights (sha256) and the images and labels: a rerun with the same
    inputs reads the examples instead of attacking again."""

    def run(x: torch.Tensor, y: torch.Tensor, attack: dict[str, Any]) -> torch.Tensor:
        weights = read_metadata(resolve(attack["classifier"], "classifier"))["weights"]["sha256"]
        described = {"method": method, "attack": {k: attack[k] for k in sorted(ATTACK_KEYS)}, "classifier_sha256": weights}
        key = cache_key(described, x, y)
        if (hit := load_cached("attacked", key)) is not None:
            return hit
        out = source(x, y, attack)
        store_cached("attacked", key, out, described)
        return out

    return run
