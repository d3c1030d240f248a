"""Settings of the adversarial examples that training chains start from.

Two training recipes start Langevin chains at PGD examples of training images made against a fixed
classifier: a classifier trained on purified transfer examples (``purified.attack``,
:mod:`purifier.training.purified_data`) and an EBM whose rejuvenated chains restart at such
examples (``rejuvenation_attack``, :mod:`purifier.training.ebm`). This package holds no attacks,
so the caller supplies an :data:`AttackSource` (the CLI passes Linf PGD from :mod:`attacks.pgd`);
this module checks the settings both share.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from purifier.errors import SettingsError

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
