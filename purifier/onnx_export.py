"""ONNX export of the Langevin step, the energy and the classifier.

``torch.autograd.grad`` inside a module does not export directly, so the step is first traced to
an FX graph with ``make_fx`` (symbolic batch size, parameters frozen as constants); the tracer's
``convolution_backward`` (the input gradient of a convolution) is decomposed into a transposed
convolution and the activation backwards into elementwise ops, which ONNX has. The graph takes
``x`` (N, C, H, W) in the EBM's range, ``noise`` (K, N, C, H, W), the per-step coefficients
``drift`` (K,) = eps_t^2 / (2 T_t) and ``scale`` (K,) = eps_t, and the per-element bounds ``lo``,
``hi`` (N, C, H, W; -inf / inf for none), and returns x after K unrolled steps. Step size,
temperature, their schedules, the clamp and the box are therefore chosen at run time; only the
precision is baked in. The noise is an input, so the same seeds give the same results as the torch
backend. A JSON manifest records the rest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch._decomp import get_decompositions
from torch.fx.experimental.proxy_tensor import make_fx

from purifier.checkpoint import load_checkpoint, resolve
from purifier.errors import CheckpointError
from purifier.langevin import LangevinSampler, langevin_update
from purifier.purifier import Purifier

aten = torch.ops.aten
OPSET = 18
MANIFEST = "manifest.json"
FORMAT = "ebm-purify-onnx/3"  # /1 had the step size, temperature and clamp built in; /2 the clamp


def _conv_input_grad(grad_out, inp, weight, bias_sizes, stride, padding, dilation, transposed, output_padding, groups, output_mask):
    if transposed:
        raise NotImplementedError("transposed convolutions are not exported")
    k = weight.shape[2:]
    extra = [inp.shape[2 + i] - ((grad_out.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (k[i] - 1) + 1) for i in range(len(k))]
    grad_in = aten.convolution(grad_out, weight, None, stride, padding, dilation, True, extra, groups) if output_mask[0] else None
    return grad_in, None, None


def _decompositions() -> dict[Any, Any]:
    table = get_decompositions([aten.leaky_relu_backward, aten.silu_backward, aten.threshold_backward])
    table[aten.convolution_backward.default] = _conv_input_grad
    return table


def _export(fn: Any, example: tuple[torch.Tensor, ...], path: Path, inputs: list[str], outputs: list[str], batch_axes: tuple[int | None, ...]) -> None:
    """Trace ``fn`` and write it to ``path``; ``batch_axes`` gives each input's batch axis (None: no batch axis)."""
    # a traced graph holds only ops, so eval() changes nothing in it; it tells the exporter so (else it warns per graph)
    gm = make_fx(fn, decomposition_table=_decompositions(), tracing_mode="symbolic", _allow_non_fake_inputs=True)(*example).eval()
    batch = torch.export.Dim("batch", min=1, max=65536)
    dynamic = tuple({axis: batch} if axis is not None else {} for axis in batch_axes)
    torch.onnx.export(gm, example, str(path), dynamo=True, dynamic_shapes=dynamic, input_names=inputs, output_names=outputs,
                      opset_version=OPSET, verbose=False)


def export_onnx(model: str | Path, out_dir: str | Path, unroll: int = 1, classifier: str | Path | None = None) -> Path:
    """Export the EBM's Langevin step (1 step, and ``unroll`` steps when > 1), its energy and the
    classifier (``classifier`` REF[:ROLE], default the model's own, if it has one); returns the manifest path."""
    if unroll < 1:
        raise CheckpointError("--unroll must be >= 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    purifier = Purifier.load(model)
    energy = purifier.energy
    sampler = LangevinSampler(energy, purifier.defaults, micro_batch=None)
    shape = purifier.image_shape or (1, 28, 28)
    # symbolic tracing gives equal sizes one symbol: the example batch must equal no other dimension
    batch = next(b for b in (5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41) if b not in (*shape, unroll))
    x = torch.rand(batch, *shape) * 2 - 1

    def steps(x: torch.Tensor, noise: torch.Tensor, drift: torch.Tensor, scale: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        for k in range(noise.shape[0]):
            _, g = sampler.energy_and_grad(x)
            x = langevin_update(x, g, noise[k], drift[k], scale[k], lo, hi)
        return x

    files: dict[str, str] = {}
    for k in sorted({1, unroll}):
        name = f"langevin_step_{k}.onnx"
        example = (x, torch.randn(k, *x.shape), torch.rand(k), torch.rand(k), x - 1, x + 1)
        _export(steps, example, out / name, ["x", "noise", "drift", "scale", "lo", "hi"], ["x_next"], (0, 1, None, None, 0, 0))
        files[f"step_{k}"] = name
    _export(lambda x: energy(x), (x,), out / "energy.onnx", ["x"], ["energy"], (0,))
    files["energy"] = "energy.onnx"
    clf_meta = _export_classifier(model, classifier, out, shape)
    if clf_meta is not None:
        files["classifier"] = "classifier.onnx"
    manifest = {
        "format": FORMAT, "opset": OPSET, "files": files, "unroll": unroll,
        "inputs": {"x": ["batch", *shape], "noise": ["steps", "batch", *shape], "drift": ["steps"], "scale": ["steps"],
                   "lo": ["batch", *shape], "hi": ["batch", *shape]},
        "outputs": {"x_next": ["batch", *shape], "energy": ["batch"]},
        "image_shape": list(shape), "data_range": list(purifier.data_range), "langevin": purifier.defaults.to_dict(),
        "dataset": purifier.metadata.get("dataset"), "source_sha256": purifier.metadata.get("weights", {}).get("sha256"),
        "classifier": clf_meta,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return out / MANIFEST


def _export_classifier(model: str | Path, ref: str | Path | None, out: Path, shape: tuple[int, ...]) -> dict[str, Any] | None:
    if ref is not None:
        source, role = str(ref).rsplit(":", 1) if ":" in str(ref) and not Path(ref).exists() else (str(ref), "classifier")
    else:  # the model's own classifier, if it has one
        source, role = str(Path(model).parent if Path(model).suffix in (".json", ".safetensors") else model), "classifier"
    try:
        clf, meta = load_checkpoint(resolve(source, role))
    except CheckpointError:
        if ref is not None:
            raise
        return None
    export_classifier(clf, out / "classifier.onnx", shape)
    return {"file": "classifier.onnx", "num_classes": meta.get("num_classes"), "input_range": [0.0, 1.0], "source_sha256": meta["weights"]["sha256"]}


def export_classifier(model: nn.Module, path: Path, shape: tuple[int, ...]) -> None:
    """Export a classifier on [0, 1] images with a dynamic batch dimension."""
    batch = torch.export.Dim("batch", min=1, max=65536)
    torch.onnx.export(model.eval(), (torch.rand(2, *shape),), str(path), dynamo=True, dynamic_shapes=({0: batch},),
                      input_names=["images"], output_names=["logits"], opset_version=OPSET, verbose=False)
