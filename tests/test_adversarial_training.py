"""Adversarial classifier training through the purifier: settings checked with one line, the
attacked share of each batch, every image seen through one seeded chain (the same in any run),
fine-tuning from a classifier of the same architecture, and the CLI's BPDA attack end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from purifier.errors import SettingsError
from purifier.langevin import mix
from purifier.purifier import Purifier
from purifier.training import classifier as training
from purifier.training.adversarial import DefendedView, attacked_rows, check_adversarial_settings
from purifier.training.configs import ClassifierTrainConfig
from tests.conftest import make_classifier_checkpoint, make_ebm_checkpoint

SMALL = {"name": "small-cnn", "args": {"in_channels": 1, "width": 4, "hidden": 16, "image_size": 28}}


@pytest.mark.parametrize(("settings", "message"), [
    ({"eps": 0.3, "stpes": 2}, "unknown keys"),
    ({"steps": 2}, "eps must be a number > 0"),
    ({"eps": "0.3"}, "eps must be a number > 0"),
    ({"eps": 0.3, "steps": 0}, "steps must be an integer"),
    ({"eps": 0.3, "step_size": -1}, "step_size must be"),
    ({"eps": 0.3, "norm": "l1"}, "norm must be linf or l2"),
    ({"eps": 0.3, "warmup": 2}, "warmup must be in"),
    ({"eps": 0.3, "fraction": 0}, "fraction must be in"),
    ({"eps": 0.3, "through": 3}, "through must be a purifier reference"),
    ({"eps": 0.3, "eot": 4}, "needs through"),
    ({"eps": 0.3, "through": "m", "eot": 0}, "eot is the number of chains"),
    ("pgd", "must be a table"),
])
def test_bad_settings_are_refused(settings: object, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        check_adversarial_settings(settings)


def test_defaults_fill_the_unset_keys() -> None:
    assert check_adversarial_settings({"eps": 1}) == {"eps": 1.0, "steps": 10, "norm": "linf", "warmup": 0.0, "fraction": 1.0}
    assert check_adversarial_settings({"eps": 0.3, "through": "m"})["eot"] == 1


def test_attacked_rows_draw_the_fraction() -> None:
    gen = torch.Generator().manual_seed(0)
    assert attacked_rows(50, 1.0, gen).all()
    assert 0.25 < attacked_rows(4000, 0.3, gen).float().mean().item() < 0.35


def test_defended_view_is_one_chain_per_row_seeded_by_step_and_row(tmp_path: Path) -> None:
    purifier = Purifier.load(make_ebm_checkpoint(tmp_path / "ebm"))
    view, x = DefendedView(purifier, seed=3), torch.rand(4, 1, 28, 28)
    seen = view(x, step=7)
    config = purifier.config(replicates=1)
    alone = [purifier.run_chains(x[j : j + 1], config, [mix(3, 7, j)])[0][0, 0] for j in range(4)]
    assert torch.equal(seen, torch.stack(alone)) and not torch.equal(seen, x)
    assert not torch.equal(view(x, step=8), seen)


def test_training_attacks_the_fraction_and_trains_on_the_chain_of_every_image(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ebm, start = make_ebm_checkpoint(tmp_path / "ebm"), make_classifier_checkpoint(tmp_path / "start")
    attacked: list[int] = []
    seen: list[torch.Tensor] = []
    attacked_through: list[Purifier | None] = []

    def perturb(model: torch.nn.Module, purifier: Purifier | None, x: torch.Tensor, y: torch.Tensor, progress: float, seed: int) -> torch.Tensor:
        attacked.append(len(x))
        attacked_through.append(purifier)
        return torch.ones_like(x)  # marks the attacked rows

    real_view = DefendedView.__call__
    viewed_through: list[Purifier] = []

    def spy(self: DefendedView, x: torch.Tensor, step: int) -> torch.Tensor:
        seen.append(x.clone())
        viewed_through.append(self.purifier)
        return real_view(self, x, step)

    monkeypatch.setattr(DefendedView, "__call__", spy)
    config = ClassifierTrainConfig(architecture=SMALL, epochs=1, batch_size=32, init_from=str(start),
                                   adversarial={"eps": 0.3, "fraction": 0.5, "through": str(ebm)})
    path = training.train_classifier(config, tmp_path / "clf", perturb, data_dir, limit=128, progress=False)
    assert len(seen) == 4 and sum(attacked) == sum(int((s == 1).flatten(1).all(1).sum()) for s in seen)
    assert 16 < sum(attacked) < 112  # about half of the 128 images
    assert all(p is viewed_through[0] for p in attacked_through + viewed_through)  # the attack goes through the chain trained on, loaded once
    meta = json.loads(Path(path).read_text())["training"]
    assert meta["init_from"] == str(start) and meta["adversarial"]["through"] == str(ebm) and meta["adversarial"]["eot"] == 1

    config.architecture = {"name": "small-cnn", "args": {**SMALL["args"], "width": 8}}
    with pytest.raises(SettingsError, match=r"architecture .* differs"):
        training.train_classifier(config, tmp_path / "other", perturb, data_dir, limit=32, progress=False)


@pytest.mark.slow
def test_cli_trains_through_the_purifier_and_repeats(cli, tmp_path: Path, data_dir: Path) -> None:
    ebm = make_ebm_checkpoint(tmp_path / "ebm")
    config = tmp_path / "through.toml"
    config.write_text(f'dataset = "mnist"\nepochs = 1\nbatch_size = 32\n'
                      f'adversarial = {{ eps = 0.3, steps = 1, fraction = 0.5, through = "{ebm}", eot = 2 }}\n'
                      '[architecture]\nname = "small-cnn"\nargs = { width = 4, hidden = 16 }\n')
    digests = []
    for out in ("a", "b"):
        code, _, err = cli("train-classifier", "--config", config, "--out", tmp_path / out, "--limit", "64", "--no-progress", "--data-dir", data_dir)
        assert code == 0, err
        meta = json.loads((tmp_path / f"{out}.json").read_text())
        digests.append(meta["weights"]["sha256"])
    assert meta["training"]["adversarial"] == {"eps": 0.3, "steps": 1, "step_size": 0.75, "norm": "linf", "warmup": 0.0, "fraction": 0.5,
                                               "through": str(ebm), "eot": 2}
    assert digests[0] == digests[1]  # the same config and seed train the same weights

    config.write_text(config.read_text().replace("eot = 2", "eot = 2, restarts = 3"))
    code, _, err = cli("train-classifier", "--config", config, "--out", tmp_path / "c", "--limit", "64", "--no-progress", "--data-dir", data_dir)
    assert code == 2 and "unknown keys ['restarts']" in err and len(err.strip().splitlines()) == 1

    config.write_text(config.read_text().replace(", restarts = 3", ""))
    start = make_classifier_checkpoint(tmp_path / "start")  # its architecture names in_channels and image_size; the config does not
    code, _, err = cli("train-classifier", "--config", config, "--init-from", start, "--out", tmp_path / "d", "--limit", "64", "--no-progress",
                       "--data-dir", data_dir)
    assert code == 2 and "architecture" in err and "differs" in err and len(err.strip().splitlines()) == 1
