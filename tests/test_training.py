"""Each training command runs for a few iterations on a small slice (marked slow; CI runs them),
and resumed EBM training continues exactly where it stopped."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from purifier.purifier import Purifier
from purifier.training.ebm import lr_at

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
