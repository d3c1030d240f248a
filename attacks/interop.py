"""torchattacks interop: any torchattacks attack runs unchanged on a defense exposed as an
``nn.Module`` over [0, 1] images whose backward through the purifier is BPDA (identity) and whose
every call draws fresh purification noise (so EOTPGD's ``eot_iter`` averages over it).

Usage::

    import torchattacks
    module = defense_module(defense, copies=1)
    x_adv = torchattacks.EOTPGD(module, eps=0.3, alpha=0.01, steps=40, eot_iter=8)(x, y)
"""

from __future__ import annotations

import torchattacks
from torch import nn

from attacks.defenses import Defense, EBMDefense, NoDefense
from purifier.defense import DefendedClassifier
from purifier.errors import SettingsError

SUPPORTED = {"PGD": torchattacks.PGD, "EOTPGD": torchattacks.EOTPGD, "APGD": torchattacks.APGD, "PGDL2": torchattacks.PGDL2, "FGSM": torchattacks.FGSM}


def defense_module(defense: Defense, copies: int = 1, seed: int = 0) -> nn.Module:
    """The defense as an ``nn.Module`` with BPDA backward and fresh noise per call."""
    if isinstance(defense, NoDefense):
        return defense.classifier
    if isinstance(defense, EBMDefense):
        c = defense.config
        return DefendedClassifier(defense.purifier, defense.classifier, replicates=copies, steps=c.steps, gradient="bpda",
                                  seed=seed, step_size=c.step_size, temperature=c.temperature)
    raise SettingsError(f"defense {defense.name!r} has no torchattacks module")


def torchattacks_attack(name: str, module: nn.Module, norm: str, eps: float, step_size: float, steps: int, eot: int, seed: int) -> torchattacks.attack.Attack:
    """Build torchattacks' ``name`` with this evaluation's budget."""
    if name not in SUPPORTED:
        raise SettingsError(f"torchattacks:{name} is not wired up (supported: {', '.join(SUPPORTED)})")
    if name == "EOTPGD":
        return torchattacks.EOTPGD(module, eps=eps, alpha=step_size, steps=steps, eot_iter=eot)
    if name == "APGD":
        return torchattacks.APGD(module, norm="Linf" if norm == "linf" else "L2", eps=eps, steps=steps, eot_iter=eot, seed=seed)
    if name == "PGDL2":
        return torchattacks.PGDL2(module, eps=eps, alpha=step_size, steps=steps)
    if name == "FGSM":
        return torchattacks.FGSM(module, eps=eps)
    return torchattacks.PGD(module, eps=eps, alpha=step_size, steps=steps)
