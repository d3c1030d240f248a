"""Attacked chain starts for training: their settings are checked in one place and the examples are
cached, keyed by what they depend on (so a rerun does not attack the training set again)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from purifier.errors import SettingsError
from purifier.training.attack_starts import cached_attack, check_attack
from tests.conftest import make_classifier_checkpoint


def test_attacks_are_cached_by_inputs_settings_and_classifier_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EBM_PURIFY_CACHE", str(tmp_path / "cache"))
    calls: list[dict] = []

    def source(x: torch.Tensor, y: torch.Tensor, attack: dict) -> torch.Tensor:
        calls.append(attack)
        return (x + attack["eps"] * torch.randn(x.shape)).clamp(0, 1)

    a, b = make_classifier_checkpoint(tmp_path / "a", seed=0), make_classifier_checkpoint(tmp_path / "b", seed=1)
    attack = cached_attack(source, "test")
    x, y = torch.rand(5, 1, 28, 28), torch.arange(5)
    settings = {"classifier": str(a), "eps": 0.3, "steps": 2, "images": 5, "fraction": 0.5}
    first = attack(x, y, settings)
    assert len(calls) == 1 and len(list((tmp_path / "cache" / "attacked").glob("*.safetensors"))) == 1
    assert torch.equal(attack(x, y, {**settings, "fraction": 1.0}), first) and len(calls) == 1  # fraction does not change the examples
    attack(x, y, {**settings, "eps": 0.2})
    attack(x, y, {**settings, "classifier": str(b)})
    attack(x, y.flip(0), settings)
    attack(x[:4], y[:4], settings)
    assert len(calls) == 5
    assert torch.equal(cached_attack(source, "test")(x, y, settings), first) and len(calls) == 5
    cached_attack(source, "another method")(x, y, settings)
    assert len(calls) == 6


@pytest.mark.parametrize(("attack", "message"), [
    ({"classifier": "c", "eps": 0.3}, "needs exactly"),
    ({"classifier": 3, "eps": 0.3, "steps": 2}, "classifier is a model reference"),
    ({"classifier": "c", "eps": True, "steps": 2}, "eps > 0"),
    ({"classifier": "c", "eps": 0.3, "steps": 2.0}, "steps an integer"),
])
def test_bad_attack_tables_are_refused(attack: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        check_attack(attack, "somewhere")
    assert check_attack({"classifier": "c", "eps": 1, "steps": 2}, "w") == {"classifier": "c", "eps": 1.0, "steps": 2}
