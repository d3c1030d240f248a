"""``POST /purify`` and ``POST /classify``: thin handlers over the batcher."""

from __future__ import annotations

from typing import Any

import torch
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from purifier.images import encode_png
from service.batcher import Job, Result
from service.codecs import Options, npy_bytes, png_payload, read_images, tensor_payload
from service.dispatch import ClientGone, check_ready, run

router = APIRouter(tags=["purification"])

BODY_DOC = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/JsonRequest"}},
            "multipart/form-data": {"schema": {"type": "object", "properties": {"images": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "application/x-npy": {"schema": {"type": "string", "format": "binary"}},
        }
    }
}
ERRORS = {code: {"description": d} for code, d in {
    400: "malformed body (multipart or JSON syntax)", 401: "missing or wrong API key", 413: "body, image or batch too large", 415: "unsupported media type",
    422: "invalid input or settings", 503: "queue full or draining (Retry-After)", 504: "deadline passed"}.items()}


def _energy(result: Any) -> dict[str, Any]:
    return {"energy_before": tensor_payload(result.energy_before), "energy_after": tensor_payload(result.energy_after)}


async def _handle(request: Request, classify: bool) -> tuple[Result, Job, Options] | Response:
    """Read the images, queue the job, wait: the shared prologue of /purify and /classify."""
    check_ready(request)
    x, options = await read_images(request, request.app.state.backend.image_shape, request.app.state.settings)
    try:
        result, job = await run(request, x, options, classify=classify)
    except ClientGone:
        return Response(status_code=499)
    return result, job, options


@router.post("/purify", openapi_extra=BODY_DOC, responses=ERRORS)
async def purify(request: Request) -> Response:
    """Purify a batch of images; returns R purified copies per image and energies before/after."""
    handled = await _handle(request, classify=False)
    if isinstance(handled, Response):
        return handled
    result, job, options = handled
    return _purify_response(request, result, job.config.steps, job.config.replicates, options)


def _purify_response(request: Request, result: Any, steps: int, replicates: int, options: Options) -> Response:
    copies = result.copies
    if options.format == "npy":
        headers = {"x-energy-before": ",".join(f"{v:.6g}" for v in result.energy_before.tolist()),
                   "x-energy-after": ",".join(f"{v:.6g}" for v in result.energy_after.tolist())}
        return Response(npy_bytes(copies), media_type="application/x-npy", headers=headers)
    if options.format == "png" and "image/png" in request.headers.get("accept", "") and copies.shape[:2] == (1, 1):
        return Response(encode_png(copies[0, 0]), media_type="image/png")
    body: dict[str, Any] = {"model": request.app.state.settings.model_name, "steps": steps, "replicates": replicates,
                            "seed": options.seed, "shape": list(copies.shape), **_energy(result)}
    if options.format == "png":
        body["images_png"] = png_payload(copies)
    else:
        body["images"] = tensor_payload(copies)
    return JSONResponse(body)


@router.post("/classify", openapi_extra=BODY_DOC, responses={**ERRORS, 501: {"description": "no classifier configured"}})
async def classify(request: Request) -> Response:
    """Purify, then classify with the configured classifier; logits averaged over the copies."""
    handled = await _handle(request, classify=True)
    if isinstance(handled, Response):
        return handled
    result, job, options = handled
    logits = result.logits
    return JSONResponse({
        "model": request.app.state.settings.model_name, "steps": job.config.steps, "replicates": job.config.replicates, "seed": options.seed,
        "labels": logits.argmax(1).tolist(), "probabilities": tensor_payload(torch.softmax(logits, 1)), "logits": tensor_payload(logits),
        **_energy(result),
    })
