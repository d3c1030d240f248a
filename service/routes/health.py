"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["health"])


def is_ready(request: Request) -> bool:
    batcher = getattr(request.app.state, "batcher", None)
    return bool(request.app.state.ready) and batcher is not None and not batcher.draining


@router.get("/healthz")
@router.get("/v2/health/live")
async def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/readyz", responses={503: {"description": "loading or draining"}})
@router.get("/v2/health/ready", responses={503: {"description": "loading or draining"}})
async def ready(request: Request) -> JSONResponse:
    ok = is_ready(request)
    return JSONResponse({"ready": ok}, status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
                                                                  "description": "Prometheus text exposition format"}})
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
