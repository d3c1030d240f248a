"""Shared fixtures: the real data folder, tiny random checkpoints, and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ebm_purify.cli import main
from purifier.checkpoint import save_checkpoint
from purifier.langevin import LangevinConfig
from purifier.models import build

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    assert SHARED_DATA.is_dir(), f"tests need the data folder {SHARED_DATA}"
    return SHARED_DATA


def make_ebm_checkpoint(path: Path, width: int = 4, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    ebm = build("conv-ebm", in_channels=1, width=width, image_size=28)
    meta = {
        "kind": "ebm", "architecture": {"name": "conv-ebm", "args": {"in_channels": 1, "width": width, "image_size": 28}},
        "dataset": "mnist", "image_shape": [1, 28, 28], "data_range": [-1.0, 1.0],
        "langevin": LangevinConfig(steps=10, step_size=0.0125, temperature=1e-4, replicates=2).to_dict(),
        "training": {"recipe": "test fixture (random weights)"},
    }
    return save_checkpoint(ebm, path, meta)


def make_classifier_checkpoint(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    clf = build("small-cnn", in_channels=1, width=4, hidden=16, image_size=28)
    meta = {
        "kind": "classifier", "architecture": {"name": "small-cnn", "args": {"in_channels": 1, "width": 4, "hidden": 16, "image_size": 28}},
        "dataset": "mnist", "image_shape": [1, 28, 28], "input_range": [0.0, 1.0], "num_classes": 10,
        "training": {"recipe": "test fixture (random weights)"},
    }
    return save_checkpoint(clf, path, meta)


def make_model_folder(folder: Path) -> Path:
    """A model folder like the shipped ones: ebm + classifier, random weights."""
    make_ebm_checkpoint(folder / "ebm")
    make_classifier_checkpoint(folder / "classifier")
    return folder


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return make_model_folder(tmp_path / "model")


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run ``ebm-purify ARGS`` in process; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run
