"""Data sets: the real files in ../shared/data, and the IDX / CIFAR batch readers."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from purifier.data import load_dataset, read_cifar_batches
from purifier.errors import DataError

EXPECTED = {
    ("mnist", "test"): ((10000, 1, 28, 28), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]),
    ("mnist", "train"): ((60000, 1, 28, 28), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]),
    ("fashion-mnist", "test"): ((10000, 1, 28, 28), [1000] * 10),
    ("fashion-mnist", "train"): ((60000, 1, 28, 28), [6000] * 10),
    ("cifar10", "train"): ((10000, 3, 32, 32), [1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981]),
    ("cifar10", "test"): ((2000, 3, 32, 32), [178, 183, 206, 232, 213, 180, 202, 182, 213, 211]),
}


@pytest.mark.parametrize(("name", "split"), list(EXPECTED))
def test_shared_data_sets_load_with_shapes_counts_and_range(name: str, split: str, data_dir: Path) -> None:
    x, y = load_dataset(name, split, data_dir)
    shape, counts = EXPECTED[(name, split)]
    assert tuple(x.shape) == shape and x.dtype == torch.float32 and y.dtype == torch.int64
    assert y.bincount(minlength=10).tolist() == counts
    assert x.min().item() == 0.0 and x.max().item() == 1.0


def test_mnist_train_statistics(data_dir: Path) -> None:
    x, _ = load_dataset("mnist", "train", data_dir)
    assert abs(x.mean().item() - 0.1307) < 1e-4 and abs(x.std().item() - 0.3081) < 1e-4


def _write_idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_idx_gz_files_read_like_the_npz(tmp_path: Path, data_dir: Path) -> None:
    d = np.load(data_dir / "mnist.npz")
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", d["x_test"][:50])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", d["y_test"][:50])
    x, y = load_dataset("mnist", "test", tmp_path)
    ref_x, ref_y = load_dataset("mnist", "test", data_dir)
    assert torch.equal(x, ref_x[:50]) and torch.equal(y, ref_y[:50])


def test_truncated_idx_is_reported(tmp_path: Path) -> None:
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", 10, 28, 28) + b"\0" * 100)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">1I", 10) + b"\0" * 10)
    with pytest.raises(DataError, match="truncated"):
        load_dataset("mnist", "test", tmp_path)


def test_cifar_binary_and_python_batches(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (7, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, 7).astype(np.uint8)
    binary = tmp_path / "cifar-10-batches-bin"
    binary.mkdir()
    (binary / "test_batch.bin").write_bytes(np.concatenate([y[:, None], x.reshape(7, -1)], axis=1).tobytes())
    bx, by = read_cifar_batches(binary, "test")
    assert np.array_equal(bx, x) and np.array_equal(by, y)
    python = tmp_path / "cifar-10-batches-py"
    python.mkdir()
    with open(python / "test_batch", "wb") as f:
        pickle.dump({b"data": x.reshape(7, -1), b"labels": y.tolist()}, f)
    px, py_ = read_cifar_batches(python, "test")
    assert np.array_equal(px, x) and np.array_equal(py_, y)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_cifar_python_batch_with_code_is_refused(tmp_path: Path) -> None:
    python = tmp_path / "cifar-10-batches-py"
    python.mkdir()
    with open(python / "test_batch", "wb") as f:
        pickle.dump({b"data": _Evil(), b"labels": []}, f)
    with pytest.raises(DataError, match="refusing to unpickle"):
        read_cifar_batches(python, "test")


def test_unknown_name_and_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown data set"):
        load_dataset("imagenet", "test", tmp_path)
    with pytest.raises(DataError, match="no data found"):
        load_dataset("mnist", "test", tmp_path)
