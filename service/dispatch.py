"""From validated images and options to a result: apply the server's caps, queue a job, wait for
it while watching for the client going away (uvicorn does not cancel handlers on disconnect)."""

from __future__ import annotations

import asyncio
import time

import torch
from fastapi import Request

from service.batcher import Job, Result
from service.codecs import Options
from service.errors import ApiError

POLL_S = 0.1


class ClientGone(Exception):
    """The client disconnected; nobody is left to answer."""


def check_ready(request: Request) -> None:
    if not request.app.state.ready:
        raise ApiError(503, "not_ready", "the model is loading", {"Retry-After": "5"})


async def run(request: Request, x: torch.Tensor, options: Options, classify: bool) -> tuple[Result, Job]:
    s = request.app.state.settings
    backend = request.app.state.backend
    if classify and backend.num_classes is None:
        raise ApiError(501, "no_classifier", "no classifier is configured on this server")
    config = backend.defaults.updated(steps=options.steps, replicates=options.replicates or 1)
    if config.steps > s.max_steps:
        raise ApiError(422, "out_of_range", f"steps must be at most {s.max_steps}")
    if config.replicates > s.max_replicates:
        raise ApiError(422, "out_of_range", f"replicates must be at most {s.max_replicates}")
    if len(x) > s.max_images:
        raise ApiError(413, "too_many_images", f"{len(x)} images; at most {s.max_images} per request")
    timeout = min(options.timeout_s or s.request_timeout_s, s.max_timeout_s)
    job = Job(x=x, config=config, seed=options.seed, deadline=time.monotonic() + timeout, classify=classify)
    batcher = request.app.state.batcher
    future = batcher.submit(job)
    while True:
        done, _ = await asyncio.wait({future}, timeout=POLL_S)
        if done:
            break
        if await request.is_disconnected():
            batcher.cancel(job, "disconnect")
            raise ClientGone
    value = future.result()
    if isinstance(value, ApiError):
        raise value
    return value, job
