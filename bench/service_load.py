"""Service load: C concurrent clients (1, 8, 32) send a bounded number of one-image /purify
requests to the service on 127.0.0.1; throughput and latency percentiles against the in-process
purifier at the same batch size, measured in the same run, and an account that every request got
exactly one response. From the server's own /metrics it also reports the mean batch size and the
fraction of the wall time its compute thread was busy, which tell batching gaps (idle compute)
from slower compute (busy but behind in-process).

    python -m bench.service_load --model mnist --out bench/results/service_load.json
"""

from __future__ import annotations

import argparse
import asyncio
import io
import time
from typing import Any

import httpx
import numpy as np
import torch
from prometheus_client.parser import text_string_to_metric_families

from bench.common import best_of, write
from purifier.backends import TorchBackend
from purifier.purifier import Purifier
from service.child import running_server


async def _drive(url: str, clients: int, requests: int, steps: int, image: bytes) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0
    counter = iter(range(requests))

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors
        for i in counter:
            t0 = time.perf_counter()
            try:
                r = await http.post(url + "/purify", content=image, headers={"content-type": "application/x-npy"},
                                    params={"steps": steps, "seed": i, "format": "npy"})
                statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=clients)) as http:
        await asyncio.gather(*[client(http) for _ in range(clients)])
    wall = time.perf_counter() - t0
    lat = np.array(latencies)
    return {"clients": clients, "requests": requests, "responses_by_status": statuses, "transport_errors": errors,
            "every_request_answered_once": sum(statuses.values()) == requests and errors == 0,
            "images_per_s": round(statuses.get("200", 0) / wall, 2), "wall_s": round(wall, 2),
            "latency_s": {p: round(float(np.percentile(lat, q)), 4) for p, q in (("p50", 50), ("p90", 90), ("p99", 99))}}


def run(model: str, clients_list: list[int], requests: int, steps: int, threads: int, delay_ms: float) -> dict[str, Any]:
    torch.set_num_threads(threads)
    backend = TorchBackend(Purifier.load(model))
    shape = backend.image_shape
    buf = io.BytesIO()
    np.save(buf, np.random.default_rng(0).random(shape, dtype=np.float32))
    rows = []
    for c in clients_list:
        x = torch.rand(c, *shape)
        cfg = backend.defaults.updated(steps=steps, replicates=1)
        in_process = c / best_of(lambda x=x, cfg=cfg: backend.purify(x, cfg, [0] * len(x)), 2)
        flags = ("--max-batch-size", str(c), "--max-queue-delay-ms", str(delay_ms), "--queue-capacity", str(max(64, 2 * c)), "--max-steps", str(steps))
        with running_server(model, *flags, threads=threads) as (url, _):
            row = asyncio.run(_drive(url, c, requests, steps, buf.getvalue()))
            row.update(_server_view(httpx.get(url + "/metrics").text, row["wall_s"]))
        row["in_process_images_per_s"] = round(in_process, 2)
        row["service_vs_in_process"] = round(row["images_per_s"] / in_process, 3)
        rows.append(row)
        print(f"C={c:>3}: service {row['images_per_s']:8.1f} img/s vs in-process {in_process:8.1f} img/s (x{row['service_vs_in_process']}), "
              f"p50 {row['latency_s']['p50']}s p99 {row['latency_s']['p99']}s, mean batch {row['mean_batch_images']}, "
              f"compute busy {row['compute_busy_fraction']:.0%}, answered once: {row['every_request_answered_once']}")
    return {"benchmark": "service_load", "model": model, "steps": steps, "requests_per_level": requests, "max_queue_delay_ms": delay_ms, "rows": rows}


def _server_view(metrics_text: str, wall_s: float) -> dict[str, float]:
    samples = {s.name: s.value for family in text_string_to_metric_families(metrics_text) for s in family.samples if not s.labels}
    batches = samples.get("ebm_purify_batch_images_count", 0.0)
    return {"mean_batch_images": round(samples.get("ebm_purify_batch_images_sum", 0.0) / batches, 2) if batches else 0.0,
            "compute_busy_fraction": round(samples.get("ebm_purify_compute_seconds_sum", 0.0) / wall_s, 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mnist")
    p.add_argument("--clients", default="1,8,32")
    p.add_argument("--requests", type=int, default=256)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--delay-ms", type=float, default=20.0, help="the server's --max-queue-delay-ms (default: the service default, 20)")
    p.add_argument("--out", default="bench/results/service_load.json")
    args = p.parse_args()
    result = run(args.model, [int(c) for c in args.clients.split(",")], args.requests, args.steps, args.threads, args.delay_ms)
    print(f"written {write(result, args.out)}")


if __name__ == "__main__":
    main()
