"""Image classification data sets by name, as float tensors in [0, 1] (N, C, H, W) + int64 labels.

Sources, looked for in this order inside the data folder (``data_dir=`` / ``--data-dir`` /
``$EBM_PURIFY_DATA``), then in the download cache:
1. an ``.npz`` with uint8 ``x_train``, ``y_train``, ``x_test``, ``y_test`` (the layout of the
   project's ``shared/data``; (N, H, W) or (N, H, W, C));
2. the original IDX files (``train-images-idx3-ubyte.gz`` ..., gzipped or not) for MNIST and
   Fashion-MNIST;
3. the CIFAR-10 batches, binary (``cifar-10-batches-bin``) or python (``cifar-10-batches-py``,
   read with an unpickler that admits only numpy arrays).
With no local copy and ``download=True``, the originals are fetched into the cache and their md5
(the checksums the data sets' authors publish) verified.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
import tarfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from purifier.config import cache_dir, data_dir
from purifier.errors import DataError

_IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class DatasetInfo:
    """What a data set is and where its originals live."""

    name: str
    shape: tuple[int, int, int]
    classes: tuple[str, ...]
    npz_files: tuple[str, ...]
    downloads: dict[str, tuple[str, str]] = field(default_factory=dict)  # file -> (url, md5)


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist", (1, 28, 28), tuple(str(i) for i in range(10)), ("mnist.npz",),
        {
            "train-images-idx3-ubyte.gz": ("https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            "train-labels-idx1-ubyte.gz": ("https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
            "t10k-images-idx3-ubyte.gz": ("https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
            "t10k-labels-idx1-ubyte.gz": ("https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
        },
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist", (1, 28, 28),
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        ("fashion_mnist.npz", "fashion-mnist.npz"),
        {
            f: (f"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/{f}", md5)
            for f, md5 in (
                ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
                ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
                ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
            )
        },
    ),
    "cifar10": DatasetInfo(
        "cifar10", (3, 32, 32),
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        ("cifar10.npz", "cifar10_jpeg_subset.npz"),
        {"cifar-10-binary.tar.gz": ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530")},
    ),
}


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name`` (``mnist``, ``fashion-mnist``, ``cifar10``)."""
    key = name.lower().replace("_", "-")
    key = {"cifar-10": "cifar10", "fashion": "fashion-mnist", "fmnist": "fashion-mnist"}.get(key, key)
    if key not in DATASETS:
        raise DataError(f"unknown data set {name!r} (known: {', '.join(DATASETS)})")
    return DATASETS[key]


