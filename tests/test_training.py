"""Each training command runs for a few iterations on a small slice (marked slow; CI runs them),
and resumed EBM training continues exactly where it stopped."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from purifier.checkpoint import resolve
from purifier.data import load_dataset
from purifier.errors import SettingsError
from purifier.purifier import Purifier
from purifier.training.configs import ClassifierTrainConfig, EBMTrainConfig, load_config
from purifier.training.ebm import _rejuvenate, check_rejuvenation_attack, lr_at, train_ebm
from purifier.training.purified_data import check_purified_settings
from tests.conftest import make_classifier_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY_EBM = ("--bank-size", "64", "--batch-size", "8", "--langevin-steps", "3", "--checkpoint-every", "2", "--sample-every", "4",
            "--grid-steps", "0,1,2", "--no-progress")


@pytest.mark.slow
@pytest.mark.parametrize("config", ["mnist-ebm", "mnist-ebm-noised", "fashion-mnist-ebm", "cifar10-ebm"])
def test_train_ebm_configs_run_and_load(cli, tmp_path: Path, data_dir: Path, config: str) -> None:
    out = tmp_path / config
    code, _, err = cli("train-ebm", "--config", ROOT / "configs" / f"{config}.toml", "--out", out, "--iterations", "4",
                            *TINY_EBM, "--data-dir", data_dir)
    assert code == 0, err
    meta = json.loads((out / "ebm.json").read_text())
    assert meta["training"]["iterations"] == 4 and meta["training"]["recipe"] == "midrun"
    assert meta["training"]["command"].startswith("ebm-purify") and "git_commit" in meta["training"]
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert {"loss", "gap", "grad_norm", "lr"} <= set(log[-1])
    assert (out / "samples" / "bank_000004.png").is_file() and (out / "samples" / "chains_000004.png").is_file()
    purifier = Purifier.load(out)
    shape = tuple(meta["image_shape"])
    assert purifier(torch.rand(2, *shape), steps=2).shape == (2, *shape)


@pytest.mark.slow
def test_resumed_training_matches_an_uninterrupted_run(cli, tmp_path: Path, data_dir: Path) -> None:
    cfg = ROOT / "configs" / "mnist-ebm.toml"
    base = ("train-ebm", "--config", cfg, *TINY_EBM, "--data-dir", data_dir)
    assert cli(*base, "--iterations", "4", "--out", tmp_path / "straight")[0] == 0
    assert cli(*base, "--iterations", "2", "--out", tmp_path / "resumed")[0] == 0
    assert cli(*base, "--iterations", "4", "--out", tmp_path / "resumed", "--resume")[0] == 0
    a = load_file(str(tmp_path / "straight" / "ebm.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "ebm.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_fine_tuning_starts_from_the_given_weights(cli, tmp_path: Path, data_dir: Path) -> None:
    cfg = ROOT / "configs" / "mnist-ebm.toml"
    code, _, err = cli("train-ebm", "--config", cfg, *TINY_EBM, "--iterations", "1", "--init-from", "mnist", "--data-dir", data_dir,
                       "--out", tmp_path / "tuned")
    assert code == 0, err
    shipped, tuned = Purifier.load("mnist").energy.state_dict(), Purifier.load(tmp_path / "tuned").energy.state_dict()
    # one Adam step at the warm-up learning rate, EMA 0.999: the weights barely move from the shipped ones
    assert all(torch.allclose(shipped[k], tuned[k], atol=1e-5) for k in shipped)
    assert json.loads((tmp_path / "tuned" / "ebm.json").read_text())["training"]["config"]["init_from"] == "mnist"
    code, _, err = cli("train-ebm", "--config", ROOT / "configs" / "cifar10-ebm.toml", *TINY_EBM, "--iterations", "1", "--init-from", "mnist",
                       "--data-dir", data_dir, "--out", tmp_path / "bad")
    assert code == 2 and "architecture" in err and "Traceback" not in err


@pytest.mark.slow
def test_divergence_rolls_back_to_the_last_checkpoint_then_stops_with_a_clear_error(cli, tmp_path: Path, data_dir: Path) -> None:
    base = (ROOT / "configs" / "mnist-ebm.toml").read_text()
    out = tmp_path / "run"

    def train(iterations: int, extra: str, *flags: str, folder: Path = out) -> tuple[int, str]:
        cfg = tmp_path / "run.toml"
        cfg.write_text(extra + base)
        code, _, err = cli("train-ebm", "--config", cfg, *TINY_EBM, "--iterations", iterations, "--out", folder, "--data-dir", data_dir, *flags)
        return code, err

    code, err = train(2, "")
    assert code == 0, err
    # any nonzero gap counts as divergence: iteration 3 rolls back to the checkpoint at 2 with half, then a quarter of the learning rate
    code, err = train(4, "divergence_gap = 0.0\nmax_rollbacks = 2\n", "--resume")
    assert code == 2 and "diverged at iteration 3" in err and "after 2 rollbacks" in err and "Traceback" not in err
    events = [r for r in map(json.loads, (out / "train_log.jsonl").read_text().splitlines()) if r.get("event") == "rollback"]
    assert [(e["iteration"], e["to_iteration"], e["lr_scale"]) for e in events] == [(3, 2, 0.5), (3, 2, 0.25)]
    assert json.loads((out / "ebm.json").read_text())["training"]["iterations"] == 2  # the last good checkpoint is kept
    code, err = train(4, "divergence_gap = 0.0\n", folder=tmp_path / "fresh")  # nothing to roll back to yet
    assert code == 2 and "diverged at iteration 1" in err and "after 0 rollbacks" in err


@pytest.mark.slow
@pytest.mark.parametrize(("config", "extra"), [("mnist-classifier", ()), ("mnist-classifier-pgd", ()), ("fashion-mnist-classifier-pgd", ()),
                                               ("mnist-classifier-shift", ()),
                                               ("mnist-classifier", ("--adversarial", "pgd", "--eps", "0.2", "--pgd-steps", "2"))])
def test_train_classifier_configs_run(cli, tmp_path: Path, data_dir: Path, config: str, extra: tuple[str, ...]) -> None:
    out = tmp_path / "clf"
    code, stdout, err = cli("train-classifier", "--config", ROOT / "configs" / f"{config}.toml", "--out", out, "--epochs", "1",
                            "--limit", "256", "--no-progress", "--data-dir", data_dir, *extra)
    assert code == 0, err
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["kind"] == "classifier" and meta["training"]["train_images"] == 256 and 0 <= meta["training"]["clean_test_accuracy"] <= 1
    assert (meta["training"]["adversarial"] is not None) == ("pgd" in config or bool(extra))
    assert "clean test accuracy" in stdout


def test_random_shift_translates_each_image_within_the_bound_and_repeats_with_the_seed() -> None:
    from purifier.training.classifier import random_shift

    x = torch.zeros(64, 1, 9, 9)
    x[:, 0, 4, 4] = 1.0  # one bright pixel in the middle of each image
    out = random_shift(x, 2, torch.Generator().manual_seed(0))
    where = [divmod(int(i), 9) for i in out.flatten(1).argmax(1)]
    assert out.sum().item() == 64 and all(2 <= r <= 6 and 2 <= c <= 6 for r, c in where) and len(set(where)) > 10
    assert torch.equal(out, random_shift(x, 2, torch.Generator().manual_seed(0)))
    assert random_shift(x, 0, torch.Generator()) is x
    edge = torch.ones(1, 1, 4, 4)
    shifted = random_shift(edge.expand(32, 1, 4, 4), 1, torch.Generator().manual_seed(1))
    assert set(shifted.sum((1, 2, 3)).tolist()) <= {16.0, 12.0, 9.0}  # the uncovered border is 0


@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_bad_augment_shift_is_refused(cli, tmp_path: Path, data_dir: Path, value: object) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'dataset = "mnist"\naugment_shift = {str(value).lower()}\n')
    code, _, err = cli("train-classifier", "--config", config, "--out", tmp_path / "o", "--limit", "16", "--no-progress", "--data-dir", data_dir)
    assert code == 2 and "augment_shift" in err and "Traceback" not in err


@pytest.mark.slow
def test_cifar_classifier_config_runs_a_few_steps(cli, tmp_path: Path, data_dir: Path) -> None:
    code, _, err = cli("train-classifier", "--config", ROOT / "configs" / "cifar10-classifier.toml", "--out", tmp_path / "wrn", "--epochs", "1",
                       "--limit", "16", "--batch-size", "8", "--no-progress", "--data-dir", data_dir)
    assert code == 0, err


def test_learning_rate_schedule_warms_up_then_decays() -> None:
    lrs = [lr_at(i, 1e-4, 10, 100, 0.1) for i in range(100)]
    assert lrs[0] == pytest.approx(1e-5) and lrs[9] == pytest.approx(1e-4)
    assert all(b <= a + 1e-15 for a, b in itertools.pairwise(lrs[10:])) and lrs[-1] == pytest.approx(1e-5, rel=0.01)


def test_unknown_config_keys_are_refused(cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('dataset = "mnist"\nlearning_rate = 1.0\n')
    code, _, err = cli("train-ebm", "--config", bad, "--out", tmp_path / "o")
    assert code == 2 and "unknown config keys: learning_rate" in err


def test_rejuvenation_restarts_at_attacked_images_at_the_fraction() -> None:
    config = EBMTrainConfig(rejuvenation_noise=[0.0])
    data, attacked = torch.zeros(10, 1, 2, 2), torch.arange(1.0, 5.0).view(4, 1, 1, 1).expand(4, 1, 2, 2)
    fresh = _rejuvenate(data, 4000, config, torch.Generator().manual_seed(0), (attacked, 0.5))
    from_pool = fresh.flatten(1)[:, 0] > 0
    assert 0.45 < from_pool.float().mean() < 0.55 and set(fresh[from_pool, 0, 0, 0].tolist()) == {1.0, 2.0, 3.0, 4.0}
    assert torch.equal(fresh[~from_pool], torch.zeros_like(fresh[~from_pool]))
    # without an attack the random stream is the one runs without this option always drew
    plain = EBMTrainConfig(rejuvenation_noise=[0.0, 0.5])
    a = _rejuvenate(data, 8, plain, torch.Generator().manual_seed(1), None)
    gen = torch.Generator().manual_seed(1)
    idx = torch.randint(10, (8,), generator=gen)
    sigma = torch.tensor([0.0, 0.5])[torch.randint(2, (8,), generator=gen)].view(-1, 1, 1, 1)
    assert torch.equal(a, data[idx] + sigma * torch.randn(8, 1, 2, 2, generator=gen))


@pytest.mark.parametrize(("settings", "message"), [
    ({"classifier": "c", "eps": 0.3, "steps": 2, "images": 8}, "needs exactly"),
    ({"classifier": "c", "eps": 0.3, "steps": 2, "images": 0, "fraction": 0.5}, "images must be an integer >= 1"),
    ({"classifier": "c", "eps": 0.3, "steps": 2, "images": 8, "fraction": 1.5}, r"fraction must be in \(0, 1\]"),
    ({"classifier": "c", "eps": -1, "steps": 2, "images": 8, "fraction": 0.5}, "eps > 0"),
    ("pgd", "needs exactly"),
])
def test_bad_rejuvenation_attack_settings_are_refused(settings: object, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        check_rejuvenation_attack(settings)


@pytest.mark.slow
def test_train_ebm_with_rejuvenation_attack(cli, tmp_path: Path, data_dir: Path) -> None:
    clf = make_classifier_checkpoint(tmp_path / "clf")
    config = tmp_path / "adv.toml"
    table = f'rejuvenation_attack = {{ classifier = "{clf}", eps = 0.3, steps = 2, images = 32, fraction = 1.0 }}\n'
    config.write_text(table + (ROOT / "configs" / "mnist-ebm.toml").read_text())
    code, _, err = cli("train-ebm", "--config", config, "--out", tmp_path / "run", "--iterations", "2", "--rejuvenation", "1.0", *TINY_EBM,
                       "--data-dir", data_dir)
    assert code == 0, err
    recorded = json.loads((tmp_path / "run" / "ebm.json").read_text())["training"]["config"]["rejuvenation_attack"]
    assert recorded == {"classifier": str(clf), "eps": 0.3, "steps": 2, "images": 32, "fraction": 1.0}
    config.write_text(table.replace("images = 32", 'images = "all"') + (ROOT / "configs" / "mnist-ebm.toml").read_text())
    code, _, err = cli("train-ebm", "--config", config, "--out", tmp_path / "bad", "--iterations", "2", *TINY_EBM, "--data-dir", data_dir)
    assert code == 2 and "rejuvenation_attack: images must be an integer" in err and "Traceback" not in err


@pytest.mark.slow
def test_the_attack_source_gets_the_first_training_images_once(tmp_path: Path, data_dir: Path) -> None:
    calls = []

    def source(x: torch.Tensor, y: torch.Tensor, attack: dict) -> torch.Tensor:
        calls.append((x.clone(), y.clone(), attack))
        return x.flip(-1)

    attack = {"classifier": "c", "eps": 0.3, "steps": 2, "images": 16, "fraction": 1.0}
    config = EBMTrainConfig(iterations=2, batch_size=4, bank_size=8, langevin_steps=1, rejuvenation_attack=attack, checkpoint_every=2,
                            sample_every=2, grid_steps=[0, 1], architecture={"name": "conv-ebm", "args": {"width": 4}})
    train_ebm(config, tmp_path / "run", data_dir, progress=False, attack_source=source)
    x, y = load_dataset("mnist", "train", data_dir)
    assert len(calls) == 1 and torch.equal(calls[0][0], x[:16]) and torch.equal(calls[0][1], y[:16]) and calls[0][2]["images"] == 16
    with pytest.raises(ValueError, match="attack_source"):
        train_ebm(config, tmp_path / "none", data_dir, progress=False)


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_every_training_config_loads(path: Path) -> None:
    """Each shipped training config parses with no unknown keys, its attack table is valid and its init_from resolves."""
    if "classifier" in path.name:
        config = load_config(ClassifierTrainConfig, path)
        if config.purified is not None:
            check_purified_settings(config.purified)
        return
    config = load_config(EBMTrainConfig, path)
    if config.rejuvenation_attack is not None:
        check_rejuvenation_attack(config.rejuvenation_attack)
    if config.init_from is not None:
        assert resolve(ROOT / config.init_from if "/" in config.init_from else config.init_from).is_file()
