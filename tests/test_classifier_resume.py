"""Interrupted classifier training resumes bit for bit: the same weights and log as an
uninterrupted run, mid-epoch or at an epoch boundary; a resume with other settings or without a
saved state is refused with one line, as is a checkpoint stem with a dot, which the state's name would collide with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ebm_purify.commands.train import _pgd_perturb
from purifier.errors import SettingsError
from purifier.training import classifier as training
from purifier.training.adversarial import check_adversarial_settings
from purifier.training.configs import ClassifierTrainConfig

SMALL = {"name": "small-cnn", "args": {"in_channels": 1, "width": 4, "hidden": 16, "image_size": 28}}


class Crash(Exception):
    """Stands for the process being killed."""


def _config(checkpoint_every: int) -> ClassifierTrainConfig:
    return ClassifierTrainConfig(architecture=SMALL, epochs=2, batch_size=16, augment_shift=2, checkpoint_every=checkpoint_every, log_every=1,
                                 adversarial=check_adversarial_settings({"eps": 0.3, "steps": 2, "fraction": 0.5, "warmup": 0.25}))


def _log(stem: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "elapsed_s"} for line in stem.with_suffix(".log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("checkpoint_every", [3, 4])  # 4 steps per epoch: the crash resumes mid-epoch (step 6) or at its end (step 4)
def test_a_resumed_run_matches_the_uninterrupted_one(tmp_path: Path, data_dir: Path, checkpoint_every: int) -> None:
    config = _config(checkpoint_every)
    perturb = _pgd_perturb(dict(config.adversarial))

    def crashing(*args: object) -> torch.Tensor:
        if args[-1] == 7:  # the seventh attack
            raise Crash
        return perturb(*args)

    straight = training.train_classifier(config, tmp_path / "straight", perturb, data_dir, limit=64, progress=False)
    with pytest.raises(Crash):
        training.train_classifier(config, tmp_path / "resumed", crashing, data_dir, limit=64, progress=False)
    assert (tmp_path / "resumed-state.safetensors").is_file() and json.loads((tmp_path / "resumed-state.json").read_text())["step"] in (4, 6)
    resumed = training.train_classifier(config, tmp_path / "resumed", perturb, data_dir, limit=64, progress=False, resume=True)

    a, b = load_file(str(straight.with_suffix(".safetensors"))), load_file(str(resumed.with_suffix(".safetensors")))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _log(tmp_path / "straight") == _log(tmp_path / "resumed") and len(_log(tmp_path / "resumed")) == 8
    assert not list(tmp_path.glob("*-state.*"))  # a finished run leaves no state behind


def test_a_resume_with_other_settings_or_no_state_is_refused(cli, tmp_path: Path, data_dir: Path) -> None:
    config = _config(2)
    perturb = _pgd_perturb(dict(config.adversarial))

    def crashing(*args: object) -> torch.Tensor:
        if args[-1] == 3:
            raise Crash
        return perturb(*args)

    with pytest.raises(Crash):
        training.train_classifier(config, tmp_path / "clf", crashing, data_dir, limit=64, progress=False)
    config.lr = 1e-2
    with pytest.raises(SettingsError, match="other settings"):
        training.train_classifier(config, tmp_path / "clf", perturb, data_dir, limit=64, progress=False, resume=True)
    code, _, err = cli("train-classifier", "--dataset", "mnist", "--epochs", "1", "--limit", "64", "--out", tmp_path / "none",
                       "--resume", "--no-progress", "--data-dir", data_dir)
    assert code != 0 and "no training state to resume from" in err and len(err.strip().splitlines()) == 1


def test_the_stem_may_end_in_json_but_has_no_other_dot(cli, tmp_path: Path, data_dir: Path) -> None:
    base = ("train-classifier", "--dataset", "mnist", "--epochs", "1", "--limit", "32", "--checkpoint-every", "1", "--no-progress",
            "--data-dir", data_dir)
    assert cli(*base, "--out", tmp_path / "clf.json")[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf.json", "clf.log.jsonl", "clf.safetensors"]
    code, _, err = cli(*base, "--out", tmp_path / "clf.v2")
    assert code != 0 and "has no dot in its name" in err and len(err.strip().splitlines()) == 1
