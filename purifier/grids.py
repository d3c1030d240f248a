"""Image grids as PNG files (sample grids, chains along K, before/after comparisons)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> (N, H, W, C) uint8, rounding to nearest."""
    x = images.detach().cpu().clamp(0, 1).mul(255).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def grid(rows: list[torch.Tensor], pad: int = 2, scale: int = 2) -> Image.Image:
    """A grid image: one row per tensor (N, C, H, W) in [0, 1], rows padded to equal length."""
    ncol = max(r.shape[0] for r in rows)
    c, h, w = rows[0].shape[1:]
    canvas = np.full(((h + pad) * len(rows) + pad, (w + pad) * ncol + pad, c), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(to_uint8(row)):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            canvas[y : y + h, x : x + w] = img
    im = Image.fromarray(canvas[..., 0] if c == 1 else canvas)
    return im.resize((im.width * scale, im.height * scale), Image.NEAREST) if scale > 1 else im


def save_grid(rows: list[torch.Tensor], path: str | Path, scale: int = 2) -> Path:
    """Write :func:`grid` of ``rows`` as a PNG and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid(rows, scale=scale).save(path)
    return path
