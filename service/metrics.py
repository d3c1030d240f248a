"""Prometheus metrics of the service, in a registry of its own (one per app). Histogram buckets
reach 30 minutes: Langevin requests on a CPU take seconds to minutes."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800)
SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("ebm_purify_requests", "HTTP requests by endpoint and status code", ["endpoint", "status"], registry=r)
        self.received = Counter("ebm_purify_received", "purification jobs received", registry=r)
        self.outcomes = Counter("ebm_purify_outcomes", "purification jobs by outcome (ok, rejected, failed, cancelled)", ["outcome"], registry=r)
        self.images = Counter("ebm_purify_images", "images purified", ["endpoint"], registry=r)
        self.queue_images = Gauge("ebm_purify_queue_images", "images waiting in the queue", registry=r)
        self.inflight_images = Gauge("ebm_purify_inflight_images", "images in the batch being computed", registry=r)
        self.inflight_requests = Gauge("ebm_purify_inflight_requests", "requests being handled", registry=r)
        self.batch_images = Histogram("ebm_purify_batch_images", "images per compute batch", buckets=SIZES, registry=r)
        self.queue_wait = Histogram("ebm_purify_queue_wait_seconds", "time from submission to the start of compute", buckets=SECONDS, registry=r)
        self.compute = Histogram("ebm_purify_compute_seconds", "compute time per batch", buckets=SECONDS, registry=r)
        self.steps = Counter("ebm_purify_langevin_chain_steps", "Langevin steps summed over chains", registry=r)
        self.rejections = Counter("ebm_purify_rejections", "requests refused before compute", ["reason"], registry=r)
        self.cancellations = Counter("ebm_purify_cancellations", "jobs stopped early", ["reason"], registry=r)
