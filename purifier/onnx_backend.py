"""The onnxruntime backend: the same interface as :class:`purifier.backends.TorchBackend`,
running the graphs written by :mod:`purifier.onnx_export`.

Chain noise is drawn by :func:`purifier.langevin.chain_noise` exactly as in torch, so the same
seeds give the same outputs up to float error. Fused K-step graphs are used while at least K
steps remain (a step hook then sees progress every K steps). Rows are run in fixed micro-batches,
as in torch, so an image's output does not depend on its batch.

Providers come from the caller, else CUDA (when torch sees a GPU) then CPU; intra-op threads are
set from ``threads``. A user's ONNX classifier (NCHW input in a declared range) is wrapped by
:class:`OnnxClassifier`; it has no gradients, so gradient attacks refuse it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from purifier.checkpoint import (
    read_metadata,
    resolve,
    sha256_of,
)
from purifier.config import cache_dir
from purifier.errors import CheckpointError, SettingsError
from purifier.langevin import Bound, Bounds, LangevinConfig, LangevinSampler, StepHook, chain_starts, chain_streams
from purifier.onnx_export import FORMAT, MANIFEST, export_onnx
from purifier.variants import Variant, is_variant, read_variant


def default_providers() -> list[str]:
    available = ort.get_available_providers()
    wanted = (["CUDAExecutionProvider"] if torch.cuda.is_available() else []) + ["CPUExecutionProvider"]
    return [p for p in wanted if p in available]


def session(path: Path, providers: Sequence[str] | None = None, threads: int | None = None) -> ort.InferenceSession:
    if not path.is_file():
        raise CheckpointError(f"{path}: ONNX file not found")
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=list(providers or default_providers()))
    except Exception as err:  # onnxruntime raises its own exception types for bad files
        raise CheckpointError(f"{path}: cannot load ONNX model ({str(err).splitlines()[0][:200]})") from None


def _run_rows(sess: ort.InferenceSession, feeds: dict[str, np.ndarray], rows_axis: dict[str, int], micro_batch: int | None) -> np.ndarray:
    """Run ``sess`` over the rows of the inputs in fixed-size groups (the last padded); inputs
    without an entry in ``rows_axis`` are fed whole to every group."""
    n = next(v.shape[rows_axis[k]] for k, v in feeds.items() if k in rows_axis)
    m = micro_batch or n
    outs = []
    for start in range(0, n, m):
        part = {}
        for k, v in feeds.items():
            if k not in rows_axis:
                part[k] = np.ascontiguousarray(v, dtype=np.float32)
                continue
            chunk = np.take(v, range(start, min(start + m, n)), axis=rows_axis[k])
            if chunk.shape[rows_axis[k]] < m:
                pad = [(0, 0)] * v.ndim
                pad[rows_axis[k]] = (0, m - chunk.shape[rows_axis[k]])
                chunk = np.pad(chunk, pad)
            part[k] = np.ascontiguousarray(chunk, dtype=np.float32)
        outs.append(sess.run(None, part)[0][: min(m, n - start)])
    return np.concatenate(outs)


class _OnnxSampler(LangevinSampler):
    """A LangevinSampler whose steps run in onnxruntime (the chain loop and hook are inherited)."""

    def __init__(self, backend: OnnxBackend, config: LangevinConfig) -> None:
        super().__init__(None, config, backend.micro_batch)  # type: ignore[arg-type]
        self.backend = backend

    def advance(self, x: torch.Tensor, streams: Sequence[int], step: int, remaining: int, bounds: Bounds) -> tuple[torch.Tensor, int]:
        k = max(u for u in self.backend.steps_sessions if u <= remaining)
        cfg = self.config
        noise = torch.stack([self.noise(streams, step + i, x.shape[1:], torch.device("cpu")) for i in range(k)])
        lo, hi = (_bound_array(b, x, fill) for b, fill in zip(bounds, (-np.inf, np.inf), strict=True))
        feeds = {
            "x": x.numpy(), "noise": noise.numpy(), "lo": lo, "hi": hi,
            "drift": np.array([cfg.drift_at(step + i) for i in range(k)]), "scale": np.array([cfg.step_size_at(step + i) for i in range(k)]),
        }
        out = _run_rows(self.backend.steps_sessions[k], feeds, {"x": 0, "noise": 1, "lo": 0, "hi": 0}, self.micro_batch)
        return torch.from_numpy(out), k


def _bound_array(bound: Bound, x: torch.Tensor, none: float) -> np.ndarray:
    """A bound of :func:`purifier.langevin.chain_bounds` as an array shaped like ``x`` (``none`` where there is no bound)."""
    if isinstance(bound, torch.Tensor):
        return bound.numpy()
    return np.full(x.shape, none if bound is None else bound, dtype=np.float32)


class OnnxBackend:
    """Purification (and classification) with onnxruntime from an export folder."""

    name = "onnx"

    def __init__(
        self, folder: str | Path, providers: Sequence[str] | None = None, threads: int | None = None, micro_batch: int | None = 8,
        classifier: torch.nn.Module | None = None, variant: Variant | None = None,
    ) -> None:
        folder = Path(folder)
        if not (folder / MANIFEST).is_file():
            raise CheckpointError(f"{folder}: no {MANIFEST} (run ebm-purify export-onnx)")
        self.manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text())
        if self.manifest.get("format") != FORMAT:
            raise CheckpointError(
                f"{folder}: an ONNX export of format {self.manifest.get('format')!r}, this ebm-purify reads {FORMAT!r}; "
                "re-export it with ebm-purify export-onnx"
            )
        files = self.manifest["files"]
        self.steps_sessions = {int(k.split("_")[1]): session(folder / v, providers, threads) for k, v in files.items() if k.startswith("step_")}
        self.energy_session = session(folder / files["energy"], providers, threads)
        if classifier is None and "classifier" in files:
            classifier = OnnxClassifier(folder / files["classifier"], providers=providers, threads=threads)
        self.classifier = classifier
        self.image_shape: tuple[int, int, int] = tuple(self.manifest["image_shape"])  # type: ignore[assignment]
        self.built_in = LangevinConfig.from_dict(self.manifest["langevin"])
        self.defaults = variant.apply(self.built_in) if variant else self.built_in  # a variant's overrides
        self._check_built_in(self.defaults)
        self.data_range = tuple(self.manifest["data_range"])
        self.num_classes = num_classes_of(classifier, self.image_shape) if classifier is not None else None
        self.metadata = {"dataset": self.manifest.get("dataset"), "weights": {"sha256": self.manifest.get("source_sha256")}}
        self.micro_batch = micro_batch

    def _to_energy(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self.data_range
        return x * (hi - lo) + lo

    def _check_built_in(self, config: LangevinConfig) -> None:
        if config.precision != self.built_in.precision:
            raise SettingsError(f"this ONNX export has precision {self.built_in.precision} built in; re-export to change it")

    def purify(self, x: torch.Tensor, config: LangevinConfig, seeds: Sequence[int], hook: StepHook | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_built_in(config)
        n, r = x.shape[0], config.replicates
        streams = chain_streams(list(seeds), r)
        start = chain_starts(self._to_energy(x.float().cpu()), streams, r, config.init_noise)
        result = _OnnxSampler(self, config).run(start, streams, hook=hook)
        lo, hi = self.data_range
        return ((result.x - lo) / (hi - lo)).clamp(0.0, 1.0).view(n, r, *x.shape[1:]), result.completed

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        out = _run_rows(self.energy_session, {"x": self._to_energy(x.float().cpu()).numpy()}, {"x": 0}, self.micro_batch)
        return torch.from_numpy(out)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        if self.classifier is None:
            raise SettingsError("no classifier is configured")
        with torch.no_grad():
            return self.classifier(x.float().cpu())


def num_classes_of(classifier: torch.nn.Module, image_shape: tuple[int, ...]) -> int:
    """The number of logits a classifier returns (one probe on a blank image)."""
    with torch.no_grad():
        return int(classifier(torch.zeros(1, *image_shape)).shape[-1])


def load_onnx_export(model: str | Path, unroll: int = 4) -> Path:
    """An export folder for ``model``: itself if it holds a manifest, else an export of the
    checkpoint cached under the download cache by the weights' sha256 and the Langevin defaults
    the export records (made on first use; new defaults for the same weights make a new export)."""
    if (Path(model) / MANIFEST).is_file():
        return Path(model)
    if is_variant(model):  # the export holds the base model; the backend applies the variant's settings
        model = read_variant(model).base
    meta = read_metadata(resolve(model, "ebm"))
    defaults = hashlib.sha256(json.dumps(meta["langevin"], sort_keys=True).encode()).hexdigest()[:8]
    folder = cache_dir() / "onnx" / f"{meta['weights']['sha256'][:16]}-{defaults}-u{unroll}-{FORMAT.rsplit('/', 1)[1]}"
    if not (folder / MANIFEST).is_file():
        export_onnx(model, folder, unroll=unroll)
    return folder


class OnnxClassifier(torch.nn.Module):
    """A user's ONNX classifier: NCHW float input in ``input_range``; [0, 1] images in, logits out.
    Inference only: it has no gradients, so attacks that differentiate it are refused."""

    differentiable = False

    def __init__(
        self, path: str | Path, input_range: tuple[float, float] = (0.0, 1.0), providers: Sequence[str] | None = None, threads: int | None = None
    ) -> None:
        super().__init__()
        self.session = session(Path(path), providers, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.input_range = input_range
        self.sha256 = sha256_of(Path(path))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            raise SettingsError("an ONNX classifier has no gradients: gradient-based attacks cannot run on it (use --attack transfer)")
        lo, hi = self.input_range
        feed = (x.detach().float().cpu() * (hi - lo) + lo).numpy()
        return torch.from_numpy(self.session.run(None, {self.input_name: feed})[0]).to(x.device)
