"""Checkpoints: round trip, and a one-line error for every kind of broken file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from purifier.checkpoint import load_checkpoint, recorded_path, resolve, save_checkpoint
from purifier.errors import CheckpointError
from purifier.models import build
from purifier.purifier import Purifier
from tests.conftest import make_ebm_checkpoint


def test_round_trip_restores_weights_and_metadata(tmp_path: Path) -> None:
    path = make_ebm_checkpoint(tmp_path / "ebm")
    model, meta = load_checkpoint(path)
    again, _ = load_checkpoint(path.with_suffix(".safetensors"))
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert meta["data_range"] == [-1.0, 1.0] and len(meta["weights"]["sha256"]) == 64
    p = Purifier.load(tmp_path / "ebm.json")
    assert p.defaults.steps == 10 and p.defaults.replicates == 2 and p.image_shape == (1, 28, 28)


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "nope.json")
    assert "not found" in _one_line(err)
    path = make_ebm_checkpoint(tmp_path / "ebm")
    path.with_suffix(".safetensors").unlink()
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert "weights file not found" in _one_line(err)


def test_truncated_weights_fail_the_hash_check(tmp_path: Path) -> None:
    path = make_ebm_checkpoint(tmp_path / "ebm")
    w = path.with_suffix(".safetensors")
    w.write_bytes(w.read_bytes()[:-100])
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert "sha256" in _one_line(err) and "ebm.safetensors" in str(err.value)


def test_truncated_weights_without_hash_fail_to_parse(tmp_path: Path) -> None:
    path = make_ebm_checkpoint(tmp_path / "ebm")
    meta = json.loads(path.read_text())
    meta["weights"]["sha256"] = None
    path.write_text(json.dumps(meta))
    w = path.with_suffix(".safetensors")
    w.write_bytes(w.read_bytes()[:-100])
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert "cannot read safetensors" in _one_line(err)


def test_expected_sha256_is_enforced(tmp_path: Path) -> None:
    path = make_ebm_checkpoint(tmp_path / "ebm")
    with pytest.raises(CheckpointError, match="expected value"):
        load_checkpoint(path, expected_sha256="0" * 64)


def test_pickle_files_are_refused(tmp_path: Path) -> None:
    path = make_ebm_checkpoint(tmp_path / "ebm")
    torch.save(build("conv-ebm", width=4).state_dict(), path.with_suffix(".safetensors"))
    meta = json.loads(path.read_text())
    meta["weights"]["sha256"] = None
    path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert "refusing to unpickle" in _one_line(err)


def test_mismatched_architecture(tmp_path: Path) -> None:
    path = make_ebm_checkpoint(tmp_path / "ebm", width=4)
    meta = json.loads(path.read_text())
    meta["architecture"]["args"]["width"] = 8
    path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert "do not fit architecture" in _one_line(err)
    meta["architecture"]["name"] = "no-such-net"
    path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="unknown architecture"):
        load_checkpoint(path)


def test_corrupt_metadata(tmp_path: Path) -> None:
    path = make_ebm_checkpoint(tmp_path / "ebm")
    path.write_text("{not json")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert "not valid JSON" in _one_line(err)
    path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError, match="not an ebm-purify checkpoint"):
        load_checkpoint(path)


def test_resolve_folder_and_unknown_name(tmp_path: Path) -> None:
    make_ebm_checkpoint(tmp_path / "m" / "ebm")
    assert resolve(tmp_path / "m") == tmp_path / "m" / "ebm.json"
    with pytest.raises(CheckpointError, match="no classifier checkpoint"):
        resolve(tmp_path / "m", "classifier")
    with pytest.raises(CheckpointError, match="shipped model"):
        resolve("not-a-model")


def test_reports_record_shipped_weights_by_their_place_in_the_repository(tmp_path: Path) -> None:
    assert recorded_path(resolve("mnist")) == "purifier/weights/mnist/ebm.json"  # the same from any clone or worktree
    make_ebm_checkpoint(tmp_path / "m" / "ebm")
    assert recorded_path(resolve(tmp_path / "m")) == str((tmp_path / "m" / "ebm.json").resolve())


def test_an_ebm_without_classifiers_takes_those_it_names_one_level_deep(tmp_path: Path) -> None:
    ebm = make_ebm_checkpoint(tmp_path / "m" / "ebm")
    meta = json.loads(ebm.read_text())
    ebm.write_text(json.dumps({**meta, "classifiers_from": "mnist"}))
    assert resolve(tmp_path / "m", "classifier-pgd") == resolve("mnist", "classifier-pgd")
    assert resolve(tmp_path / "m") == ebm  # the EBM itself is never redirected
    ebm.write_text(json.dumps({**meta, "classifiers_from": str(tmp_path / "m")}))  # naming itself: no loop, a clear error
    with pytest.raises(CheckpointError, match="no classifier checkpoint"):
        resolve(tmp_path / "m", "classifier")


def test_save_creates_folders(tmp_path: Path) -> None:
    meta = {"kind": "classifier", "architecture": {"name": "small-cnn", "args": {"width": 4, "hidden": 8}}}
    path = save_checkpoint(build("small-cnn", width=4, hidden=8), tmp_path / "a" / "b" / "clf", meta)
    assert path.is_file() and path.with_suffix(".safetensors").is_file()
