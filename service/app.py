"""Builds the FastAPI app: loads the backend and warms it up in the lifespan (readiness turns
green after), starts the compute thread, installs the error handlers and middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import torch
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi

from purifier.backends import Backend, load_backend
from service.batcher import Batcher
from service.codecs import JsonRequest
from service.errors import HANDLERS
from service.metrics import Metrics
from service.middleware import Guard, RequestMetrics
from service.routes import health, kserve, purify
from service.settings import ServiceSettings


def backend_for(settings: ServiceSettings) -> Backend:
    """The model behind the service (raises PurifierError for a bad reference, before any socket opens)."""
    if settings.threads:
        torch.set_num_threads(settings.threads)
    return load_backend(settings.model, settings.backend, settings.classifier, settings.classifier_input_range, settings.device, settings.threads)


def create_app(settings: ServiceSettings | None = None, backend: Backend | None = None) -> FastAPI:
    """The service app; ``backend`` overrides loading from ``settings`` (tests inject one)."""
    settings = settings or ServiceSettings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.backend = backend or backend_for(settings)
        if settings.warmup:
            _warm_up(app.state.backend)
        app.state.batcher = Batcher(app.state.backend, settings, metrics)
        app.state.batcher.start()
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            app.state.batcher.stop(timeout=settings.max_timeout_s)

    app = FastAPI(title="ebm-purify", version="0.1.0", lifespan=lifespan,
                  description="Adversarial purification with midrun energy-based models.")
    app.state.settings, app.state.metrics, app.state.ready = settings, metrics, False
    for exc, handler in HANDLERS.items():
        app.add_exception_handler(exc, handler)
    app.include_router(health.router)
    app.include_router(purify.router)
    app.include_router(kserve.router)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"], allow_headers=["*"])
    app.add_middleware(Guard, max_body_bytes=settings.max_body_bytes, api_key=settings.api_key)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict:
    """FastAPI's schema plus the JSON request body of /purify and /classify, which the routes
    parse themselves (they also take multipart, PNG and NPY bodies)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        body = JsonRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        schema.setdefault("components", {}).setdefault("schemas", {}).update(body.pop("$defs", {}))
        schema["components"]["schemas"]["JsonRequest"] = body
        app.openapi_schema = schema
    return app.openapi_schema


def _warm_up(backend: Backend) -> None:
    x = torch.full((1, *backend.image_shape), 0.5)
    backend.energy(x)
    backend.purify(x, backend.defaults.updated(steps=2, replicates=1), [0])
    if backend.num_classes is not None:
        backend.classify(x)
