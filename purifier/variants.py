"""Purification variants: named settings files that stand wherever a model reference does.

A variant is a TOML file naming a base model and overriding its Langevin defaults, e.g.
``configs/purify/mnist-noise-0.5.toml``::

    model = "mnist"            # shipped name, model folder or checkpoint (relative to this file)
    [langevin]
    init_noise = 0.5           # any LangevinConfig field: steps, step_size, temperature, replicates, init_noise, precision, clamp, box,
                               # step_size_final, temperature_final (equal to step_size / temperature:
                               # a constant chain, even where the base model's default is a schedule)
    box = false                # false turns off a box, clamp or schedule (step_size_final, temperature_final) the base model's defaults have

``ebm-purify purify|evaluate|serve|export-onnx --model configs/purify/mnist-noise-0.5.toml`` then
purifies with the base model's weights and these settings; reports record the variant.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from purifier.errors import SettingsError
from purifier.langevin import LangevinConfig

_FIELDS = {f.name for f in fields(LangevinConfig)}
_SWITCHABLE = ("box", "clamp", "step_size_final", "temperature_final")  # optional settings a variant turns off with ``false`` (TOML has no null)


@dataclass(frozen=True)
class Variant:
    """A base model reference and the Langevin settings that override its defaults."""

    path: Path
    base: str
    langevin: dict[str, Any]

    def apply(self, defaults: LangevinConfig) -> LangevinConfig:
        off = {k: None for k in _SWITCHABLE if self.langevin.get(k) is False}
        return replace(defaults.updated(**{k: v for k, v in self.langevin.items() if k not in off}), **off)


def is_variant(reference: str | Path) -> bool:
    return Path(reference).suffix == ".toml"


def read_variant(reference: str | Path) -> Variant:
    """Read and check a variant file (unknown keys and bad values are errors)."""
    path = Path(reference)
    if not path.is_file():
        raise SettingsError(f"{path}: purification variant not found")
    try:
        values = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise SettingsError(f"{path}: not a valid TOML file ({err})") from None
    unknown = set(values) - {"model", "langevin"}
    if unknown or not isinstance(values.get("model"), str) or not isinstance(values.get("langevin", {}), dict):
        extra = f"; unknown keys {sorted(unknown)}" if unknown else ""
        raise SettingsError(f"{path}: a variant holds model = \"NAME or PATH\" and a [langevin] table{extra}")
    langevin = values.get("langevin", {})
    if bad := set(langevin) - _FIELDS:
        raise SettingsError(f"{path}: unknown [langevin] keys {sorted(bad)} (known: {', '.join(sorted(_FIELDS))})")
    if on := [k for k in _SWITCHABLE if langevin.get(k) is True]:
        raise SettingsError(f"{path}: [langevin] {on[0]} = true: give a value, or false to turn it off")
    try:
        Variant(path, "", langevin).apply(LangevinConfig())  # validates the values
    except (TypeError, ValueError, IndexError) as err:
        raise SettingsError(f"{path}: a [langevin] value has the wrong type ({err})") from None
    base = values["model"]
    local = path.parent / base
    return Variant(path, str(local) if local.exists() else base, langevin)
