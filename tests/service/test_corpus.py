"""A generated corpus of hostile inputs fed to every image endpoint of the real server: each gets
its 4xx and stable code (or is accepted when it is a legitimate encoding), memory stays bounded
and the server stays ready."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from service.child import running_server
from tests.conftest import make_model_folder


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    return buf.getvalue()


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height."""
    data = bytearray(_png(Image.new("L", (1, 1))))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def _gif_frames(n: int) -> bytes:
    frames = [Image.new("L", (28, 28), v) for v in range(0, 255, 255 // n)][:n]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


gray = Image.fromarray((np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8))
CORPUS: list[tuple[str, bytes, str, int, str | None]] = [
    ("bomb 100k x 100k", _bomb(100_000, 100_000), "image/png", 413, "image_too_large"),
    ("bomb 30k x 30k", _bomb(30_000, 30_000), "image/png", 413, "image_too_large"),
    ("truncated png", _png(gray)[:50], "image/png", 422, "truncated_image"),
    ("corrupt png body", _png(gray)[:40] + b"\x00" * 40 + _png(gray)[80:], "image/png", 422, None),
    ("truncated jpeg", _jpeg(gray)[:100], "image/jpeg", 422, None),
    ("garbage", bytes(range(256)) * 4, "image/png", 422, "not_an_image"),
    ("empty body", b"", "image/png", 422, "empty_image"),
    ("multi-frame gif", _gif_frames(3), "image/gif", 422, "multi_frame_image"),
    ("16-bit png", _png(Image.fromarray((np.random.default_rng(1).random((28, 28)) * 65535).astype(np.uint16))), "image/png", 200, None),
    ("palette png", _png(gray.convert("P")), "image/png", 200, None),
    ("gray+alpha png", _png(gray.convert("LA")), "image/png", 200, None),
    ("colour png", _png(Image.fromarray((np.random.default_rng(2).random((28, 28, 3)) * 255).astype(np.uint8))), "image/png", 422, "wrong_channels"),
    ("cmyk jpeg", _jpeg(Image.new("CMYK", (28, 28), (10, 200, 30, 0))), "image/jpeg", 422, "wrong_channels"),
    ("1x1 png", _png(Image.new("L", (1, 1))), "image/png", 422, "bad_shape"),
    ("npy wrong dtype", _npy(np.zeros((28, 28), np.int64)), "application/x-npy", 422, "bad_dtype"),
    ("npy complex", _npy(np.zeros((28, 28), np.complex64)), "application/x-npy", 422, "bad_dtype"),
    ("npy wrong shape", _npy(np.zeros((5, 5), np.float32)), "application/x-npy", 422, "bad_shape"),
    ("npy zero images", _npy(np.zeros((0, 28, 28), np.float32)), "application/x-npy", 422, "empty_batch"),
    ("npy NaN", _npy(np.full((28, 28), np.nan, np.float32)), "application/x-npy", 422, "non_finite"),
    ("npy Inf", _npy(np.full((28, 28), np.inf, np.float32)), "application/x-npy", 422, "non_finite"),
    ("npy out of range", _npy(np.full((28, 28), 3.0, np.float32)), "application/x-npy", 422, "out_of_range"),
    ("npy object array", _npy(np.array([None, 1], dtype=object)), "application/x-npy", 422, "pickle_refused"),
    ("npy truncated", _npy(np.zeros((28, 28), np.float32))[:100], "application/x-npy", 422, "bad_npy"),
    ("npy huge header claim", b"\x93NUMPY\x01\x00" + struct.pack("<H", 70) + b"{'descr': '<f4', 'fortran_order': False, 'shape': (100000000,), }    \n",
     "application/x-npy", 422, "bad_npy"),
    ("raw pickle as npy", b"\x80\x04\x95" + b"\x00" * 20, "application/x-npy", 422, "pickle_refused"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with running_server(make_model_folder(tmp_path_factory.mktemp("corpus") / "model"), "--max-steps", "3") as (url, proc):
        yield url, proc


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_hostile_corpus_on_every_image_endpoint(server) -> None:
    url, proc = server
    httpx.post(url + "/purify", content=_png(gray), headers={"content-type": "image/png"}, params={"steps": 1})  # settle allocations
    before = _rss_kib(proc.pid)
    seen = []
    for endpoint in ("/purify", "/classify"):
        for name, body, ctype, status, code in CORPUS:
            for form in ("raw", "multipart"):
                if form == "raw":
                    r = httpx.post(url + endpoint, content=body, headers={"content-type": ctype}, params={"steps": 1}, timeout=60)
                else:
                    if not body:
                        continue
                    r = httpx.post(url + endpoint, files={"images": ("x", body, ctype)}, data={"steps": "1"}, timeout=60)
                seen.append((endpoint, name, form, r.status_code))
                assert r.status_code == status, (endpoint, name, form, r.text[:200])
                if code is not None:
                    assert r.json()["error"]["code"] == code, (endpoint, name, form, r.text[:200])
                elif status >= 400:
                    assert r.json()["error"]["code"] in {"corrupt_image", "truncated_image", "not_an_image"}
    grown_mib = (_rss_kib(proc.pid) - before) / 1024
    assert grown_mib < 200, f"server memory grew by {grown_mib:.0f} MiB over the corpus"
    assert httpx.get(url + "/v2/health/ready").status_code == 200
    assert len(seen) >= 2 * 2 * (len(CORPUS) - 1)
