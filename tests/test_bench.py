"""Smoke runs of the benchmarks at tiny size: they run end to end and write well-formed JSON
(the speed numbers themselves are produced by the documented full runs, never asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, make_ebm_checkpoint


def _run(module: str, tmp_path: Path, *args: str) -> dict:
    make_ebm_checkpoint(tmp_path / "m" / "ebm")
    out = tmp_path / "result.json"
    subprocess.run([sys.executable, "-m", module, "--model", str(tmp_path / "m"), *args, "--out", str(out)],
                   cwd=ROOT, check=True, capture_output=True, timeout=600)
    return json.loads(out.read_text())


@pytest.mark.slow
def test_purify_speed_smoke(tmp_path: Path) -> None:
    result = _run("bench.purify_speed", tmp_path, "--batches", "1,3", "--steps", "2", "--repeats", "1", "--unroll", "2")
    assert result["machine"]["cores"] and result["matmul_gflops"] > 0 and result["matmul_gflops_bf16"] > 0
    assert [r["batch"] for r in result["rows"]] == [1, 3]
    for row in result["rows"]:
        for name in ("reference", "purifier", "purifier_bf16", "onnxruntime"):
            assert row[name]["image_steps_per_s"] > 0 and 0 < row[name]["roofline_fraction"]
        assert row["speedup_purifier_vs_reference"] > 0 and row["speedup_purifier_bf16_vs_reference"] > 0


@pytest.mark.slow
def test_service_load_smoke(tmp_path: Path) -> None:
    rows = _run("bench.service_load", tmp_path, "--clients", "1,4", "--requests", "8", "--steps", "2", "--threads", "1")["rows"]
    assert [r["clients"] for r in rows] == [1, 4]
    assert all(r["every_request_answered_once"] and r["responses_by_status"] == {"200": 8} for r in rows)
    assert all(1 <= r["mean_batch_images"] <= r["clients"] and 0 < r["compute_busy_fraction"] <= 1.05 for r in rows)
