"""Verification: an image counts as broken only when the full defense (R copies) misclassifies it.

Two numbers per image (Hill et al.'s protocol, as Croce et al. 2022 ask):
- final point: the full defense on the attack's final point;
- worst case over iterates: also broken if the full defense misclassifies any iterate the attack
  visited that its own (EOT) logits already misclassified, checking at most ``max_candidates`` of
  them per image, latest first. With no such iterate the worst case equals the final point.
"""

from __future__ import annotations

import torch

from attacks.defenses import Defense, defended_predictions
from attacks.pgd import PGDResult
from purifier.langevin import mix


def verify(
    defense: Defense, labels: torch.Tensor, result: PGDResult, replicates: int, seeds: list[int], max_candidates: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    """(final-point correct, worst-case correct), bool per image."""
    final_correct = defended_predictions(defense, result.x_adv, replicates, seeds) == labels.cpu()
    worst_correct = final_correct.clone()
    if result.iterates is None or result.iterate_fooled is None:
        return final_correct, worst_correct
    for rank in range(max_candidates):
        # for each still-correct image, its (rank+1)-th latest fooling iterate, if any
        picks, rows = [], []
        for i in torch.nonzero(worst_correct).flatten().tolist():
            steps = torch.nonzero(result.iterate_fooled[:, i]).flatten().flip(0)
            if rank < len(steps):
                picks.append(result.iterates[steps[rank], i])
                rows.append(i)
        if not rows:
            break
        candidate_seeds = [mix(seeds[i], 1 + rank) for i in rows]
        preds = defended_predictions(defense, torch.stack(picks).to(result.x_adv.device), replicates, candidate_seeds)
        broken = preds != labels.cpu()[rows]
        worst_correct[torch.tensor(rows)[broken]] = False
    return final_correct, worst_correct
