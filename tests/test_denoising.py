"""The denoising training term: its scale (1 for a flat energy, 0 for the energy whose drift undoes the
noise exactly), its settings check, and a train-ebm run that uses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from purifier.errors import SettingsError
from purifier.training.denoising import check_denoising, denoising_loss


class Quadratic(torch.nn.Module):
    """E(x) = |x - centre|^2 / (2 c): its gradient times c is x - centre."""

    def __init__(self, centre: torch.Tensor, c: float) -> None:
        super().__init__()
        self.centre, self.c = centre, c
        self.w = torch.nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w * (x - self.centre).pow(2).flatten(1).sum(1) / (2 * self.c)


def test_a_flat_energy_scores_one_and_the_exact_denoiser_zero() -> None:
    clean = torch.rand(512, 1, 4, 4)
    flat = Quadratic(clean, 1e12)
    assert denoising_loss(flat, clean, [0.3, 0.6], 1.0, torch.Generator().manual_seed(0)).item() == pytest.approx(1.0, abs=0.03)
    exact = Quadratic(clean, 7.5)  # scale * grad E = x~ - clean
    loss = denoising_loss(exact, clean, [0.3, 0.6], 7.5, torch.Generator().manual_seed(0))
    assert loss.item() == pytest.approx(0.0, abs=1e-9)
    half = Quadratic(clean, 15.0)  # the drift undoes half the noise: a quarter of the squared residual left
    loss = denoising_loss(half, clean, [0.3], 7.5, torch.Generator().manual_seed(0))
    assert loss.item() == pytest.approx(0.25, abs=0.01)
    loss.backward()  # differentiable in the parameters through the input gradient
    assert half.w.grad is not None and half.w.grad.item() < 0  # a steeper energy (larger w) lowers it


def test_denoising_settings_are_checked() -> None:
    check_denoising(0.0, [], 0.0)  # off: nothing to check
    for args, message in (((-1.0, [0.3], 30.0), "denoise_weight"), ((1.0, [], 30.0), "denoise_noise"),
                          ((1.0, [0.3, 0.0], 30.0), "denoise_noise"), ((1.0, [0.3], 0.0), "denoise_horizon")):
        with pytest.raises(SettingsError, match=message):
            check_denoising(*args)


def test_train_ebm_with_the_denoising_term_logs_it_and_changes_the_weights(cli, tmp_path: Path, data_dir: Path) -> None:
    from tests.test_training import TINY_EBM

    base = ("train-ebm", "--dataset", "mnist", "--iterations", "4", *TINY_EBM, "--data-dir", data_dir)
    config = tmp_path / "dn.toml"
    config.write_text('dataset = "mnist"\ndenoise_weight = 1.0\ndenoise_noise = [0.5]\ndenoise_horizon = 10.0\n')
    assert cli(*base, "--out", tmp_path / "plain")[0] == 0
    code, _, err = cli(*base, "--config", config, "--out", tmp_path / "dn")
    assert code == 0, err
    records = [json.loads(line) for line in (tmp_path / "dn" / "train_log.jsonl").read_text().splitlines()]
    assert records and all(0 < r["denoise"] < 10 for r in records if "iteration" in r)
    plain = [json.loads(line) for line in (tmp_path / "plain" / "train_log.jsonl").read_text().splitlines()]
    assert all("denoise" not in r for r in plain)
    assert (tmp_path / "dn" / "ebm.safetensors").read_bytes() != (tmp_path / "plain" / "ebm.safetensors").read_bytes()
    config.write_text('dataset = "mnist"\ndenoise_weight = 1.0\ndenoise_noise = []\n')
    code, _, err = cli(*base, "--config", config, "--out", tmp_path / "bad")
    assert code == 2 and "denoise_noise" in err and "Traceback" not in err
