"""ONNX export and the onnxruntime backend: parity with torch for the same noise (batch sizes 1
and 7, every shipped model and a fixture; step sizes, temperatures and schedules chosen at run
time), a user's ONNX classifier in evaluate and the service."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from purifier.backends import TorchBackend, load_backend
from purifier.checkpoint import load_classifier
from purifier.data import load_dataset
from purifier.errors import CheckpointError
from purifier.onnx_backend import OnnxBackend, load_onnx_export
from purifier.onnx_export import export_onnx
from purifier.purifier import Purifier
from purifier.variants import read_variant
from service.app import create_app
from service.settings import ServiceSettings
from tests.conftest import make_model_folder


@pytest.fixture(scope="module")
def fixture_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model_folder(tmp_path_factory.mktemp("onnx") / "model")


@pytest.fixture(scope="module")
def export(fixture_model: Path) -> Path:
    export_onnx(fixture_model, fixture_model.parent / "export", unroll=3)
    return fixture_model.parent / "export"


def _parity(torch_backend: TorchBackend, onnx_backend: OnnxBackend, images: torch.Tensor | None = None) -> None:
    """Same outputs for the same noise; ``images`` (default: uniform noise) start the chains.

    Purified pixels agree to ~1e-7 (float rounding), except where a pre-activation lands within rounding of a
    LeakyReLU kink and the two runtimes take different branches: that pixel neighbourhood then differs by up to
    ~1e-3 (seen in a few of every ten runs on random inputs). Hence the bound: 99% of the values within 1e-5, all within 5e-3;
    the noise images are seeded, so that a run's outcome does not depend on which tests drew random numbers before."""
    for n in (1, 7):
        x = images[:n] if images is not None else torch.rand(n, *torch_backend.image_shape, generator=torch.Generator().manual_seed(n))
        cfg = torch_backend.defaults.updated(steps=7, replicates=2)  # 2 fused 3-step blocks + 1 single step
        a, done_a = torch_backend.purify(x, cfg, list(range(n)))
        b, done_b = onnx_backend.purify(x, cfg, list(range(n)))
        diff = (a - b).abs()
        assert diff.max().item() <= 5e-3 and (diff > 1e-5).float().mean().item() <= 0.01 and done_a.all() and done_b.all()
        assert (torch_backend.energy(x) - onnx_backend.energy(x)).abs().max().item() <= 1e-5
        if torch_backend.classifier is not None:
            assert (torch_backend.classify(x) - onnx_backend.classify(x)).abs().max().item() <= 1e-5


def test_manifest_records_the_export(export: Path, fixture_model: Path) -> None:
    manifest = json.loads((export / "manifest.json").read_text())
    ebm_meta = json.loads((fixture_model / "ebm.json").read_text())
    assert manifest["opset"] >= 17 and manifest["unroll"] == 3 and manifest["data_range"] == [-1.0, 1.0]
    assert manifest["source_sha256"] == ebm_meta["weights"]["sha256"] and manifest["classifier"]["num_classes"] == 10
    assert set(manifest["files"]) == {"step_1", "step_3", "energy", "classifier"} and manifest["inputs"]["x"][0] == "batch"
    assert manifest["langevin"]["step_size"] == ebm_meta["langevin"]["step_size"]


def test_onnx_matches_torch_on_the_fixture(export: Path, fixture_model: Path) -> None:
    tb = TorchBackend(Purifier.load(fixture_model), load_classifier(fixture_model), 10)
    _parity(tb, OnnxBackend(export))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "mnist-noised", "fashion-mnist-noised"])
def test_onnx_matches_torch_on_shipped_models(name: str, tmp_path: Path, data_dir: Path) -> None:
    """On test images of the model's data set: from uniform noise, far from the data, the large early steps of an annealed
    chain are chaotic (energy gradients there amplify the two runtimes' last-bit rounding to ~1e-4 within 7 steps, while
    chains from images agree to 1e-7)."""
    export_onnx(name, tmp_path, unroll=3)
    backend = load_backend(name)
    _parity(backend, OnnxBackend(tmp_path), load_dataset(backend.purifier.metadata["dataset"], "test", data_dir)[0][:7])


def test_a_variant_runs_on_both_backends_alike(export: Path, fixture_model: Path, tmp_path: Path) -> None:
    variant = tmp_path / "noised.toml"
    variant.write_text(f'model = "{fixture_model}"\n[langevin]\ninit_noise = 0.25\nsteps = 7\n')
    tb, ob = load_backend(str(variant)), load_backend(str(variant), backend="onnx")
    assert tb.defaults.init_noise == ob.defaults.init_noise == 0.25 and ob.defaults.steps == 7
    _parity(tb, ob)


