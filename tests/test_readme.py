"""The README's Quickstart library snippet runs as written (on real test digits) and returns what its
comments promise: the shapes, images kept in [0, 1], and a defended prediction that keeps clean digits."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from purifier.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]


def quickstart_library_snippet() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "the Quickstart section has a python block"
    return found.group(1)


def test_quickstart_library_snippet_runs_as_written(data_dir: Path) -> None:
    x, y = load_dataset("mnist", "test", data_dir)
    namespace: dict = {"images": x[:2]}
    exec(compile(quickstart_library_snippet(), "README.md (Quickstart)", "exec"), namespace)
    clean, copies, logits = namespace["clean"], namespace["copies"], namespace["logits"]
    assert clean.shape == (2, 1, 28, 28) and copies.shape == (2, 8, 1, 28, 28) and logits.shape == (2, 10)
    assert 0.0 <= float(clean.min()) and float(clean.max()) <= 1.0
    assert torch.equal(logits.argmax(1), y[:2])
