"""A registry of architectures by name, so checkpoints can rebuild a model from its metadata."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from purifier.errors import CheckpointError

_ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make an architecture buildable as ``build(name, **args)``."""

    def add(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _ARCHITECTURES:
            raise ValueError(f"architecture {name!r} registered twice")
        _ARCHITECTURES[name] = cls
        return cls

    return add


def architectures() -> list[str]:
    """Names of every registered architecture."""
    return sorted(_ARCHITECTURES)


def build(name: str, **args: Any) -> nn.Module:
    """Construct the architecture ``name`` with its construction arguments."""
    if name not in _ARCHITECTURES:
        raise CheckpointError(f"unknown architecture {name!r} (known: {', '.join(architectures())})")
    try:
        return _ARCHITECTURES[name](**args)
    except TypeError as err:
        raise CheckpointError(f"bad arguments for architecture {name!r}: {err}") from None
