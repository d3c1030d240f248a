"""Turn service settings into a backend: the EBM (torch or onnxruntime) and the classifier (a
torch checkpoint or a user's ONNX file)."""

from __future__ import annotations

from purifier.backends import Backend, TorchBackend
from purifier.checkpoint import load_checkpoint, resolve
from purifier.errors import CheckpointError
from purifier.purifier import Purifier
from service.settings import ServiceSettings


def load_backend(s: ServiceSettings) -> Backend:
    purifier = Purifier.load(s.model, device=s.device)
    classifier, num_classes = None, None
    if s.classifier != "none":
        ref, role = (s.classifier.rsplit(":", 1) if s.classifier and ":" in s.classifier else (s.classifier or s.model, "classifier"))
        try:
            classifier, meta = load_checkpoint(resolve(ref, role), device=s.device)
            num_classes = meta.get("num_classes")
        except CheckpointError:
            if s.classifier:  # asked for explicitly: that is an error; the model's default is optional
                raise
    if s.backend == "onnx":
        raise CheckpointError("the onnx backend is not available in this build yet")
    return TorchBackend(purifier, classifier, num_classes)
