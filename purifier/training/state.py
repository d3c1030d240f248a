"""Resumable training state in safetensors + JSON (never pickle): model, EMA, Adam moments,
persistent bank, RNG state and the iteration, so ``--resume`` continues a run bit for bit; and the
weights a fine-tune starts from (``init_from``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from purifier.checkpoint import load_checkpoint, resolve
from purifier.errors import CheckpointError, SettingsError


def save_state(path: Path, tensors: dict[str, torch.Tensor], modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer, info: dict[str, Any]) -> None:
    """Write the state atomically (temporary files renamed into place)."""
    flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    for prefix, module in modules.items():
        flat.update({f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()})
    opt = optimizer.state_dict()
    for i, st in opt["state"].items():
        for k, v in st.items():
            flat[f"optim.{i}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
    groups = [{k: v for k, v in g.items() if k != "params"} for g in opt["param_groups"]]
    tmp = path.with_suffix(".tmp")
    save_file(flat, str(tmp))
    tmp.replace(path.with_suffix(".safetensors"))
    meta = path.with_suffix(".json.tmp")
    meta.write_text(json.dumps({**info, "param_groups": groups}, indent=1))
    meta.replace(path.with_suffix(".json"))


def load_state(path: Path, modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Restore modules and optimizer in place; return the remaining tensors and the info."""
    if not path.with_suffix(".safetensors").is_file() or not path.with_suffix(".json").is_file():
        raise CheckpointError(f"{path}: no training state to resume from")
    flat = load_file(str(path.with_suffix(".safetensors")))
    info = json.loads(path.with_suffix(".json").read_text())
    for prefix, module in modules.items():
        module.load_state_dict({k[len(prefix) + 1 :]: v for k, v in flat.items() if k.startswith(prefix + ".")})
    opt = optimizer.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in flat.items():
        if k.startswith("optim."):
            _, i, name = k.split(".", 2)
            state.setdefault(int(i), {})[name] = v
    groups = [{**g, **saved} for g, saved in zip(opt["param_groups"], info.pop("param_groups"), strict=True)]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    rest = {k: v for k, v in flat.items() if not k.startswith("optim.") and not any(k.startswith(p + ".") for p in modules)}
    return rest, info


def load_initial_weights(model: nn.Module, reference: str, role: str, architecture: dict[str, Any]) -> None:
    """Fine-tuning: ``model`` takes the weights of the checkpoint ``reference`` (``role`` ebm or
    classifier), which must have the config's architecture."""
    start, meta = load_checkpoint(resolve(reference, role))
    if meta.get("architecture") != architecture:
        raise SettingsError(f"init_from {reference}: architecture {meta.get('architecture')} differs from the config's {architecture}")
    model.load_state_dict(start.state_dict())
