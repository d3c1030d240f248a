"""Request bodies to image batches, and results to response bodies.

Accepted: multipart files (PNG/JPEG/... or NPY), a raw ``image/*`` or ``application/x-npy``
body, or JSON (``images``: base64-encoded PNGs or nested lists in [0, 1]). Everything is decoded
by :mod:`purifier.images`, which checks sizes before decoding and raises stable error codes.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any, Literal

import numpy as np
import torch
from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile

from purifier.errors import InputError
from purifier.images import ImageLimits, array_to_batch, check_shape, decode_image, decode_npy, encode_png
from service.errors import ApiError
from service.settings import ServiceSettings

NPY_TYPES = {"application/x-npy", "application/npy", "application/octet-stream"}
NPY_MAGIC = b"\x93NUMPY"


class Options(BaseModel):
    """Per-request settings (JSON fields, query parameters or multipart fields)."""

    model_config = ConfigDict(extra="forbid")
    steps: int | None = Field(None, ge=0)
    replicates: int | None = Field(None, ge=1)
    seed: int = Field(0, ge=0, lt=2**63)
    format: Literal["json", "png", "npy"] = "json"
    timeout_s: float | None = Field(None, gt=0)


class JsonRequest(Options):
    images: list[str] | list[Any] = Field(..., description="base64 PNG strings, or nested lists of floats in [0, 1]")


def _limits(s: ServiceSettings) -> ImageLimits:
    return ImageLimits(max_side=s.max_side, max_pixels=s.max_pixels)


def decode_one(data: bytes, shape: tuple[int, int, int], s: ServiceSettings, content_type: str = "") -> torch.Tensor:
    """One uploaded file (an image or an NPY, by declared type, else by its magic bytes) -> (n, C, H, W)."""
    declared = content_type.split(";")[0].strip().lower()
    if declared in NPY_TYPES - {"application/octet-stream"} or (not declared.startswith("image/") and data.startswith(NPY_MAGIC)):
        return _npy_batch(data, shape, s)
    img = decode_image(data, shape[0], _limits(s))
    check_shape(img, shape)
    return img[None]


def _npy_batch(data: bytes, shape: tuple[int, int, int], s: ServiceSettings) -> torch.Tensor:
    arr = decode_npy(data)
    if arr.size > s.max_images * int(np.prod(shape)) * 4:
        raise InputError("too_many_images", f"array holds more than {s.max_images} images")
    return array_to_batch(arr, shape)


async def read_images(request: Request, shape: tuple[int, int, int], s: ServiceSettings) -> tuple[torch.Tensor, Options]:
    """The images and options of a /purify or /classify request."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    query = {k: v for k, v in request.query_params.items()}
    if ctype == "multipart/form-data":
        form = await request.form(max_files=s.max_images, max_fields=16)
        files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        options = Options.model_validate({**query, **fields})
        if not files:
            raise ApiError(422, "no_images", "the multipart body has no files")
        parts = [decode_one(await f.read(), shape, s, f.content_type or "") for f in files]
        return _stack(parts, s), options
    body = await request.body()
    if ctype == "application/json":
        req = JsonRequest.model_validate_json(body) if body else None
        if req is None:
            raise ApiError(422, "invalid_request", "empty JSON body")
        fields = req.model_dump(exclude={"images"}, exclude_unset=True)
        return _json_images(req.images, shape, s), Options.model_validate({**query, **fields})
    options = Options.model_validate(query)
    if ctype.startswith("image/"):
        return decode_one(body, shape, s), options
    if ctype in NPY_TYPES:
        return _npy_batch(body, shape, s), options
    raise ApiError(415, "unsupported_media_type", "send multipart/form-data, image/png, application/x-npy or application/json")


def _stack(parts: list[torch.Tensor], s: ServiceSettings) -> torch.Tensor:
    x = torch.cat(parts)
    if len(x) > s.max_images:
        raise InputError("too_many_images", f"{len(x)} images; at most {s.max_images} per request")
    return x


def _json_images(images: list[Any], shape: tuple[int, int, int], s: ServiceSettings) -> torch.Tensor:
    if not images:
        raise InputError("no_images", "images is empty")
    if len(images) > s.max_images:
        raise InputError("too_many_images", f"{len(images)} images; at most {s.max_images} per request")
    if all(isinstance(i, str) for i in images):
        parts = []
        for item in images:
            try:
                data = base64.b64decode(item, validate=True)
            except (binascii.Error, ValueError):
                raise InputError("bad_base64", "an image is not valid base64") from None
            parts.append(decode_one(data, shape, s))
        return _stack(parts, s)
    try:
        arr = np.asarray(images, dtype=np.float32)
    except (ValueError, TypeError):
        raise InputError("bad_shape", "nested lists must be numbers of one rectangular shape") from None
    return _stack([array_to_batch(arr, shape)], s)


def tensor_payload(t: torch.Tensor) -> list[Any]:
    return t.detach().cpu().float().tolist()


def png_payload(copies: torch.Tensor) -> list[list[str]]:
    return [[base64.b64encode(encode_png(c)).decode() for c in img] for img in copies]


def npy_bytes(t: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    np.save(buf, t.detach().cpu().numpy().astype(np.float32), allow_pickle=False)
    return buf.getvalue()
