"""Attack objectives on logits: cross-entropy and the margin (Carlini & Wagner 2017) loss.
Both are maximised by the attacker; per-example values, so restarts can keep the best."""

from __future__ import annotations

from enum import StrEnum

import torch
import torch.nn.functional as F


class Loss(StrEnum):
    CE = "ce"
    MARGIN = "margin"


def attack_loss(logits: torch.Tensor, labels: torch.Tensor, loss: Loss, targeted: bool = False) -> torch.Tensor:
    """Per-example objective to maximise. Untargeted: push away from ``labels``; targeted: towards."""
    if loss is Loss.CE:
        value = F.cross_entropy(logits, labels, reduction="none")
    else:
        true = logits.gather(1, labels[:, None])[:, 0]
        others = logits.masked_fill(F.one_hot(labels, logits.shape[1]).bool(), float("-inf")).amax(dim=1)
        value = others - true
    return -value if targeted else value