def load_dataset(
    name: str, split: str = "train", data_dir_: str | Path | None = None, download: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, C, H, W) float32 in [0, 1] and labels (N,) int64 of a split (``train``/``test``)."""
    info = dataset_info(name)
    if split not in ("train", "test"):
        raise DataError(f"split must be 'train' or 'test', got {split!r}")
    folders = [d for d in (data_dir(data_dir_), cache_dir() / info.name) if d is not None]
    for folder in folders:
        found = _read_local(info, split, folder)
        if found is not None:
            return _to_tensors(info, *found)
    explicit = data_dir(data_dir_)
    if not download or explicit is not None:
        where = explicit if explicit is not None else cache_dir() / info.name
        raise DataError(f"{info.name}: no data found in {where} (expected {' or '.join(info.npz_files)}, IDX or CIFAR batch files)")
    _download(info, cache_dir() / info.name)
    found = _read_local(info, split, cache_dir() / info.name)
    if found is None:
        raise DataError(f"{info.name}: download finished but the files could not be read")
    return _to_tensors(info, *found)


def _to_tensors(info: DatasetInfo, x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    if x.dtype != np.uint8:
        raise DataError(f"{info.name}: images must be uint8, got {x.dtype}")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    if tuple(x.shape[1:]) != info.shape:
        raise DataError(f"{info.name}: images have shape {tuple(x.shape[1:])}, expected {info.shape}")
    if len(x) != len(y):
        raise DataError(f"{info.name}: {len(x)} images but {len(y)} labels")
    xt = torch.from_numpy(np.array(x, copy=True)).float().div_(255.0)
    return xt, torch.from_numpy(np.asarray(y).astype(np.int64))


def _read_local(info: DatasetInfo, split: str, folder: Path) -> tuple[np.ndarray, np.ndarray] | None:
    if not folder.is_dir():
        return None
    for npz_name in info.npz_files:
        if (folder / npz_name).is_file():
            return read_npz(folder / npz_name, split)
    if info.name in ("mnist", "fashion-mnist"):
        images, labels = (_find(folder, n) for n in _IDX_NAMES[split])
        if images and labels:
            return read_idx(images), read_idx(labels)
    for sub in ("cifar-10-batches-bin", "cifar-10-batches-py"):
        if (folder / sub).is_dir() and info.name == "cifar10":
            return read_cifar_batches(folder / sub, split)
    return None


def _find(folder: Path, base: str) -> Path | None:
    for name in (base + ".gz", base, base.replace("-idx", ".idx") + ".gz", base.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


def read_npz(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``x_{split}``, ``y_{split}`` of an npz (``allow_pickle`` stays off)."""
    try:
        with np.load(path, allow_pickle=False) as d:
            return d[f"x_{split}"], d[f"y_{split}"]
    except (KeyError, ValueError, OSError) as err:
        raise DataError(f"{path}: cannot read {split} split ({err})") from None


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun's format, optionally gzipped) as a uint8 array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: cannot read ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path}: truncated IDX file ({data.size} of {int(np.prod(dims))} values)")
    return data.reshape(dims)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR-10 python batches: dicts, lists, bytes and numpy arrays, nothing else."""

    _ALLOWED: frozenset[tuple[str, str]] = frozenset({
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    })

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise DataError(f"CIFAR batch refers to {module}.{name}; refusing to unpickle it")
        return super().find_class(module, name)


def read_cifar_batches(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 batches (binary ``*.bin`` or python pickles) of a split, as (N, 3, 32, 32) uint8."""
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    xs, ys = [], []
    for n in names:
        if (folder / f"{n}.bin").is_file():
            raw = np.fromfile(folder / f"{n}.bin", dtype=np.uint8)
            if raw.size % 3073:
                raise DataError(f"{folder / (n + '.bin')}: size is not a multiple of 3073 bytes")
            rec = raw.reshape(-1, 3073)
            ys.append(rec[:, 0].astype(np.int64))
            xs.append(rec[:, 1:].reshape(-1, 3, 32, 32))
        elif (folder / n).is_file():
            with open(folder / n, "rb") as f:
                d = _ArrayOnlyUnpickler(f, encoding="bytes").load()
            xs.append(np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(d[b"labels"], dtype=np.int64))
        else:
            raise DataError(f"{folder}: missing CIFAR-10 batch {n}")
    return np.concatenate(xs), np.concatenate(ys)


def _download(info: DatasetInfo, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for fname, (url, md5) in info.downloads.items():
        target = folder / fname
        if not target.is_file() or _md5(target) != md5:
            try:
                with urllib.request.urlopen(url, timeout=60) as r:  # noqa: S310 (fixed https/http URLs of the originals)
                    target.write_bytes(r.read())
            except OSError as err:
                raise DataError(f"{info.name}: download of {url} failed ({err}); pass --data-dir with local files") from None
        if _md5(target) != md5:
            target.unlink()
            raise DataError(f"{info.name}: {fname} failed its md5 check")
        if fname.endswith(".tar.gz"):
            with tarfile.open(target) as tar:
                tar.extractall(folder, filter="data")


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()  # noqa: S324 (the published checksums are md5)


def class_names(name: str) -> tuple[str, ...]:
    """Class names of a data set, indexed by label."""
    return dataset_info(name).classes


__all__ = ["DATASETS", "DatasetInfo", "class_names", "dataset_info", "load_dataset", "read_cifar_batches", "read_idx", "read_npz"]
