"""KServe / Triton V2 inference protocol (HTTP/JSON), so existing V2 clients work unchanged.

Two models: ``<model_name>`` (input ``images`` FP32 [N, C, H, W] in [0, 1]; outputs
``purified`` [N, R, C, H, W], ``energy_before``, ``energy_after``) and
``<model_name>-classifier`` (outputs ``logits`` and ``probabilities`` [N, classes]).
Langevin settings go in the request's ``parameters`` (``steps``, ``replicates``, ``seed``).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from purifier.errors import InputError
from purifier.images import array_to_batch
from service.codecs import Options
from service.dispatch import ClientGone, check_ready, run
from service.errors import ApiError
from service.routes.health import is_ready

router = APIRouter(prefix="/v2/models", tags=["kserve-v2"],
                   responses={400: {"description": "malformed JSON"}, 404: {"description": "no such model"}, 503: {"description": "not ready"}})
DTYPES = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16, "UINT8": np.uint8}


class InferInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    shape: list[int] = Field(..., min_length=1, max_length=5)
    datatype: Literal["FP32", "FP64", "FP16", "UINT8"]
    data: list[Any]
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = None
    inputs: list[InferInput] = Field(..., min_length=1, max_length=1)
    outputs: list[dict[str, Any]] | None = None
    parameters: dict[str, int | float | str | bool] | None = None


def _models(request: Request) -> dict[str, bool]:
    name = request.app.state.settings.model_name
    backend = getattr(request.app.state, "backend", None)
    return {name: False, f"{name}-classifier": True} if backend is None or backend.num_classes else {name: False}


def _classify_or_404(request: Request, model: str) -> bool:
    models = _models(request)
    if model not in models:
        raise ApiError(404, "model_not_found", f"no model {model!r} (served: {', '.join(models)})")
    return models[model]


@router.get("/{model}")
async def metadata(request: Request, model: str) -> dict[str, Any]:
    classify = _classify_or_404(request, model)
    backend = request.app.state.backend
    c, h, w = backend.image_shape
    outputs = ([{"name": "logits", "datatype": "FP32", "shape": [-1, backend.num_classes]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, backend.num_classes]}] if classify
               else [{"name": "purified", "datatype": "FP32", "shape": [-1, -1, c, h, w]}])
    outputs += [{"name": "energy_before", "datatype": "FP32", "shape": [-1]}, {"name": "energy_after", "datatype": "FP32", "shape": [-1]}]
    return {"name": model, "versions": ["1"], "platform": f"ebm-purify-{backend.name}",
            "inputs": [{"name": "images", "datatype": "FP32", "shape": [-1, c, h, w]}], "outputs": outputs,
            "parameters": {"dataset": backend.metadata.get("dataset"), "default_steps": backend.defaults.steps}}


@router.get("/{model}/ready")
async def model_ready(request: Request, model: str) -> JSONResponse:
    _classify_or_404(request, model)
    ok = is_ready(request)
    return JSONResponse({"name": model, "ready": ok}, status_code=200 if ok else 503)


@router.post("/{model}/infer", responses={413: {"description": "too many images"}, 501: {"description": "no classifier"},
                                          504: {"description": "deadline passed"}})
async def infer(request: Request, model: str, body: InferRequest) -> JSONResponse:
    classify = _classify_or_404(request, model)
    check_ready(request)
    inp = body.inputs[0]
    x = _tensor(inp, request.app.state.backend.image_shape, request.app.state.settings.max_images)
    params = {k: v for k, v in (body.parameters or {}).items() if k in ("steps", "replicates", "seed", "timeout_s")}
    options = Options.model_validate(params)
    try:
        result, _ = await run(request, x, options, classify)
    except ClientGone:
        return JSONResponse({}, status_code=499)
    outputs = [_out("energy_before", result.energy_before), _out("energy_after", result.energy_after)]
    if classify:
        outputs = [_out("logits", result.logits), _out("probabilities", torch.softmax(result.logits, 1)), *outputs]
    else:
        outputs = [_out("purified", result.copies), *outputs]
    wanted = {o.get("name") for o in body.outputs or []}
    if wanted:
        outputs = [o for o in outputs if o["name"] in wanted]
    return JSONResponse({"model_name": model, "model_version": "1", "id": body.id, "outputs": outputs})


def _tensor(inp: InferInput, shape: tuple[int, int, int], max_images: int) -> torch.Tensor:
    count = int(np.prod(inp.shape)) if all(d >= 0 for d in inp.shape) else -1
    if count < 0:
        raise InputError("bad_shape", "input shape must be non-negative")
    if count > max_images * int(np.prod(shape)):
        raise InputError("too_many_images", f"at most {max_images} images per request")
    try:
        arr = np.asarray(inp.data, dtype=np.float64).reshape(inp.shape)
    except (ValueError, TypeError):
        raise InputError("bad_shape", f"data does not fill shape {inp.shape}") from None
    arr = arr.astype(np.float32) if inp.datatype != "UINT8" else _uint8(arr)
    return array_to_batch(arr, shape)


def _uint8(arr: np.ndarray) -> np.ndarray:
    if not np.isfinite(arr).all() or arr.min(initial=0) < 0 or arr.max(initial=0) > 255 or (arr != np.round(arr)).any():
        raise InputError("out_of_range", "UINT8 data must be integers in 0..255")
    return arr.astype(np.uint8)


def _out(name: str, t: torch.Tensor) -> dict[str, Any]:
    return {"name": name, "datatype": "FP32", "shape": list(t.shape), "data": t.detach().float().flatten().tolist()}
