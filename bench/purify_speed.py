"""Purification speed: image-steps per second of (a) a plain reference loop as the papers' code
writes it, (b) the project's purifier in float32 and with bfloat16 energy gradients (its best
setting; tests/test_precision.py shows it leaves purified images and defended accuracy as they
are), (c) the onnxruntime backend, on the same model and inputs, at several batch sizes, side by
side in one run; achieved GFLOP/s (torch's FLOP counter) as a fraction of a matmul of the same
dtype measured in the same run (the roofline).

    python -m bench.purify_speed --model mnist --out bench/results/purify_speed.json
"""

from __future__ import annotations

import argparse
import tempfile
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.common import best_of, write
from purifier.backends import TorchBackend
from purifier.onnx_backend import OnnxBackend
from purifier.onnx_export import export_onnx
from purifier.purifier import Purifier


def reference_loop(energy: torch.nn.Module, x: torch.Tensor, steps: int, eps: float, temperature: float) -> torch.Tensor:
    """What the papers' code does: eager autograd of the summed energy each step, nothing else."""
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(energy(x).sum(), [x])
        x = x - eps**2 / (2 * temperature) * g + eps * torch.randn_like(x)
    return x.detach()


def matmul_gflops(size: int = 2048, repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    return 2 * size**3 / best_of(lambda: a @ b, repeats) / 1e9


def step_flops(energy: torch.nn.Module, x: torch.Tensor) -> float:
    """FLOPs of one Langevin step (forward + input gradient) for the batch ``x``."""
    with FlopCounterMode(display=False) as counter:  # parameters are frozen: backward computes the input gradient only
        xg = x.clone().requires_grad_(True)
        energy(xg).sum().backward()
    return float(counter.get_total_flops())


def run(model: str, batches: list[int], steps: int, repeats: int, unroll: int) -> dict[str, Any]:
    purifier = Purifier.load(model)
    energy = purifier.energy
    reference_energy = Purifier.load(model).energy.requires_grad_(True)  # parameters require grad, as in training code
    shape = purifier.image_shape or (1, 28, 28)
    cfg = purifier.defaults.updated(steps=steps, replicates=1)
    peaks = {"float32": matmul_gflops(), "bfloat16": matmul_gflops(dtype=torch.bfloat16)}
    backend = TorchBackend(purifier)
    bf16 = cfg.updated(precision="bfloat16")
    variants: dict[str, Any] = {
        "reference": lambda x: reference_loop(reference_energy, purifier.to_energy_range(x), steps, cfg.step_size, cfg.temperature),
        "purifier": lambda x: backend.purify(x, cfg, [0] * len(x)),
        "purifier_bf16": lambda x: backend.purify(x, bf16, [0] * len(x)),
    }
    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(model, tmp, unroll=unroll)
        onnx = OnnxBackend(tmp, threads=torch.get_num_threads())
        variants["onnxruntime"] = lambda x: onnx.purify(x, cfg, [0] * len(x))
        rows = []
        for n in batches:
            x = torch.rand(n, *shape)
            flops = step_flops(energy, purifier.to_energy_range(x)) * steps
            row: dict[str, Any] = {"batch": n, "steps": steps}
            for name, fn in variants.items():
                seconds = best_of(lambda fn=fn, x=x: fn(x), repeats)
                peak = peaks["bfloat16" if name == "purifier_bf16" else "float32"]
                row[name] = {"seconds": _sig(seconds), "image_steps_per_s": _sig(n * steps / seconds),
                             "gflops": _sig(flops / seconds / 1e9), "roofline_fraction": _sig(flops / seconds / 1e9 / peak)}
            row["speedup_purifier_vs_reference"] = round(row["reference"]["seconds"] / row["purifier"]["seconds"], 3)
            row["speedup_purifier_bf16_vs_reference"] = round(row["reference"]["seconds"] / row["purifier_bf16"]["seconds"], 3)
            row["speedup_onnx_vs_reference"] = round(row["reference"]["seconds"] / row["onnxruntime"]["seconds"], 3)
            rows.append(row)
            print(_line(row))
    return {"benchmark": "purify_speed", "model": model, "matmul_gflops": round(peaks["float32"], 1),
            "matmul_gflops_bf16": round(peaks["bfloat16"], 1), "unroll": unroll, "rows": rows,
            "model_sha256": purifier.metadata.get("weights", {}).get("sha256")}


def _sig(value: float) -> float:
    """Three significant digits (small models reach tiny fractions of the roofline)."""
    return float(f"{value:.3g}")


def _line(row: dict[str, Any]) -> str:
    cells = [f"batch {row['batch']:>4}"]
    for name in ("reference", "purifier", "purifier_bf16", "onnxruntime"):
        cells.append(f"{name} {row[name]['image_steps_per_s']:>9.0f} img-steps/s ({100 * row[name]['roofline_fraction']:.0f}% roofline)")
    return " | ".join(cells) + f" | purifier/reference x{row['speedup_purifier_vs_reference']} (bf16 x{row['speedup_purifier_bf16_vs_reference']})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mnist")
    p.add_argument("--batches", default="1,16,64,256")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--unroll", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="bench/results/purify_speed.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    result = run(args.model, [int(b) for b in args.batches.split(",")], args.steps, args.repeats, args.unroll)
    print(f"written {write(result, args.out)}")


if __name__ == "__main__":
    main()
