"""Shipping a run as a model: default Langevin settings (schedules too) written into the EBM's metadata,
the card's midrun table keyed by K and chain, bad settings refused with one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import purifier.training.model_card as model_card
from purifier.config import WEIGHTS_DIR
from purifier.errors import SettingsError
from tests.conftest import make_model_folder


def _curve(path: Path, defense: dict, accuracy: dict[int, float]) -> Path:
    entry = {"n": 10, "bare_natural": {"accuracy": 1.0, "ci95": [0.7, 1.0]},
             "defended_natural": {f"{k}x1": {"accuracy": a, "n": 10, "ci95": [0.5, 1.0]} for k, a in accuracy.items()}}
    path.write_text(json.dumps({"settings": {"offset": 0, "seed": 0}, "models": {"defense": defense}, "by_eps": [entry]}))
    return path


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(model_card, "WEIGHTS_DIR", tmp_path / "weights")
    run = tmp_path / "run"
    make_model_folder(tmp_path / "model")
    (run / "ebm").mkdir(parents=True)
    for suffix in (".json", ".safetensors"):
        shutil.copy(tmp_path / "model" / f"ebm{suffix}", run / "ebm" / f"ebm{suffix}")
    return run


def test_ship_records_a_scheduled_default_chain_and_tables_the_curve_by_chain(runs: Path, tmp_path: Path) -> None:
    constant = _curve(tmp_path / "c.json", {"step_size": 0.0125, "temperature": 1e-4}, {100: 0.9, 200: 0.8})
    annealed = _curve(tmp_path / "a.json", {"step_size": 0.025, "step_size_final": 0.00625, "temperature": 1e-4}, {100: 0.95})
    card = model_card.ship("toy", runs, [constant, annealed], {"steps": 100, "step_size": 0.025, "step_size_final": 0.00625}, "because")
    meta = json.loads((card.parent / "ebm.json").read_text())
    assert meta["langevin"]["steps"] == 100 and meta["langevin"]["step_size_final"] == 0.00625 and meta["weights"]["sha256"]
    text = card.read_text()
    assert "| 100 | eps 0.0125, T 0.0001 | 10 | 90.0 |" in text and "| 100 | eps 0.025 -> 0.00625, T 0.0001 | 10 | 95.0 |" in text
    assert "**Default chain: K = 100, eps 0.025 -> 0.00625, T 0.0001.** because" in text


@pytest.mark.parametrize(("langevin", "message"), [({"stepz": 3}, "unknown Langevin settings"), ({"steps": "many"}, "bad Langevin settings"),
                                                   ({"step_size": -1.0}, "step_size must be > 0")])
def test_ship_refuses_bad_langevin_settings(runs: Path, langevin: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        model_card.ship("toy", runs, [], langevin, "")
    assert not (model_card.WEIGHTS_DIR / "toy").exists()  # refused before anything was copied


def test_the_command_line_gives_one_line_for_bad_settings(runs: Path) -> None:
    for extra, message in ((["--langevin", "{nope"], "not JSON"), (["--langevin", '{"stepz": 1}'], "unknown Langevin settings")):
        done = subprocess.run([sys.executable, "-m", "purifier.training.model_card", "--name", "toy-cli-check", "--runs", str(runs), *extra],
                              capture_output=True, text=True)
        assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr
    assert not (WEIGHTS_DIR / "toy-cli-check").exists()  # the real weights folder: nothing copied there


def test_the_card_names_how_each_classifier_was_trained_and_which_it_borrows(runs: Path, tmp_path: Path) -> None:
    meta = json.loads((tmp_path / "model" / "classifier.json").read_text())
    meta.setdefault("training", {})["adversarial"] = {"eps": 0.3, "steps": 1, "through": "configs/purify/x.toml"}
    (runs / "classifier.json").write_text(json.dumps(meta))
    shutil.copy(tmp_path / "model" / "classifier.safetensors", runs / "classifier.safetensors")
    text = model_card.ship("toy", runs, [], {}, "", classifiers_from="mnist").read_text()
    assert "### Classifier, adversarially trained through the purifier `configs/purify/x.toml`" in text
    assert "It borrows `classifier-pgd` from `mnist`; it loads under this name too." in text and "natural training" not in text
