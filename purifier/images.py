"""Decoding and encoding images and arrays safely, for the CLI and the service.

Everything that comes from outside passes through here: PNG/JPEG/... via Pillow with the size
checked *before* pixels are decoded (Pillow only warns about decompression bombs), single frames
only, 16-bit and palette images converted; NPY via ``numpy.load(allow_pickle=False)``. Failures
raise :class:`InputError` with a stable ``code``.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from purifier.errors import InputError


@dataclass(frozen=True)
class ImageLimits:
    """Caps applied before decoding (defaults suit 28x28 and 32x32 models with headroom)."""

    max_side: int = 4096
    max_pixels: int = 4_000_000


def decode_image(data: bytes, channels: int, limits: ImageLimits = ImageLimits()) -> torch.Tensor:
    """An encoded image -> (C, H, W) float32 in [0, 1] with ``channels`` channels (1 or 3).

    Gray images are expanded for colour models; colour images are accepted by gray models only
    when their three channels are equal (``wrong_channels`` otherwise)."""
    if not data:
        raise InputError("empty_image", "empty image data")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise InputError("image_too_large", f"image declares more than {limits.max_pixels} pixels") from None
        except UnidentifiedImageError:
            raise InputError("not_an_image", "data is not a readable image") from None
        except (OSError, ValueError, SyntaxError):
            raise InputError("corrupt_image", "image header is corrupt") from None
        w, h = img.size
        if w < 1 or h < 1:
            raise InputError("empty_image", f"image has size {w}x{h}")
        if w > limits.max_side or h > limits.max_side or w * h > limits.max_pixels:
            raise InputError("image_too_large", f"image is {w}x{h}; the limit is {limits.max_side} a side and {limits.max_pixels} pixels")
        if getattr(img, "n_frames", 1) > 1:
            raise InputError("multi_frame_image", "multi-frame images (animations, multi-page files) are not accepted")
        try:
            img.load()
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise InputError("truncated_image", "image data is truncated or corrupt") from None
    return _to_tensor(img, channels)


def _to_tensor(img: Image.Image, channels: int) -> torch.Tensor:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        arr = arr / (65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0)
        arr = np.clip(arr, 0, 1)
        gray = torch.from_numpy(arr.astype(np.float32))[None]
        return gray if channels == 1 else gray.expand(3, -1, -1).clone()
    if img.mode == "F":
        raise InputError("unsupported_image_mode", "floating-point images are not accepted; send NPY instead")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA").convert("RGB")
    rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    if channels == 3:
        arr = rgb
    elif (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
        arr = rgb[..., 0]  # a gray image stored as colour
    else:
        raise InputError("wrong_channels", "this model takes grayscale images; the image has colour")
    t = torch.from_numpy(arr.copy()).float().div_(255.0)
    return t[None] if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


def encode_png(image: torch.Tensor) -> bytes:
    """(C, H, W) in [0, 1] -> PNG bytes (8-bit, rounded)."""
    x = image.detach().cpu().clamp(0, 1).mul(255).round().to(torch.uint8)
    arr = x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def decode_npy(data: bytes) -> np.ndarray:
    """NPY bytes -> array; pickled/object arrays and non-numeric dtypes are refused."""
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err).lower() or "object" in str(err).lower():
            raise InputError("pickle_refused", "NPY holds Python objects; only numeric arrays are accepted") from None
        raise InputError("bad_npy", "data is not a valid NPY array") from None
    except (OSError, EOFError):
        raise InputError("bad_npy", "data is not a valid NPY array") from None
    if isinstance(arr, np.lib.npyio.NpzFile):
        raise InputError("bad_npy", "expected one NPY array, got an NPZ archive")
    return arr


def array_to_batch(arr: np.ndarray, image_shape: tuple[int, int, int]) -> torch.Tensor:
    """Interpret an array as images of ``image_shape`` (C, H, W) -> (N, C, H, W) float32 in [0, 1].

    Accepts (H, W), (C, H, W), (H, W, C) and the same with a leading batch axis; uint8 is scaled
    from 0..255, floats must already be in [0, 1] and finite.
    """
    c, h, w = image_shape
    if arr.dtype == np.uint8:
        x = arr.astype(np.float32) / 255.0
    elif arr.dtype.kind == "f":
        x = arr.astype(np.float32)
        if not np.isfinite(x).all():
            raise InputError("non_finite", "array contains NaN or infinite values")
        if x.size and (x.min() < 0.0 or x.max() > 1.0):
            raise InputError("out_of_range", "float pixel values must lie in [0, 1]")
    else:
        raise InputError("bad_dtype", f"array dtype {arr.dtype} is not accepted (uint8 or float)")
    shape = x.shape
    if shape == (h, w) and c == 1:
        x = x[None, None]
    elif shape == (c, h, w):
        x = x[None]
    elif shape == (h, w, c):
        x = x.transpose(2, 0, 1)[None]
    elif x.ndim == 3 and shape[1:] == (h, w) and c == 1:
        x = x[:, None]
    elif x.ndim == 4 and shape[1:] == (c, h, w):
        pass
    elif x.ndim == 4 and shape[1:] == (h, w, c):
        x = x.transpose(0, 3, 1, 2)
    else:
        raise InputError("bad_shape", f"array shape {shape} does not hold images of shape {image_shape}")
    if x.shape[0] == 0:
        raise InputError("empty_batch", "array holds no images")
    return torch.from_numpy(np.ascontiguousarray(x))


def check_shape(image: torch.Tensor, image_shape: tuple[int, int, int]) -> None:
    """Raise ``bad_shape`` unless ``image`` is (C, H, W) == ``image_shape``."""
    if tuple(image.shape) != tuple(image_shape):
        raise InputError("bad_shape", f"image has shape {tuple(image.shape)}, this model takes {tuple(image_shape)}")
