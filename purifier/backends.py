"""Execution backends: one interface over which the CLI and the service run purification and
classification, so the torch and onnxruntime implementations are interchangeable.

A backend holds an EBM (and optionally a classifier) and offers:
- ``purify(x, config, seeds, hook)`` -> (copies (N, R, C, H, W) in [0, 1], completed (N * R,))
- ``energy(x)`` -> (N,) energies of [0, 1] images
- ``classify(x)`` -> (N, classes) logits of [0, 1] images
Same seeds give the same chain noise in every backend (noise is drawn by :mod:`purifier.langevin`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import nn

from purifier.errors import SettingsError
from purifier.langevin import LangevinConfig, StepHook
from purifier.purifier import Purifier


class Backend(Protocol):
    name: str
    image_shape: tuple[int, int, int]
    defaults: LangevinConfig
    num_classes: int | None
    metadata: dict[str, Any]

    def purify(self, x: torch.Tensor, config: LangevinConfig, seeds: Sequence[int], hook: StepHook | None = None) -> tuple[torch.Tensor, torch.Tensor]: ...

    def energy(self, x: torch.Tensor) -> torch.Tensor: ...

    def classify(self, x: torch.Tensor) -> torch.Tensor: ...


class TorchBackend:
    """The eager PyTorch backend (CPU or CUDA)."""

    name = "torch"

    def __init__(self, purifier: Purifier, classifier: nn.Module | None = None, num_classes: int | None = None) -> None:
        if purifier.image_shape is None:
            raise SettingsError("the EBM checkpoint does not record its image shape")
        self.purifier = purifier
        self.classifier = classifier.eval() if classifier is not None else None
        self.image_shape: tuple[int, int, int] = purifier.image_shape  # type: ignore[assignment]
        self.defaults = purifier.defaults
        self.num_classes = num_classes
        self.metadata = purifier.metadata

    def purify(self, x: torch.Tensor, config: LangevinConfig, seeds: Sequence[int], hook: StepHook | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        copies, completed = self.purifier.run_chains(x, config, list(seeds), hook)
        return copies.cpu(), completed

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        return self.purifier.energy_of(x).cpu()

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        if self.classifier is None:
            raise SettingsError("no classifier is configured")
        with torch.no_grad():
            return self.classifier(x.to(self.purifier.device)).cpu()
