"""Purification variants: TOML files naming a base model and Langevin overrides, accepted wherever a model is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from purifier.checkpoint import resolve
from purifier.errors import SettingsError
from purifier.langevin import LangevinConfig
from purifier.purifier import Purifier
from purifier.variants import read_variant


def _variant(folder: Path, text: str) -> Path:
    path = folder / "variant.toml"
    path.write_text(text)
    return path


def test_a_variant_loads_the_base_weights_with_its_settings(model_dir: Path, tmp_path: Path) -> None:
    path = _variant(tmp_path, f'model = "{model_dir.name}"\n[langevin]\ninit_noise = 0.4\nsteps = 3\n')  # relative to the file
    base, variant = Purifier.load(model_dir), Purifier.load(path)
    assert variant.defaults == base.defaults.updated(init_noise=0.4, steps=3)
    assert variant.metadata["weights"]["sha256"] == base.metadata["weights"]["sha256"]
    assert variant.metadata["variant"]["langevin"] == {"init_noise": 0.4, "steps": 3}
    assert resolve(path, "classifier") == resolve(model_dir, "classifier")


@pytest.mark.parametrize(("text", "message"), [
    ('model = "m"\n[langevin]\nwarp = 2\n', "unknown [langevin] keys"),
    ('model = "m"\n[langevin]\ninit_noise = -1\n', "init_noise must be >= 0"),
    ('[langevin]\nsteps = 3\n', "a variant holds model"),
    ('model = "m"\nextra = 1\n', "unknown keys"),
    ('model = \n', "not a valid TOML"),
    ('model = "m"\n[langevin]\nsteps = "many"\n', "wrong type"),
    ('model = "m"\n[langevin]\nclamp = [1.0]\n', "clamp must be"),
    ('model = "m"\n[langevin]\nbox = -0.5\n', "box must be > 0"),
    ('model = "m"\n[langevin]\nbox = true\n', "box = true: give a value, or false"),
])
def test_bad_variants_are_refused_with_a_message(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("[", r"\[")):
        read_variant(_variant(tmp_path, text))


def test_purify_and_evaluate_accept_a_variant(cli, model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    path = _variant(tmp_path, f'model = "{model_dir}"\n[langevin]\ninit_noise = 0.3\nsteps = 2\n')
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32))
    code, _, err = cli("purify", "--model", path, "--input", tmp_path / "x.npy", "--output", tmp_path / "out.npy")
    assert code == 0, err
    code, _, err = cli("evaluate", "--model", path, "--attack", "none", "--n", "2", "--replicates", "1", "--data-dir", data_dir,
                       "--out", tmp_path / "ev", "--no-progress")
    assert code == 0, err
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    defense = report["models"]["defense"]
    assert defense["init_noise"] == 0.3 and defense["steps"] == 2
    code, _, err = cli("purify", "--model", tmp_path / "missing.toml", "--input", tmp_path / "x.npy", "--output", tmp_path / "o.npy")
    assert code == 2 and "variant not found" in err and "Traceback" not in err


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "configs" / "purify").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_variants_load(path: Path) -> None:
    variant = read_variant(path)
    assert Purifier.load(path).defaults == variant.apply(Purifier.load(variant.base).defaults)


def test_false_turns_off_the_base_models_box_and_clamp(tmp_path: Path) -> None:
    boxed = LangevinConfig(box=0.6, clamp=(-1.0, 1.0))
    variant = read_variant(_variant(tmp_path, 'model = "m"\n[langevin]\nbox = false\nclamp = false\nsteps = 7\n'))
    assert variant.apply(boxed) == LangevinConfig(steps=7)
    only_box = read_variant(_variant(tmp_path, 'model = "m"\n[langevin]\nbox = false\n'))
    assert only_box.apply(boxed) == LangevinConfig(clamp=(-1.0, 1.0))


def test_false_turns_off_the_base_models_schedules(tmp_path: Path) -> None:
    annealed = LangevinConfig(step_size=0.025, step_size_final=0.00625, temperature_final=1e-5, box=0.6)
    constant = read_variant(_variant(tmp_path, 'model = "m"\n[langevin]\nstep_size = 0.0125\nstep_size_final = false\ntemperature_final = false\n'))
    assert constant.apply(annealed) == LangevinConfig(step_size=0.0125, box=0.6)
