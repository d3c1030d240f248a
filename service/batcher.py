"""Dynamic batching: a bounded queue counted in images, one compute thread that owns the model.

Jobs (one per request) wait in a FIFO. The compute thread takes the oldest job, waits up to
``max_queue_delay_ms`` for more jobs with the same key (image shape and Langevin settings), up to
``max_batch_size`` images, and purifies them as one batch. The wait counts from the job's arrival
or from the end of the previous batch, whichever is later: clients that wait for their answer
before sending again (most do) then rejoin one full batch instead of settling into two
half-size batches that alternate (measured by ``bench/service_load.py``: mean batch 4.3 of 8). Each job carries its
own seed, and the purifier's output for an image does not depend on its batch-mates, so a
response never depends on which requests shared its batch. Between Langevin steps the thread
stops the chains of jobs whose deadline passed or whose client went away. If a batch raises, each
of its jobs is retried alone, so one bad item never fails its batch-mates; the job that still fails
alone is answered 500 ``model_error`` and its traceback goes to the ``service`` log (a non-finite
output: 500 ``non_finite_output`` and a warning there); the client never sees the traceback.

Every job is resolved exactly once, as ok, rejected (queue full, draining), failed (the model
raised or produced non-finite values) or cancelled (deadline, disconnect); the metrics count
each, so received = ok + rejected + failed + cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import torch

from purifier.backends import Backend
from purifier.langevin import LangevinConfig
from service.errors import ApiError
from service.metrics import Metrics
from service.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass
class Result:
    copies: torch.Tensor                      # (n, R, C, H, W) in [0, 1]
    energy_before: torch.Tensor               # (n,)
    energy_after: torch.Tensor                # (n,), mean over copies
    logits: torch.Tensor | None = None        # (n, classes), mean over copies, when classifying


@dataclass(eq=False)
class Job:
    x: torch.Tensor
    config: LangevinConfig
    seed: int
    deadline: float
    classify: bool = False
    submitted: float = field(default_factory=time.monotonic)
    future: asyncio.Future | None = None
    loop: asyncio.AbstractEventLoop | None = None
    stop_reason: str | None = None
    resolved: bool = False

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    @property
    def key(self) -> tuple[Any, ...]:
        """Jobs batch together only with the same image shape and the same Langevin settings."""
        return (tuple(self.x.shape[1:]), self.config)


class Batcher:
    def __init__(self, backend: Backend, settings: ServiceSettings, metrics: Metrics) -> None:
        self.backend, self.settings, self.metrics = backend, settings, metrics
        self.queue: deque[Job] = deque()
        self.queued_images = 0
        self.cond = threading.Condition()
        self.draining = False
        self.stopped = False
        self.free_since = time.monotonic()  # when the compute thread last finished a batch
        self.thread = threading.Thread(target=self._loop, name="ebm-purify-compute", daemon=True)

    # ---- called from the event loop -------------------------------------------------------
    def start(self) -> None:
        self.thread.start()

    def submit(self, job: Job) -> asyncio.Future:
        """Queue a job; raises ApiError 503 when full or draining."""
        job.loop = asyncio.get_running_loop()
        job.future = job.loop.create_future()
        self.metrics.received.inc()
        with self.cond:
            if self.draining:
                self._reject(job, "draining", "the server is shutting down")
            if self.queued_images + job.n > self.settings.queue_capacity:
                self._reject(job, "queue_full", "the queue is full; retry later")
            self.queue.append(job)
            self.queued_images += job.n
            self.metrics.queue_images.set(self.queued_images)
            self.cond.notify()
        return job.future

    def cancel(self, job: Job, reason: str) -> None:
        """Stop a job (client gone): dequeue it, or stop its chains at the next step."""
        with self.cond:
            if job in self.queue:
                self.queue.remove(job)
                self.queued_images -= job.n
                self.metrics.queue_images.set(self.queued_images)
                self._finish_cancelled(job, reason)
            else:
                job.stop_reason = job.stop_reason or reason

    def drain(self) -> None:
        """Stop accepting; answer queued jobs with 503; let the running batch finish."""
        with self.cond:
            self.draining = True
            while self.queue:
                job = self.queue.popleft()
                self.queued_images -= job.n
                self.metrics.rejections.labels("draining").inc()
                self._resolve(job, ApiError(503, "draining", "the server is shutting down", {"Retry-After": str(self.settings.retry_after_s)}), "rejected")
            self.metrics.queue_images.set(0)
            self.cond.notify_all()

    def stop(self, timeout: float | None = None) -> None:
        self.drain()
        with self.cond:
            self.stopped = True
            self.cond.notify_all()
        if self.thread.is_alive():
            self.thread.join(timeout)

    # ---- compute thread -------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)
            self.free_since = time.monotonic()

    def _next_batch(self) -> list[Job] | None:
        delay = self.settings.max_queue_delay_ms / 1000.0
        limit = self.settings.max_batch_size
        with self.cond:
            while not self.queue:
                if self.stopped:
                    return None
                self.cond.wait()
            first = self.queue[0]
            while not self.stopped:
                ready = sum(j.n for j in self.queue if j.key == first.key)
                remaining = max(first.submitted, self.free_since) + delay - time.monotonic()
                if ready >= limit or remaining <= 0:
                    break
                self.cond.wait(remaining)
            batch, images = [], 0
            for job in list(self.queue):
                if job.key == first.key and (not batch or images + job.n <= limit):
                    batch.append(job)
                    images += job.n
                    self.queue.remove(job)
            self.queued_images -= images
            self.metrics.queue_images.set(self.queued_images)
        now = time.monotonic()
        live = []
        for job in batch:
            self.metrics.queue_wait.observe(now - job.submitted)
            if now > job.deadline:
                self._finish_cancelled(job, "deadline")
            else:
                live.append(job)
        return live

    def _run(self, batch: list[Job]) -> None:
        if not batch:
            return
        try:
            self._compute(batch)
        except Exception:  # isolate the failing job by retrying each alone
            if len(batch) == 1:
                log.exception("the model failed on a job of %d image(s); answered 500 model_error", batch[0].n)
                self._resolve(batch[0], ApiError(500, "model_error", "the model failed on this input"), "failed")
                return
            for job in batch:
                if not job.resolved:
                    self._run([job])

    def _compute(self, batch: list[Job]) -> None:
        cfg = batch[0].config
        r = cfg.replicates
        x = torch.cat([j.x for j in batch])
        seeds = [j.seed for j in batch for _ in range(j.n)]
        owners = torch.tensor([i for i, j in enumerate(batch) for _ in range(j.n * r)])
        self.metrics.batch_images.observe(len(x))
        self.metrics.inflight_images.set(len(x))
        t0 = time.monotonic()

        def hook(step: int, active: torch.Tensor) -> torch.Tensor:
            self.metrics.steps.inc(len(active))
            now = time.monotonic()
            for j in batch:
                if j.stop_reason is None and now > j.deadline:
                    j.stop_reason = "deadline"
            stopped = torch.tensor([batch[o].stop_reason is not None for o in owners[active].tolist()], dtype=torch.bool)
            return ~stopped

        try:
            energy_before = self.backend.energy(x)
            copies, completed = self.backend.purify(x, cfg, seeds, hook)
            finite = torch.isfinite(copies.flatten(1)).all(1)
            energy_after = torch.full((len(x),), float("nan"))
            if finite.any():
                energy_after[finite] = self.backend.energy(copies[finite].flatten(0, 1)).view(-1, r).mean(1)
        finally:
            self.metrics.inflight_images.set(0)
            self.metrics.compute.observe(time.monotonic() - t0)
        start = 0
        for job in batch:
            sl = slice(start, start + job.n)
            start += job.n
            if job.stop_reason is not None or not bool(completed[sl.start * r : sl.stop * r].all()):
                self._finish_cancelled(job, job.stop_reason or "deadline")
                continue
            if not bool(finite[sl].all()):
                log.warning("the model produced non-finite values for a job of %d image(s); answered 500 non_finite_output", job.n)
                self._resolve(job, ApiError(500, "non_finite_output", "the model produced non-finite values for this input"), "failed")
                continue
            result = Result(copies[sl], energy_before[sl], energy_after[sl])
            if job.classify:
                result.logits = self._classify(job, result.copies)
            self.metrics.images.labels("classify" if job.classify else "purify").inc(job.n)
            self._resolve(job, result, "ok")

    def _classify(self, job: Job, copies: torch.Tensor) -> torch.Tensor:
        n, r = copies.shape[:2]
        return self.backend.classify(copies.flatten(0, 1)).view(n, r, -1).mean(1)

    # ---- resolution -------------------------------------------------------------------------
    def _reject(self, job: Job, code: str, message: str) -> None:
        self.metrics.rejections.labels(code).inc()
        self.metrics.outcomes.labels("rejected").inc()
        job.resolved = True
        raise ApiError(503, code, message, {"Retry-After": str(self.settings.retry_after_s)})

    def _finish_cancelled(self, job: Job, reason: str) -> None:
        self.metrics.cancellations.labels(reason).inc()
        err = ApiError(504, "deadline_exceeded", "the request's deadline passed") if reason == "deadline" else ApiError(499, "cancelled", "cancelled")
        self._resolve(job, err, "cancelled")

    def _resolve(self, job: Job, value: Result | ApiError, outcome: str) -> None:
        if job.resolved:
            return
        job.resolved = True
        self.metrics.outcomes.labels(outcome).inc()
        if job.loop is not None and job.future is not None:
            job.loop.call_soon_threadsafe(_set_once, job.future, value)


def _set_once(future: asyncio.Future, value: Result | ApiError) -> None:
    if not future.done():
        future.set_result(value)
