"""bfloat16 energy gradients: the purified images and the defended predictions of the shipped MNIST
model stay as they are in float32 (the change is far below the chain's own noise)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from purifier.checkpoint import load_classifier
from purifier.data import load_dataset
from purifier.purifier import Purifier


@pytest.mark.slow
def test_bfloat16_keeps_purified_images_and_defended_accuracy(data_dir: Path) -> None:
    fp32 = Purifier.load("mnist")
    bf16 = Purifier(fp32.energy, fp32.defaults.updated(precision="bfloat16"), fp32.data_range, fp32.image_shape, fp32.metadata)
    clf = load_classifier("mnist")
    x, y = load_dataset("mnist", "test", data_dir)
    x, y = x[:24], y[:24]
    a = fp32.copies(x, steps=100, replicates=4, seed=1)
    b = bf16.copies(x, steps=100, replicates=4, seed=1)
    other_seed = fp32.copies(x, steps=100, replicates=4, seed=2)
    precision_change = (a - b).abs().mean().item()
    noise_spread = (a - other_seed).abs().mean().item()
    assert precision_change < 0.1 * noise_spread, (precision_change, noise_spread)
    with torch.no_grad():
        pa, pb = (clf(c.flatten(0, 1)).view(24, 4, -1).mean(1).argmax(1) for c in (a, b))
    assert (pa == pb).sum() >= 23 and abs(int((pa == y).sum()) - int((pb == y).sum())) <= 1
