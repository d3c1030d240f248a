"""Derived training images (purified copies, attacked chain starts) cached under the download cache.

Making them costs minutes to hours (a Langevin chain or a PGD run per training image), so each set
is stored once as ``<cache>/<kind>/<key>.safetensors``, where the key hashes everything the images
depend on: a description (settings, the sha256 of the models involved) and the input tensors.
Files are written under a temporary name and renamed, so an interrupted run leaves no half file.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from purifier.config import cache_dir


def cache_key(description: dict[str, Any], *tensors: torch.Tensor) -> str:
    """A 20-hex-digit key over ``description`` (JSON-able) and the bytes of ``tensors``."""
    h = hashlib.sha256(json.dumps(description, sort_keys=True).encode())
    for t in tensors:
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def load_cached(kind: str, key: str) -> torch.Tensor | None:
    """The cached images of ``kind`` under ``key``, or None."""
    path = cache_dir() / kind / f"{key}.safetensors"
    return load_file(str(path))["images"] if path.is_file() else None


def store_cached(kind: str, key: str, images: torch.Tensor, description: dict[str, Any]) -> None:
    """Cache ``images`` of ``kind`` under ``key``, with ``description`` in the file's metadata."""
    path = cache_dir() / kind / f"{key}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    save_file({"images": images.contiguous()}, str(partial), metadata={"description": json.dumps(description)})
    partial.replace(path)
