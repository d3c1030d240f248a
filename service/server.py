"""Runs the app under uvicorn. On SIGTERM/SIGINT the batcher starts draining at once (queued jobs
are answered 503, new ones refused, readiness turns red) while uvicorn stops accepting connections
and lets in-flight requests finish; then the lifespan stops the compute thread."""

from __future__ import annotations

import copy
from types import FrameType

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from service.app import backend_for, create_app
from service.settings import ServiceSettings


class DrainingServer(uvicorn.Server):
    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        batcher = getattr(self.config.app.state, "batcher", None)  # type: ignore[union-attr]
        if batcher is not None:
            batcher.drain()
        super().handle_exit(sig, frame)


def log_config() -> dict:
    """uvicorn's logging setup, with the ``service`` loggers (the batcher's model failures) on its stderr handler."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["service"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def serve(settings: ServiceSettings) -> None:
    """Load the model, then serve it; a bad model reference fails here with a one-line error, not inside uvicorn's startup."""
    app = create_app(settings, backend=backend_for(settings))
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="info", log_config=log_config(),
                            timeout_graceful_shutdown=int(settings.max_timeout_s), access_log=False)
    DrainingServer(config).run()
