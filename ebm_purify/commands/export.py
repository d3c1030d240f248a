"""``ebm-purify export-onnx``: the Langevin step (optionally K unrolled steps), the energy and the
classifier as ONNX graphs with a JSON manifest, for the onnxruntime backend."""

from __future__ import annotations

import argparse
import json

from purifier.onnx_export import export_onnx


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-onnx", help="export the Langevin step, energy and classifier to ONNX")
    p.add_argument("--model", required=True, help="EBM: shipped name, model folder or checkpoint")
    p.add_argument("--out", required=True, help="output folder (ONNX files + manifest.json)")
    p.add_argument("--unroll", type=int, default=1, help="also export K steps fused in one graph (default 1: single step only)")
    p.add_argument("--classifier", help="classifier REF[:ROLE] to export (default: the model's own, if any)")
    p.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    manifest = export_onnx(args.model, args.out, unroll=args.unroll, classifier=args.classifier)
    meta = json.loads(manifest.read_text())
    print(f"exported {', '.join(meta['files'].values())} (opset {meta['opset']}) -> {manifest}")
    return 0
