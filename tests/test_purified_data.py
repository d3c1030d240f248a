"""Classifiers trained on purified copies: the copies are the purifier's own output per image seed
(whatever the chunking), cached and reused, mixed into batches at the configured fraction, and
recorded in the checkpoint, also when the chains start at adversarial examples; bad settings are
refused with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from purifier.errors import SettingsError
from purifier.purifier import Purifier
from purifier.training.purified_data import check_purified_settings, mix, purified_copies
from tests.conftest import make_classifier_checkpoint, make_ebm_checkpoint


@pytest.fixture
def purifier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Purifier:
    monkeypatch.setenv("EBM_PURIFY_CACHE", str(tmp_path / "cache"))
    return Purifier.load(make_ebm_checkpoint(tmp_path / "ebm"))


def test_copies_are_the_purifier_output_per_image_seed_and_are_cached(purifier: Purifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.rand(7, 1, 28, 28)
    copies, info = purified_copies(purifier, x, seed=5, chunk=3, progress=False)
    one_by_one = torch.cat([purifier(x[i : i + 1], seed=5 + i) for i in range(7)])
    assert torch.equal(copies, one_by_one)
    assert not torch.equal(copies, x)
    assert info["ebm_sha256"] == purifier.metadata["weights"]["sha256"] and info["langevin"]["replicates"] == 1
    assert (tmp_path / "cache" / "purified" / f"{info['cache_key']}.safetensors").is_file()

    def no_chains(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached copies should have been reused")
    monkeypatch.setattr(purifier, "run_chains", no_chains)
    again, info_again = purified_copies(purifier, x, seed=5, chunk=256, progress=False)
    assert torch.equal(again, copies) and info_again == info
    with pytest.raises(AssertionError, match="reused"):  # other settings, other key
        purified_copies(purifier, x, seed=6, progress=False)


def test_mix_draws_purified_rows_at_the_fraction() -> None:
    x, purified = torch.zeros(1000, 1, 2, 2), torch.ones(1000, 1, 2, 2)
    idx = torch.arange(1000)
    share = mix(x, purified, idx, 0.3, torch.Generator().manual_seed(0)).mean().item()
    assert 0.25 < share < 0.35
    assert mix(x, purified, idx, 1.0, torch.Generator().manual_seed(0)).mean().item() == 1.0


@pytest.mark.parametrize(("settings", "message"), [
    ({"model": "m", "fraction": 0.0}, "fraction must be in"),
    ({"model": "m", "fraction": 1.5}, "fraction must be in"),
    ({"fraction": 0.5}, "needs model"),
    ({"model": "m", "copies": 2}, "unknown keys"),
    ({"model": "m", "attack": {"classifier": "c", "eps": 0.3}}, "needs exactly"),
    ({"model": "m", "attack": {"classifier": "c", "eps": 0.0, "steps": 5}}, "eps > 0"),
    ({"model": "m", "attack": {"classifier": "c", "eps": 0.3, "steps": 0}}, "steps an integer"),
    ({"model": "m", "attack": {"classifier": "c", "eps": "0.3", "steps": 2}}, "eps > 0"),
    ({"model": "m", "seed": "0"}, "seed must be an integer"),
    ({"model": "m", "fraction": "0.5"}, "fraction must be in"),
    ("mnist-noised", "must be a table"),
])
def test_bad_settings_are_refused(settings: object, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        check_purified_settings(settings)


@pytest.mark.slow
def test_train_classifier_with_purified_copies(cli, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EBM_PURIFY_CACHE", str(tmp_path / "cache"))
    ebm = make_ebm_checkpoint(tmp_path / "ebm")
    config = tmp_path / "clf.toml"
    config.write_text(f'dataset = "mnist"\nepochs = 1\n[architecture]\nname = "small-cnn"\nargs = {{ width = 4, hidden = 16 }}\n'
                      f'[purified]\nmodel = "{ebm}"\nfraction = 0.5\n')
    code, _, err = cli("train-classifier", "--config", config, "--out", tmp_path / "clf", "--limit", "64", "--no-progress", "--data-dir", data_dir)
    assert code == 0, err
    purified = json.loads((tmp_path / "clf.json").read_text())["training"]["purified"]
    assert purified["model"] == str(ebm) and purified["fraction"] == 0.5 and purified["images"] == 64 and "attack" not in purified

    clf = make_classifier_checkpoint(tmp_path / "victim")  # chains started at PGD examples against it: other copies
    config.write_text(config.read_text() + f'attack = {{ classifier = "{clf}", eps = 0.3, steps = 2 }}\n')
    code, _, err = cli("train-classifier", "--config", config, "--out", tmp_path / "adv", "--limit", "64", "--no-progress", "--data-dir", data_dir)
    assert code == 0, err
    adv = json.loads((tmp_path / "adv.json").read_text())["training"]["purified"]
    assert adv["attack"] == {"classifier": str(clf), "eps": 0.3, "steps": 2} and adv["cache_key"] != purified["cache_key"]
    assert len(list((tmp_path / "cache" / "purified").glob("*.safetensors"))) == 2

    config.write_text(config.read_text().replace('dataset = "mnist"', 'dataset = "fashion-mnist"'))
    code, _, err = cli("train-classifier", "--config", config, "--out", tmp_path / "clf2", "--limit", "64", "--no-progress", "--data-dir", data_dir)
    assert code == 2 and "trained on mnist, not fashion-mnist" in err and len(err.strip().splitlines()) == 1
