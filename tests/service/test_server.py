"""The real service in a subprocess, driven over HTTP: every endpoint, concurrency against the
in-process purifier, bad inputs, back-pressure, deadlines, SIGTERM, API keys."""

from __future__ import annotations

import asyncio
import base64
import io
import signal
import struct
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from purifier.purifier import Purifier
from service.child import running_server
from tests.conftest import make_model_folder


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model_folder(tmp_path_factory.mktemp("served") / "model")


@pytest.fixture(scope="module")
def server(model: Path):
    with running_server(model, "--max-images", "8", "--max-body-bytes", "300000", "--max-steps", "200", "--max-queue-delay-ms", "20") as (url, _):
        yield url


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def digits(n: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, 28, 28)) * 255).astype(np.uint8)


def huge_png_header() -> bytes:
    """A valid 1x1 PNG whose IHDR claims 10000 x 10000 pixels (100 megapixels)."""
    data = bytearray(png(np.zeros((1, 1), np.uint8)))
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr : ihdr + 8] = struct.pack(">II", 10000, 10000)
    crc = zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13])) & 0xFFFFFFFF
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


def test_health_metadata_and_metrics(server: str) -> None:
    assert httpx.get(server + "/v2/health/live").json() == {"live": True}
    assert httpx.get(server + "/v2/health/ready").json() == {"ready": True}
    meta = httpx.get(server + "/v2/models/purifier").json()
    assert meta["inputs"][0]["shape"] == [-1, 1, 28, 28] and meta["name"] == "purifier"
    assert httpx.get(server + "/v2/models/purifier-classifier/ready").json()["ready"] is True
    assert httpx.get(server + "/v2/models/nope").json()["error"]["code"] == "model_not_found"
    text = httpx.get(server + "/metrics").text
    assert "ebm_purify_queue_wait_seconds_bucket" in text and 'le="1800.0"' in text


def test_purify_in_every_input_and_output_form(server: str) -> None:
    x = digits(2)
    forms = [
        dict(files=[("images", ("a.png", png(x[0]), "image/png")), ("images", ("b.npy", npy(x[1]), "application/x-npy"))], data={"steps": "3", "seed": "5"}),
        dict(content=png(x[0]), headers={"content-type": "image/png"}, params={"steps": 3, "seed": 5}),
        dict(content=npy(x), headers={"content-type": "application/x-npy"}, params={"steps": 3, "seed": 5}),
        dict(json={"images": [base64.b64encode(png(x[0])).decode(), base64.b64encode(png(x[1])).decode()], "steps": 3, "seed": 5}),
        dict(json={"images": (x / 255.0).tolist(), "steps": 3, "seed": 5}),
    ]
    results = []
    for kwargs in forms:
        r = httpx.post(server + "/purify", timeout=60, **kwargs)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["steps"] == 3 and len(body["energy_before"]) == body["shape"][0]
        results.append(np.asarray(body["images"], np.float32))
    assert np.array_equal(results[0][0], results[1][0]) and np.array_equal(results[2], results[3])
    assert np.array_equal(results[2], results[0])
    r = httpx.post(server + "/purify", content=npy(x), headers={"content-type": "application/x-npy"}, params={"steps": 3, "format": "npy", "replicates": 2})
    arr = np.load(io.BytesIO(r.content))
    assert r.headers["content-type"] == "application/x-npy" and arr.shape == (2, 2, 1, 28, 28) and "x-energy-after" in r.headers
    r = httpx.post(server + "/purify", content=png(x[0]), headers={"content-type": "image/png", "accept": "image/png"}, params={"format": "png"})
    assert r.headers["content-type"] == "image/png" and Image.open(io.BytesIO(r.content)).size == (28, 28)
    r = httpx.post(server + "/purify", json={"images": (x / 255.0).tolist(), "format": "png", "replicates": 2})
    assert len(r.json()["images_png"]) == 2 and len(r.json()["images_png"][0]) == 2


def test_classify_and_kserve_infer(server: str) -> None:
    x = digits(3)
    r = httpx.post(server + "/classify", content=npy(x), headers={"content-type": "application/x-npy"}, params={"steps": 2, "replicates": 2})
    body = r.json()
    assert r.status_code == 200 and len(body["labels"]) == 3 and np.allclose(np.sum(body["probabilities"], 1), 1, atol=1e-5)
    req = {"id": "q1", "inputs": [{"name": "images", "shape": [3, 1, 28, 28], "datatype": "UINT8", "data": x.flatten().tolist()}],
           "parameters": {"steps": 2, "replicates": 2}}
    out = httpx.post(server + "/v2/models/purifier-classifier/infer", json=req).json()
    assert out["id"] == "q1" and [o["name"] for o in out["outputs"]] == ["logits", "probabilities", "energy_before", "energy_after"]
    assert np.allclose(np.asarray(out["outputs"][0]["data"]).reshape(3, -1), body["logits"], atol=1e-5)
    out = httpx.post(server + "/v2/models/purifier/infer", json={**req, "outputs": [{"name": "purified"}]}).json()
    assert out["outputs"][0]["shape"] == [3, 2, 1, 28, 28] and len(out["outputs"]) == 1


