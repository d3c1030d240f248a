"""Execution backends: one interface over which the CLI and the service run purification and
classification, so the torch and onnxruntime implementations are interchangeable.

A backend holds an EBM (and optionally a classifier) and offers:
- ``purify(x, config, seeds, hook)`` -> (copies (N, R, C, H, W) in [0, 1], completed (N * R,))
- ``energy(x)`` -> (N,) energies of [0, 1] images
- ``classify(x)`` -> (N, classes) logits of [0, 1] images
Same seeds give the same chain noise in every backend (noise is drawn by :mod:`purifier.langevin`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from purifier.checkpoint import load_checkpoint, read_metadata, resolve
from purifier.errors import CheckpointError, SettingsError
from purifier.langevin import LangevinConfig, StepHook
from purifier.purifier import Purifier
from purifier.variants import is_variant, read_variant


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


def load_classifier_ref(reference: str | Path, image_shape: tuple[int, ...], input_range: tuple[float, float] = (0.0, 1.0),
                        device: str = "cpu", threads: int | None = None) -> tuple[nn.Module, int, str]:
    """A classifier from ``REF[:ROLE]`` (a torch checkpoint, model folder or shipped name) or a
    user's ``.onnx`` file (NCHW input in ``input_range``); returns (model, classes, sha256)."""
    ref = str(reference)
    if ref.endswith(".onnx"):
        from purifier.onnx_backend import OnnxClassifier, num_classes_of

        clf = OnnxClassifier(ref, input_range, threads=threads)
        return clf, num_classes_of(clf, image_shape), clf.sha256
    source, role = ref.rsplit(":", 1) if ":" in ref and not Path(ref).exists() else (ref, "classifier")
    model, meta = load_checkpoint(resolve(source, role), device=device)
    return model, int(meta.get("num_classes") or 0) or None, meta["weights"]["sha256"]  # type: ignore[return-value]


def load_backend(model: str | Path, backend: str = "torch", classifier: str | None = None, classifier_input_range: tuple[float, float] = (0.0, 1.0),
                 device: str = "cpu", threads: int | None = None) -> Backend:
    """The backend for ``model``. ``classifier``: REF[:ROLE] or ``.onnx`` file, ``"none"`` for
    none, default the model's own classifier when it has one. ``backend="onnx"`` accepts an export
    folder or a checkpoint (exported once into the cache)."""
    clf, classes = None, None
    if classifier != "none":
        default = str(Path(model).parent) if Path(model).suffix in (".json", ".safetensors") else str(model)
        try:
            shape = _image_shape(model)
            clf, classes, _ = load_classifier_ref(classifier or default, shape, classifier_input_range, device, threads)
        except CheckpointError:
            if classifier:  # asked for explicitly: an error; the model's own classifier is optional
                raise
    if backend == "onnx":  # imported here: the exporter pulls in onnxscript, which the torch path never needs
        from purifier.onnx_backend import OnnxBackend, load_onnx_export

        variant = read_variant(model) if is_variant(model) else None
        return OnnxBackend(load_onnx_export(model), threads=threads, classifier=clf, variant=variant)
    if backend != "torch":
        raise SettingsError(f"backend must be torch or onnx, got {backend!r}")
    return TorchBackend(Purifier.load(model, device=device), clf, classes)


def _image_shape(model: str | Path) -> tuple[int, ...]:
    manifest = Path(model) / "manifest.json"  # an ONNX export folder
    if manifest.is_file():
        return tuple(json.loads(manifest.read_text())["image_shape"])
    return tuple(read_metadata(resolve(model, "ebm")).get("image_shape", (1, 28, 28)))