@pytest.mark.parametrize(
    "langevin",
    ["step_size = 0.05\ntemperature = 0.02", "step_size_final = 0.001", "temperature_final = 0.001", "step_size_final = 0.001\ntemperature_final = 0.5",
     "clamp = [-0.5, 0.5]", "box = 0.02", "box = 0.02\nclamp = [-0.9, 0.9]\nstep_size_final = 0.001"],
)
def test_step_sizes_temperatures_schedules_clamps_and_boxes_run_on_one_export(export: Path, fixture_model: Path, tmp_path: Path, langevin: str) -> None:
    """The step graphs take the per-step drift and noise scale and the per-element bounds as inputs: one export serves any of them."""
    variant = tmp_path / "scheduled.toml"
    variant.write_text(f'model = "{fixture_model}"\n[langevin]\n{langevin}\n')
    tb, ob = load_backend(str(variant)), OnnxBackend(export, variant=read_variant(variant))
    assert tb.defaults == ob.defaults and tb.defaults != Purifier.load(fixture_model).defaults
    _parity(tb, ob)


def test_the_export_cache_follows_the_models_defaults(fixture_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same weights, new shipped defaults (a re-shipped card): the cached export is not reused with the old ones."""
    monkeypatch.setenv("EBM_PURIFY_CACHE", str(tmp_path / "cache"))
    model = shutil.copytree(fixture_model, tmp_path / "model")
    first = load_onnx_export(model, unroll=2)
    meta_path = model / "ebm.json"
    meta = json.loads(meta_path.read_text())
    meta["langevin"] = {**meta["langevin"], "box": 0.05, "clamp": [-1.0, 1.0]}
    meta_path.write_text(json.dumps(meta))
    second = load_onnx_export(model, unroll=2)
    assert second != first and load_onnx_export(model, unroll=2) == second
    assert OnnxBackend(second).defaults == Purifier.load(model).defaults != OnnxBackend(first).defaults


def test_onnx_refuses_settings_baked_into_the_graph(export: Path) -> None:
    ob = OnnxBackend(export)
    with pytest.raises(Exception, match="re-export"):
        ob.purify(torch.rand(1, 1, 28, 28), ob.defaults.updated(precision="bfloat16"), [0])


def test_an_export_of_the_old_format_is_refused_with_advice(export: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(export, old)
    manifest = json.loads((old / "manifest.json").read_text())
    (old / "manifest.json").write_text(json.dumps({**manifest, "format": "ebm-purify-onnx/1"}))
    with pytest.raises(CheckpointError, match="re-export it with ebm-purify export-onnx"):
        OnnxBackend(old)


def test_user_onnx_classifier_in_evaluate(cli, fixture_model: Path, export: Path, tmp_path: Path, data_dir: Path) -> None:
    base = ("evaluate", "--model", fixture_model, "--classifier", export / "classifier.onnx", "--n", "4", "--steps", "2",
            "--replicates", "2", "--data-dir", data_dir, "--no-progress")
    code, _, err = cli(*base, "--attack", "transfer", "--eps", "0.2", "--attack-steps", "2", "--out", tmp_path / "t")
    assert code == 0, err
    onnx_report = json.loads((tmp_path / "t" / "report.json").read_text())
    assert cli("evaluate", "--model", fixture_model, "--n", "4", "--steps", "2", "--replicates", "2", "--data-dir", data_dir, "--no-progress",
               "--attack", "transfer", "--eps", "0.2", "--attack-steps", "2", "--out", tmp_path / "u")[0] == 0
    torch_report = json.loads((tmp_path / "u" / "report.json").read_text())
    assert onnx_report["by_eps"][0]["bare_natural"] == torch_report["by_eps"][0]["bare_natural"]
    assert onnx_report["by_eps"][0]["bare_adversarial"] == torch_report["by_eps"][0]["bare_adversarial"]
    code, _, err = cli(*base, "--attack", "bpda-eot", "--eps", "0.2", "--out", tmp_path / "b")
    assert code == 2 and "no gradients" in err


def test_service_on_the_onnx_backend_equals_torch(export: Path, fixture_model: Path) -> None:
    x = torch.rand(2, 28, 28)
    outs = []
    for backend, model in (("onnx", export), ("torch", fixture_model)):
        app = create_app(ServiceSettings(model=str(model), backend=backend, classifier=str(export / "classifier.onnx")))
        with TestClient(app) as client:
            r = client.post("/classify", json={"images": x.tolist(), "steps": 4, "replicates": 2, "seed": 3})
            assert r.status_code == 200, r.text
            outs.append(torch.tensor(r.json()["logits"]))
    assert (outs[0] - outs[1]).abs().max() <= 1e-5
