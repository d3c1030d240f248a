"""Checkpoints: weights in safetensors, metadata in a JSON file beside them.

A checkpoint ``NAME`` is the pair ``NAME.safetensors`` + ``NAME.json``. The JSON records the
architecture and its arguments, the data set, the image shape, the range the model works in, the
default Langevin settings (energies), how it was trained, and the sha256 of the weights file,
which loading verifies. Loading never unpickles: safetensors holds raw tensors only, and a pickle
(``torch.save``) file is refused by its magic bytes.

A model reference is a path to either file of the pair, a folder holding ``ebm.json``, or the name
of a shipped model (``mnist``, ``fashion-mnist``, ``mnist-noised``, ``fashion-mnist-noised``; see ``purifier/weights/``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from purifier.config import WEIGHTS_DIR
from purifier.errors import CheckpointError
from purifier.models import build
from purifier.variants import is_variant, read_variant

FORMAT = "ebm-purify-checkpoint/1"
_PICKLE_MAGIC = (b"PK\x03\x04", b"\x80")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(model: nn.Module, path: str | Path, metadata: dict[str, Any]) -> Path:
    """Write ``model``'s tensors and ``metadata`` (which must hold ``architecture``).

    Returns the JSON path. The sha256 of the weights is added to the metadata.
    """
    stem = checkpoint_stem(Path(path))
    stem.parent.mkdir(parents=True, exist_ok=True)
    weights = stem.with_suffix(".safetensors")
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(weights), metadata={"format": FORMAT})
    meta = {"format": FORMAT, **metadata, "weights": {"file": weights.name, "sha256": sha256_of(weights)}}
    meta_path = stem.with_suffix(".json")
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n")
    return meta_path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of the checkpoint at ``path`` (either file of the pair)."""
    meta_path = checkpoint_stem(Path(path)).with_suffix(".json")
    if not meta_path.is_file():
        raise CheckpointError(f"{meta_path}: metadata file not found")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{meta_path}: not valid JSON ({err.msg if hasattr(err, 'msg') else err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path}: not an ebm-purify checkpoint (format must be {FORMAT!r})")
    for key in ("kind", "architecture", "weights"):
        if key not in meta:
            raise CheckpointError(f"{meta_path}: metadata lacks {key!r}")
    return meta


def load_checkpoint(
    path: str | Path, expected_sha256: str | None = None, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model of a checkpoint, verify its weights, and return (model in eval mode, metadata).

    ``expected_sha256``, when given, must equal the weights file's sha256 too.
    """
    meta = read_metadata(path)
    stem = checkpoint_stem(Path(path))
    weights = stem.parent / meta["weights"]["file"]
    if not weights.is_file():
        raise CheckpointError(f"{weights}: weights file not found")
    with open(weights, "rb") as f:
        head = f.read(4)
    if head.startswith(_PICKLE_MAGIC):
        raise CheckpointError(f"{weights}: looks like a pickle/torch.save file; refusing to unpickle (use safetensors)")
    digest = sha256_of(weights)
    for want, source in ((meta["weights"].get("sha256"), "its metadata"), (expected_sha256, "the expected value")):
        if want is not None and want != digest:
            raise CheckpointError(f"{weights}: sha256 {digest[:12]}... does not match {source} ({str(want)[:12]}...)")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{weights}: cannot read safetensors ({str(err).splitlines()[0]})") from None
    arch = meta["architecture"]
    model = build(arch["name"], **arch.get("args", {}))
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else str(err)
        raise CheckpointError(f"{weights}: weights do not fit architecture {arch['name']!r} ({first})") from None
    return model.to(device).eval(), meta


def resolve(reference: str | Path, role: str = "ebm") -> Path:
    """Turn a model reference into the JSON path of the checkpoint playing ``role``.

    ``role`` is the file stem inside a model folder: ``ebm``, ``classifier`` or ``classifier-pgd``.
    A classifier role a model folder does not hold, where its EBM metadata says ``classifiers_from:
    NAME``, is taken from that model (one level, no chains).
    """
    ref = Path(reference)
    if is_variant(ref):
        return resolve(read_variant(ref).base, role)
    path = _model_file(ref, role)
    if path.is_file():
        return path
    ebm = _model_file(ref, "ebm")
    companion = json.loads(ebm.read_text()).get("classifiers_from") if role != "ebm" and ref.suffix not in (".json", ".safetensors") and ebm.is_file() else None
    if companion and _model_file(Path(companion), role).is_file():
        return _model_file(Path(companion), role)
    shipped = ", ".join(shipped_models()) or "none"
    raise CheckpointError(f"{reference}: no {role} checkpoint found (a checkpoint path, a model folder, or a shipped model: {shipped})")


def recorded_path(path: Path) -> str:
    """A checkpoint path as reports record it: shipped weights relative to the repository
    (``purifier/weights/NAME/ebm.json``, the same from any clone), any other path absolute."""
    path = Path(path).resolve()
    return str(path.relative_to(WEIGHTS_DIR.parent.parent)) if path.is_relative_to(WEIGHTS_DIR) else str(path)


def _model_file(ref: Path, role: str) -> Path:
    if ref.suffix in (".json", ".safetensors"):
        return ref.with_suffix(".json")
    return ref / f"{role}.json" if ref.is_dir() else WEIGHTS_DIR / str(ref) / f"{role}.json"


def shipped_models() -> list[str]:
    """Names of the models shipped in ``purifier/weights``."""
    if not WEIGHTS_DIR.is_dir():
        return []
    return sorted(p.name for p in WEIGHTS_DIR.iterdir() if (p / "ebm.json").is_file())


def checkpoint_stem(path: Path) -> Path:
    """The stem a checkpoint path names: ``STEM``, ``STEM.json`` and ``STEM.safetensors`` all give ``STEM``."""
    return path.with_suffix("") if path.suffix in (".json", ".safetensors") else path


def load_classifier(reference: str | Path, role: str = "classifier", device: str | torch.device = "cpu") -> nn.Module:
    """A classifier (eval mode) from a checkpoint path, a model folder or a shipped model name;
    ``role`` picks ``classifier`` (natural) or ``classifier-pgd`` (adversarially trained)."""
    meta_path = resolve(reference, role)
    model, meta = load_checkpoint(meta_path, device=device)
    if meta.get("kind") != "classifier":
        raise CheckpointError(f"{meta_path}: is a {meta.get('kind')!r} checkpoint, not a classifier")
    return model
