"""Reliability: faults inside a batch stay with their request, deadlines, disconnects cancel
compute, and a bounded load run reconciles every counter (received = ok + rejected + failed +
cancelled) with every request answered exactly once. Reduced sizes here; the full run is
``python -m bench.service_load`` plus ``EBM_PURIFY_LOAD_REQUESTS=2000 pytest tests/service/test_reliability.py``."""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from purifier.backends import TorchBackend
from purifier.langevin import LangevinConfig, StepHook
from purifier.purifier import Purifier
from service.app import create_app
from service.child import running_server
from service.settings import ServiceSettings
from tests.conftest import make_model_folder

POISON_RAISE, POISON_NAN = 0.123, 0.321  # first pixel values that make the faulty backend misbehave


class FaultyBackend(TorchBackend):
    """Raises for any batch holding a POISON_RAISE image, returns NaN for POISON_NAN images, and
    sleeps ``delay`` seconds per step when asked (a slow model)."""

    delay = 0.0

    def purify(self, x: torch.Tensor, config: LangevinConfig, seeds: Sequence[int], hook: StepHook | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        first = x[:, 0, 0, 0]
        if torch.isclose(first, torch.tensor(POISON_RAISE), atol=1e-4).any():
            raise RuntimeError("injected fault")

        def slow_hook(step: int, active: torch.Tensor) -> torch.Tensor | None:
            time.sleep(self.delay)
            return hook(step, active) if hook else None

        copies, done = super().purify(x, config, seeds, slow_hook if self.delay else hook)
        copies[torch.isclose(first, torch.tensor(POISON_NAN), atol=1e-4)] = float("nan")
        return copies, done


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model_folder(tmp_path_factory.mktemp("rel") / "model")


def _image(first: float | None = None, seed: int = 0) -> list:
    x = np.random.default_rng(seed).random((28, 28)).astype(np.float32)
    if first is not None:
        x[0, 0] = first
    return x.tolist()


async def _gather_in_app(app, bodies: list[dict]) -> list[httpx.Response]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app", timeout=60) as client:
            return await asyncio.gather(*[client.post("/purify", json=b) for b in bodies])


def test_a_failing_item_never_fails_its_batch_mates(model: Path, caplog: pytest.LogCaptureFixture) -> None:
    backend = FaultyBackend(Purifier.load(model))
    app = create_app(ServiceSettings(model=str(model), max_queue_delay_ms=300, max_batch_size=16, warmup=False), backend=backend)
    bodies = [{"images": [_image(seed=i)], "steps": 2, "seed": i} for i in range(6)]
    bodies[2]["images"] = [_image(POISON_RAISE)]
    bodies[4]["images"] = [_image(POISON_NAN)]
    responses = asyncio.run(_gather_in_app(app, bodies))
    codes = [r.status_code for r in responses]
    assert codes == [200, 200, 500, 200, 500, 200], [r.text[:100] for r in responses]
    assert responses[2].json()["error"]["code"] == "model_error" and responses[4].json()["error"]["code"] == "non_finite_output"
    metrics = app.state.metrics
    assert metrics.outcomes.labels("failed")._value.get() == 2 and metrics.outcomes.labels("ok")._value.get() == 4
    # the operator gets what the client does not: the failure's traceback and the non-finite warning, once each
    failures = [r for r in caplog.records if r.name == "service.batcher"]
    assert [(r.levelname, r.exc_info is not None) for r in failures] == [("ERROR", True), ("WARNING", False)]
    assert "injected fault" in caplog.text and "injected fault" not in responses[2].text


def test_the_server_log_config_routes_service_loggers_to_stderr() -> None:
    code = ("import logging, logging.config; from service.server import log_config; logging.config.dictConfig(log_config()); "
            "logging.getLogger('service.batcher').info('batcher says hello')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert "INFO:" in done.stderr and "batcher says hello" in done.stderr  # uvicorn's format; INFO never reaches the last-resort handler


def test_a_slow_model_answers_504_past_the_deadline(model: Path) -> None:
    backend = FaultyBackend(Purifier.load(model))
    backend.delay = 0.05
    app = create_app(ServiceSettings(model=str(model), warmup=False), backend=backend)
    responses = asyncio.run(_gather_in_app(app, [{"images": [_image()], "steps": 200, "timeout_s": 0.3}, {"images": [_image()], "steps": 2}]))
    assert [r.status_code for r in responses] == [504, 200]
    assert responses[0].json()["error"]["code"] == "deadline_exceeded"
    assert app.state.metrics.cancellations.labels("deadline")._value.get() == 1


def test_jobs_that_waited_through_a_batch_still_get_the_delay_for_batch_mates(model: Path) -> None:
    """Closed-loop clients: when the compute thread frees up, the jobs that queued during the last batch
    wait for the rest (which are about to resubmit) instead of leaving as a half-size batch."""
    from service.batcher import Batcher, Job
    from service.metrics import Metrics

    batcher = Batcher(None, ServiceSettings(model=str(model), max_queue_delay_ms=100, max_batch_size=8, warmup=False), Metrics())  # type: ignore[arg-type]
    now = time.monotonic()
    cfg = LangevinConfig(steps=2)
    for i in range(4):  # queued a second ago, while the previous batch computed
        batcher.queue.append(Job(torch.rand(1, 1, 28, 28), cfg, seed=i, deadline=now + 60, submitted=now - 1.0))
    batcher.queued_images = 4
    batcher.free_since = time.monotonic()  # the compute thread just finished
    t0 = time.monotonic()
    batch = batcher._next_batch()
    assert batch is not None and len(batch) == 4
    assert time.monotonic() - t0 >= 0.09  # waited for batch-mates (nobody came), not dispatched at once
    batcher.queue.append(Job(torch.rand(1, 1, 28, 28), cfg.updated(init_noise=0.1), seed=9, deadline=now + 60))
    batcher.queue.append(Job(torch.rand(1, 1, 28, 28), cfg, seed=8, deadline=now + 60))
    batcher.queued_images = 2
    batcher.free_since = 0.0
    assert [j.seed for j in batcher._next_batch()] == [9]  # other Langevin settings never share a batch


def _metric(text: str, name: str, labels: str = "") -> float:
    m = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_client_disconnect_cancels_its_compute(model: Path) -> None:
    with running_server(model, "--max-steps", "100000") as (url, _):
        buf = io.BytesIO()
        np.save(buf, np.random.default_rng(0).random((28, 28), dtype=np.float32))
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url + "/purify", content=buf.getvalue(), headers={"content-type": "application/x-npy"}, params={"steps": 100000}, timeout=1.0)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # bounded poll of the server's own counter
            text = httpx.get(url + "/metrics").text
            if _metric(text, "ebm_purify_cancellations_total", '{reason="disconnect"}') >= 1:
                break
            time.sleep(0.1)
        assert _metric(text, "ebm_purify_cancellations_total", '{reason="disconnect"}') == 1
        assert _metric(text, "ebm_purify_inflight_images") == 0
        assert httpx.get(url + "/v2/health/ready").status_code == 200


def test_load_with_accounting(model: Path) -> None:
    total = int(os.environ.get("EBM_PURIFY_LOAD_REQUESTS", "200"))
    flags = ("--max-batch-size", "16", "--queue-capacity", "48", "--max-images", "4", "--max-steps", "20")
    with running_server(model, *flags) as (url, _):
        rng = np.random.default_rng(0)

        def request(i: int) -> dict:
            kind = i % 10
            n = 1 + i % 3
            images = rng.random((n, 28, 28)).tolist()
            if kind == 7:
                return {"json": {"images": images, "steps": 999}}  # over the cap: 422
            if kind == 8:
                return {"content": b"not an image", "headers": {"content-type": "image/png"}}  # 422
            if kind == 9:
                return {"json": {"images": images, "steps": 20, "timeout_s": 0.001}}  # likely 504
            return {"json": {"images": images, "steps": 1 + i % 5, "replicates": 1 + i % 2, "seed": i}}

        async def main() -> list[httpx.Response | BaseException]:
            sem = asyncio.Semaphore(32)
            async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=32)) as client:
                async def one(i: int) -> httpx.Response:
                    async with sem:
                        return await client.post(url + "/purify", **request(i))
                return await asyncio.gather(*[one(i) for i in range(total)], return_exceptions=True)

        results = asyncio.run(main())
        assert all(isinstance(r, httpx.Response) for r in results), [r for r in results if not isinstance(r, httpx.Response)][:3]
        codes = [r.status_code for r in results]  # type: ignore[union-attr]
        assert set(codes) <= {200, 422, 503, 504} and len(codes) == total
        text = httpx.get(url + "/metrics").text
        received = _metric(text, "ebm_purify_received_total")
        outcomes = {o: _metric(text, "ebm_purify_outcomes_total", f'{{outcome="{o}"}}') for o in ("ok", "rejected", "failed", "cancelled")}
        assert received == sum(outcomes.values())
        assert outcomes["ok"] == codes.count(200) and outcomes["failed"] == 0
        assert outcomes["rejected"] == codes.count(503) and outcomes["cancelled"] == codes.count(504)
        assert _metric(text, "ebm_purify_inflight_images") == 0 and _metric(text, "ebm_purify_queue_images") == 0
        assert _metric(text, "ebm_purify_inflight_requests") == 1  # the /metrics request itself
        print(f"load: {total} requests, responses by status {dict(sorted((c, codes.count(c)) for c in set(codes)))}, lost 0")
