"""API errors: JSON bodies ``{"error": {"code", "message"}}`` with a stable ``code``; input is
never echoed back."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from purifier.errors import InputError, SettingsError

STATUS_FOR_INPUT = {"image_too_large": 413, "too_many_images": 413}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def from_input_error(err: InputError) -> ApiError:
    return ApiError(STATUS_FOR_INPUT.get(err.code, 422), err.code, str(err))


async def api_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def input_error_handler(_: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, InputError):
        e = from_input_error(exc)
        return error_response(e.status, e.code, e.message)
    return error_response(422, "invalid_settings", str(exc))


async def validation_handler(_: Request, exc: Exception) -> JSONResponse:
    """422 listing where the request is wrong and why, never the submitted values."""
    assert isinstance(exc, RequestValidationError | ValidationError)
    problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()[:10]]
    return error_response(422, "invalid_request", "; ".join(problems) or "invalid request")


async def http_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type", 400: "bad_request"}
    return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail), getattr(exc, "headers", None))


async def unexpected_handler(_: Request, exc: Exception) -> JSONResponse:
    return error_response(500, "internal_error", "internal error")


HANDLERS = {
    ApiError: api_error_handler, InputError: input_error_handler, SettingsError: input_error_handler,
    RequestValidationError: validation_handler, ValidationError: validation_handler, StarletteHTTPException: http_handler, Exception: unexpected_handler,
}
