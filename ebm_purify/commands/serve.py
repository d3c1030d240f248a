"""``ebm-purify serve``: the purification service (FastAPI + uvicorn). Every flag can also be set
as an environment variable ``EBM_PURIFY_<NAME>``; flags win."""

from __future__ import annotations

import argparse

from purifier.config import DEFAULT_MODEL
from service.settings import ServiceSettings, load_settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the purification service (POST /purify, /classify, KServe V2, /metrics)")
    p.add_argument("--model", help=f"EBM: shipped name, folder or checkpoint (default {DEFAULT_MODEL})")
    p.add_argument("--classifier", help="classifier REF[:ROLE] or 'none' (default: the model's classifier)")
    p.add_argument("--backend", choices=["torch", "onnx"])
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument("--device")
    p.add_argument("--threads", type=int)
    p.add_argument("--max-batch-size", type=int, help="images per compute batch (default 64)")
    p.add_argument("--max-queue-delay-ms", type=float, help="wait for batch-mates at most this long (default 20)")
    p.add_argument("--queue-capacity", type=int, help="queued images before 503 (default 512)")
    p.add_argument("--request-timeout-s", type=float, help="default deadline of a request (default 120)")
    p.add_argument("--max-steps", type=int, help="cap on Langevin steps per request (default 2000)")
    p.add_argument("--max-replicates", type=int, help="cap on copies per image (default 32)")
    p.add_argument("--max-images", type=int, help="cap on images per request (default 64)")
    p.add_argument("--max-body-bytes", type=int, help="cap on request body size (default 16 MiB)")
    p.add_argument("--api-key", help="require this key in X-API-Key or Authorization: Bearer")
    p.add_argument("--cors-origin", action="append", dest="cors_origins", help="allow this CORS origin (repeatable)")
    p.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from service.server import serve

    fields = set(ServiceSettings.model_fields)
    overrides = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    serve(load_settings(**overrides))
    return 0
