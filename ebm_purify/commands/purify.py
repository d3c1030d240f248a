"""``ebm-purify purify``: purify PNG/JPEG files, a folder of them, or an .npy/.npz array, and
``ebm-purify info``: print a checkpoint's metadata."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ebm_purify.commands.common import add_runtime_options, apply_runtime
from purifier.backends import load_backend
from purifier.checkpoint import load_checkpoint, read_metadata, resolve, sha256_of
from purifier.errors import DataError
from purifier.grids import save_grid
from purifier.images import array_to_batch, check_shape, decode_image, encode_png

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("purify", help="purify images (PNG/JPEG file, folder, .npy or .npz) with an EBM")
    p.add_argument("--model", required=True, help="checkpoint path, model folder, or shipped model name (mnist, fashion-mnist)")
    p.add_argument("--input", required=True, help="an image file, a folder of images, or an .npy/.npz array")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--steps", type=int, help="Langevin steps (default: the model's)")
    p.add_argument("--replicates", type=int, default=1, help="purified copies per image (default 1)")
    p.add_argument("--step-size", type=float, help="Langevin step size eps (default: the model's)")
    p.add_argument("--temperature", type=float, help="Langevin temperature T (default: the model's)")
    p.add_argument("--seed", type=int, default=0, help="noise seed, the same for every image (default 0)")
    p.add_argument("--batch-size", type=int, default=256, help="images per purification batch (default 256)")
    p.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                   help="torch (default) or onnx (MODEL an export folder, or a checkpoint exported once into the cache)")
    add_runtime_options(p)
    p.set_defaults(run=run_purify)

    i = sub.add_parser("info", help="print a checkpoint's metadata and verify its weights")
    i.add_argument("model", help="checkpoint path, model folder, or shipped model name")
    i.add_argument("--role", default="ebm", help="which checkpoint of a model folder: ebm, classifier, classifier-pgd")
    i.set_defaults(run=run_info)


def run_purify(args: argparse.Namespace) -> int:
    device = apply_runtime(args)
    backend = load_backend(args.model, args.backend, classifier="none", device=device, threads=args.threads)
    shape = backend.image_shape
    source = Path(args.input)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    names, x, writer = _read_input(source, shape)
    cfg = backend.defaults.updated(steps=args.steps, replicates=args.replicates, step_size=args.step_size, temperature=args.temperature)
    chunks = [backend.purify(x[i : i + args.batch_size], cfg, [args.seed] * len(x[i : i + args.batch_size]))[0]
              for i in range(0, len(x), args.batch_size)]
    purified = torch.cat(chunks)  # (N, R, C, H, W)
    written = writer(out, names, purified)
    grid_path = save_grid([x[:16], purified[:16, 0]], out / "grid.png")
    print(f"purified {len(x)} image(s) x {args.replicates} cop{'y' if args.replicates == 1 else 'ies'} with {cfg.steps} steps "
          f"(eps={cfg.step_size}, T={cfg.temperature}) -> {written}; before/after grid: {grid_path}")
    return 0


def _read_input(source: Path, shape: tuple[int, int, int]) -> tuple[list[str], torch.Tensor, object]:
    if not source.exists():
        raise DataError(f"{source}: no such file or folder")
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{source}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return [p.stem for p in files], torch.stack([_read_image(p, shape) for p in files]), _write_pngs
    if source.suffix.lower() in IMAGE_SUFFIXES:
        return [source.stem], _read_image(source, shape)[None], _write_pngs
    if source.suffix.lower() == ".npy":
        arr = _load_array(source)
        return [source.stem], array_to_batch(arr, shape), _array_writer(arr, None)
    if source.suffix.lower() == ".npz":
        try:
            with np.load(source, allow_pickle=False) as z:
                key = next((k for k in ("x", "images", "x_test", "x_train") if k in z.files), z.files[0] if len(z.files) == 1 else None)
                if key is None:
                    raise DataError(f"{source}: cannot tell which array holds the images (name it 'x' or 'images')")
                arr = z[key]
        except (OSError, ValueError) as err:
            raise DataError(f"{source}: cannot read ({str(err).splitlines()[0]})") from None
        return [source.stem], array_to_batch(arr, shape), _array_writer(arr, key)
    raise DataError(f"{source}: unsupported input (an image file, a folder of images, .npy or .npz)")


def _load_array(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read ({str(err).splitlines()[0]})") from None


def _read_image(path: Path, shape: tuple[int, int, int]) -> torch.Tensor:
    img = decode_image(path.read_bytes(), shape[0])
    try:
        check_shape(img, shape)
    except Exception as err:
        raise DataError(f"{path}: {err}") from None
    return img


def _write_pngs(out: Path, names: list[str], purified: torch.Tensor) -> str:
    r = purified.shape[1]
    for name, copies in zip(names, purified, strict=True):
        for k, img in enumerate(copies):
            (out / (f"{name}.png" if r == 1 else f"{name}_r{k}.png")).write_bytes(encode_png(img))
    return f"{len(names) * r} PNG file(s) in {out}"


def _array_writer(original: np.ndarray, key: str | None) -> object:
    """Write purified images back in the input's layout and dtype (uint8 stays uint8)."""

    def write(out: Path, names: list[str], purified: torch.Tensor) -> str:
        x = purified if purified.shape[1] > 1 else purified[:, 0]
        arr = x.numpy()
        channel_last = original.ndim >= 3 and original.shape[-1] in (1, 3) and original.shape[-3] not in (1, 3)
        if original.ndim in (2, 3) and not channel_last and arr.shape[-3] == 1:
            arr = arr.squeeze(-3)  # (N, H, W) or (H, W) grayscale input
        elif channel_last:
            arr = np.moveaxis(arr, -3, -1)
        if original.ndim in (2, 3) and arr.shape[0] == 1 and (original.ndim == 2 or original.shape[0] in (1, 3) or channel_last):
            arr = arr[0]
        arr = (np.round(arr * 255).astype(np.uint8)) if original.dtype == np.uint8 else arr.astype(np.float32)
        path = out / f"{names[0]}_purified.{'npz' if key else 'npy'}"
        if key:
            np.savez_compressed(path, **{key: arr})
        else:
            np.save(path, arr)
        return str(path)

    return write


def run_info(args: argparse.Namespace) -> int:
    path = resolve(args.model, args.role)
    meta = read_metadata(path)
    load_checkpoint(path)  # verifies the sha256 and that the weights fit the architecture
    weights = path.parent / meta["weights"]["file"]
    print(json.dumps({"checkpoint": str(path), "weights_verified": sha256_of(weights) == meta["weights"]["sha256"], **meta}, indent=2))
    return 0
