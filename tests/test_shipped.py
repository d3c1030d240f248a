"""The shipped models: each loads offline by name with verified weights, carries a model card,
and shows the midrun property at reduced size (chains started at test images keep their class at
the default K)."""

from __future__ import annotations

import json
import re

import pytest
import torch

from purifier.checkpoint import load_classifier, resolve, shipped_models
from purifier.config import WEIGHTS_DIR
from purifier.data import load_dataset
from purifier.purifier import Purifier

SHIPPED = {"mnist": "mnist", "fashion-mnist": "fashion-mnist", "mnist-noised": "mnist", "fashion-mnist-noised": "fashion-mnist"}  # name -> data set
CLEAN_FLOOR = {"mnist": 0.98, "fashion-mnist": 0.88}     # natural classifier, clean, first 500 test images
PGD_FLOOR = {"mnist": 0.90, "fashion-mnist": 0.70}       # adversarially trained classifier, clean


def test_every_shipped_model_is_listed() -> None:
    assert shipped_models() == sorted(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_loads_offline_by_name_with_a_card(name: str) -> None:
    purifier = Purifier.load(name)
    assert purifier.metadata["dataset"] == SHIPPED[name] and purifier.image_shape == (1, 28, 28)
    for role in ("ebm", "classifier", "classifier-pgd"):  # classifiers may come from the model the EBM names
        path = resolve(name, role)
        assert path.with_suffix(".safetensors").stat().st_size < 10 * 1024 * 1024
        meta = json.loads(path.read_text())
        assert meta["training"]["command"].startswith("ebm-purify train-") and meta["training"]["wall_time_s"] > 0
        assert meta["dataset"] == SHIPPED[name]
    card = (WEIGHTS_DIR / name / "MODEL_CARD.md").read_text()
    assert "ebm-purify train-ebm" in card and re.search(r"\*\*Default (K|chain: K) = \d+", card)  # cards before session 7 name only K
    assert "clean accuracy" in card or "classifiers of" in card


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_classifiers_and_midrun_property(name: str, data_dir) -> None:
    x, y = load_dataset(SHIPPED[name], "test", data_dir)
    with torch.no_grad():
        for role, floor in (("classifier", CLEAN_FLOOR), ("classifier-pgd", PGD_FLOOR)):
            acc = (load_classifier(name, role)(x[:500]).argmax(1) == y[:500]).float().mean().item()
            assert acc >= floor[SHIPPED[name]], (role, acc)
    purifier, clf = Purifier.load(name), load_classifier(name)
    n = 64
    with torch.no_grad():
        clean = (clf(x[:n]).argmax(1) == y[:n]).float().mean().item()
        purified = purifier(x[:n], seed=0)
        after = (clf(purified).argmax(1) == y[:n]).float().mean().item()
    assert after >= clean - 0.05, (clean, after)  # the card's 1000-image curve holds it within 1.5 points