def test_64_concurrent_requests_each_answered_once_and_equal_to_in_process(server: str, model: Path) -> None:
    x = digits(64, seed=3)

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=64)) as client:
            return await asyncio.gather(*[
                client.post(server + "/purify", content=npy(x[i]), headers={"content-type": "application/x-npy"},
                            params={"steps": 4, "replicates": 1 + i % 2, "seed": 100 + i, "format": "npy"})
                for i in range(64)
            ])

    responses = asyncio.run(main())
    assert [r.status_code for r in responses] == [200] * 64
    purifier = Purifier.load(model)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the server runs
    try:
        for i, r in enumerate(responses):
            want = purifier.copies(torch.from_numpy(x[i : i + 1] / np.float32(255.0))[:, None], steps=4, replicates=1 + i % 2, seed=100 + i)
            assert np.array_equal(np.load(io.BytesIO(r.content)), want.numpy()), i
    finally:
        torch.set_num_threads(threads)
    text = httpx.get(server + "/metrics").text
    batches = [line for line in text.splitlines() if line.startswith("ebm_purify_batch_images_count")]
    assert float(batches[0].split()[-1]) < 64 + 20  # requests were batched together, not one by one


def _gif() -> bytes:
    frames = [Image.fromarray(np.full((28, 28), v, np.uint8)) for v in (0, 255)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


BAD = [
    ("non-image bytes", dict(content=b"hello world", headers={"content-type": "image/png"}), 422, "not_an_image"),
    ("truncated png", dict(content=png(digits(1)[0])[:60], headers={"content-type": "image/png"}), 422, "truncated_image"),
    ("100-megapixel png", dict(content=huge_png_header(), headers={"content-type": "image/png"}), 413, "image_too_large"),
    ("multi-frame gif", dict(content=_gif(), headers={"content-type": "image/gif"}), 422, "multi_frame_image"),
    ("wrong size", dict(content=png(np.zeros((32, 32), np.uint8)), headers={"content-type": "image/png"}), 422, "bad_shape"),
    ("colour for a gray model", dict(content=png(np.random.default_rng(0).integers(0, 255, (28, 28, 3), dtype=np.uint8)),
                                     headers={"content-type": "image/png"}), 422, "wrong_channels"),
    ("wrong channels npy", dict(content=npy(np.zeros((2, 3, 28, 28), np.float32)), headers={"content-type": "application/x-npy"}), 422, "bad_shape"),
    ("NaN npy", dict(content=npy(np.full((28, 28), np.nan, np.float32)), headers={"content-type": "application/x-npy"}), 422, "non_finite"),
    ("Inf in JSON", dict(content=b'{"images": [[[Infinity]]]}', headers={"content-type": "application/json"}), 422, "non_finite"),
    ("pickled npy", dict(content=npy(np.array([{"a": 1}], dtype=object)), headers={"content-type": "application/x-npy"}), 422, "pickle_refused"),
    ("too many images", dict(content=npy(np.zeros((9, 28, 28), np.uint8)), headers={"content-type": "application/x-npy"}), 413, "too_many_images"),
    ("oversized body", dict(content=b"\0" * 400000, headers={"content-type": "application/x-npy"}), 413, "body_too_large"),
    ("unknown JSON field", dict(json={"images": [[[0.5]]], "colour": "red"}), 422, "invalid_request"),
    ("unknown query field", dict(content=png(digits(1)[0]), headers={"content-type": "image/png"}, params={"stepz": 3}), 422, "invalid_request"),
    ("steps over the cap", dict(content=png(digits(1)[0]), headers={"content-type": "image/png"}, params={"steps": 100000}), 422, "out_of_range"),
    ("negative seed", dict(content=png(digits(1)[0]), headers={"content-type": "image/png"}, params={"seed": -1}), 422, "invalid_request"),
    ("zero replicates", dict(json={"images": (digits(1) / 255).tolist(), "replicates": 0}), 422, "invalid_request"),
    ("unsupported media type", dict(content=b"x", headers={"content-type": "text/plain"}), 415, "unsupported_media_type"),
    ("ragged lists", dict(json={"images": [[0.1, 0.2], [0.3]]}), 422, "bad_shape"),
    ("bad base64", dict(json={"images": ["###"]}), 422, "bad_base64"),
]


@pytest.mark.parametrize(("case", "kwargs", "status", "code"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_its_4xx_and_code(server: str, case: str, kwargs: dict, status: int, code: str) -> None:
    r = httpx.post(server + "/purify", timeout=30, **kwargs)
    assert r.status_code == status, (case, r.text)
    assert r.json()["error"]["code"] == code
    assert len(r.content) < 1000  # never echoes the input
    assert httpx.get(server + "/v2/health/ready").status_code == 200


def test_server_still_serves_after_bad_inputs(server: str) -> None:
    r = httpx.post(server + "/purify", content=png(digits(1)[0]), headers={"content-type": "image/png"}, params={"steps": 2})
    assert r.status_code == 200
    text = httpx.get(server + "/metrics").text
    assert 'status="500"' not in text


def test_full_queue_gets_503_with_retry_after_and_deadline_gets_504(model: Path) -> None:
    flags = ("--queue-capacity", "2", "--max-batch-size", "1", "--max-queue-delay-ms", "0", "--max-steps", "100000")
    with running_server(model, *flags) as (url, _):
        async def main() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=120) as client:
                return await asyncio.gather(*[
                    client.post(url + "/purify", content=npy(digits(1)[0]), headers={"content-type": "application/x-npy"},
                                params={"steps": 300, "seed": i}) for i in range(8)
                ])

        responses = asyncio.run(main())
        codes = sorted(r.status_code for r in responses)
        assert 200 in codes and 503 in codes and set(codes) <= {200, 503}
        full = next(r for r in responses if r.status_code == 503)
        assert full.json()["error"]["code"] == "queue_full" and int(full.headers["retry-after"]) >= 1
        r = httpx.post(url + "/purify", content=npy(digits(1)[0]), headers={"content-type": "application/x-npy"},
                       params={"steps": 100000, "timeout_s": 0.5}, timeout=60)
        assert r.status_code == 504 and r.json()["error"]["code"] == "deadline_exceeded"
        text = httpx.get(url + "/metrics").text
        assert 'ebm_purify_cancellations_total{reason="deadline"} 1.0' in text


def _gauge(metrics: str, name: str) -> float:
    return next(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(name + " "))


def test_sigterm_under_load_loses_no_request(model: Path) -> None:
    """SIGTERM while a batch computes and jobs wait: the batch's jobs are answered 200, the queued ones 503 draining."""
    with running_server(model, "--max-batch-size", "2", "--max-queue-delay-ms", "0") as (url, proc):
        async def main() -> tuple[list[httpx.Response | Exception], float]:
            async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=16)) as client:
                async def one(i: int) -> httpx.Response:
                    return await client.post(url + "/purify", content=npy(digits(1, seed=i)[0]), headers={"content-type": "application/x-npy"},
                                             params={"steps": 400, "seed": i})
                tasks = [asyncio.create_task(one(i)) for i in range(12)]
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                running = 0.0  # one image per job: the jobs of the batch being computed (the first answered is not among them)
                while not running and not all(t.done() for t in tasks):
                    running = _gauge((await client.get(url + "/metrics")).text, "ebm_purify_inflight_images")
                proc.send_signal(signal.SIGTERM)
                return await asyncio.gather(*tasks, return_exceptions=True), running

        results, running = asyncio.run(main())
        assert all(isinstance(r, httpx.Response) for r in results), results
        codes = [r.status_code for r in results]  # type: ignore[union-attr]
        assert running >= 1 and set(codes) <= {200, 503} and codes.count(200) >= 1 + running
        for r in results:
            if r.status_code == 503:  # type: ignore[union-attr]
                assert r.json()["error"]["code"] == "draining"  # type: ignore[union-attr]
        # uvicorn re-raises the captured SIGTERM once its graceful shutdown is complete
        assert proc.wait(60) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in proc.log_path.read_text()  # type: ignore[attr-defined]


def test_api_key_mode(model: Path) -> None:
    with running_server(model, "--api-key", "s3cret") as (url, _):
        body = dict(content=png(digits(1)[0]), headers={"content-type": "image/png"}, params={"steps": 1})
        assert httpx.post(url + "/purify", **body).status_code == 401
        wrong = {**body, "headers": {**body["headers"], "x-api-key": "nope"}}
        assert httpx.post(url + "/purify", **wrong).json()["error"]["code"] == "unauthorized"
        right = {**body, "headers": {**body["headers"], "x-api-key": "s3cret"}}
        assert httpx.post(url + "/purify", **right).status_code == 200
        assert httpx.get(url + "/v2/health/ready").status_code == 200  # probes stay open
