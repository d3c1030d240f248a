"""Where the library looks for things: data, download cache and shipped weights (and which of them is the default).

The one place the `purifier` package reads its environment:
- ``EBM_PURIFY_DATA``: folder with the data set files (npz, IDX ``.gz`` or CIFAR batches).
- ``EBM_PURIFY_CACHE``: where downloads go (default ``~/.cache/ebm-purify``).
"""

from __future__ import annotations

import os
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

# the shipped model that commands and the service use when none is named: the MNIST point of the
# defense-strength study's Pareto frontier (README, "Defense strength")
DEFAULT_MODEL = "mnist-noised"


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The data folder: the explicit argument, else ``$EBM_PURIFY_DATA``, else None."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get("EBM_PURIFY_DATA")
    return Path(env) if env else None


def cache_dir() -> Path:
    """The download cache folder (created on demand by the downloader)."""
    env = os.environ.get("EBM_PURIFY_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "ebm-purify"
