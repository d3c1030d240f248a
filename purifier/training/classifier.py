"""Classifier training: natural, or PGD adversarial training (Madry et al. 2018,
https://arxiv.org/abs/1706.06083), the baseline a user would pick instead of purification, or
adversarial training through the purifier (:mod:`purifier.training.adversarial`); each can also
see purified copies of the training images (:mod:`purifier.training.purified_data`) and start
from a trained classifier (``init_from``).

The adversary is injected (``perturb``), so this module needs no attack code of its own: the CLI
passes the PGD of :mod:`attacks.pgd`. Adam with cosine decay, optional random translations
(``augment_shift``); the full test set is scored at the end. Every ``checkpoint_every`` steps the
training state (weights, Adam moments, random streams, the epoch's order) is written beside the
checkpoint stem as ``STEM-state.{safetensors,json}``; ``resume`` continues an interrupted run from
it bit for bit, and a finished run removes it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from purifier.checkpoint import checkpoint_stem, save_checkpoint
from purifier.data import dataset_info, load_dataset
from purifier.errors import CheckpointError, SettingsError
from purifier.models import build
from purifier.purifier import Purifier
from purifier.training.adversarial import DefendedView, attacked_rows, check_adversarial_settings
from purifier.training.attack_starts import AttackSource, is_int
from purifier.training.configs import ClassifierTrainConfig, to_dict
from purifier.training.purified_data import check_purified_settings, mix, purified_copies
from purifier.training.state import load_initial_weights, load_state, save_state

# (model, the ``through`` purifier or None, images, labels, training progress in [0, 1], seed) -> adversarial images in
# [0, 1] (against the purifier followed by the model where one is given; it is the one the training loop loaded and trains
# through). The seed counts the calls from 1, so a resumed run attacks with the seeds the uninterrupted one would have.
Perturb = Callable[[nn.Module, Purifier | None, torch.Tensor, torch.Tensor, float, int], torch.Tensor]


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500, device: str = "cpu") -> float:
    """Top-1 accuracy of ``model`` on images in [0, 1]."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            correct += int((model(x[i : i + batch_size].to(device)).argmax(1).cpu() == y[i : i + batch_size]).sum())
    return correct / len(x)


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Each image translated by its own (dy, dx), uniform in [-max_shift, max_shift], the uncovered
    border filled with 0 (the data sets' background); ``gen`` draws the shifts, so runs repeat."""
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dy, dx = (torch.randint(0, 2 * max_shift + 1, (n,), generator=gen) for _ in range(2))
    rows = (dy[:, None] + torch.arange(h)[None]).to(x.device)  # (n, h)
    cols = (dx[:, None] + torch.arange(w)[None]).to(x.device)  # (n, w)
    out = padded.gather(2, rows[:, None, :, None].expand(n, x.shape[1], h, padded.shape[3]))
    return out.gather(3, cols[:, None, None, :].expand(n, x.shape[1], h, w))


def _purifier_for(reference: str, dataset: str, where: str, device: str) -> Purifier:
    """The purifier ``reference`` (for the config key ``where``), refused unless its EBM was trained on ``dataset``."""
    purifier = Purifier.load(reference, device=device)
    if purifier.metadata.get("dataset") != dataset_info(dataset).name:
        raise SettingsError(f"{where}: the EBM {reference} was trained on {purifier.metadata.get('dataset')}, not {dataset}")
    return purifier


def train_classifier(
    config: ClassifierTrainConfig,
    out_path: str | Path,
    perturb: Perturb | None = None,
    data_dir: str | Path | None = None,
    device: str = "cpu",
    limit: int | None = None,
    provenance: dict[str, Any] | None = None,
    progress: bool = True,
    purified_source: AttackSource | None = None,
    resume: bool = False,
) -> Path:
    """Train and save a classifier checkpoint at ``out_path`` (stem); returns the JSON path.

    ``perturb`` is required when ``config.adversarial`` is set, ``purified_source`` when
    ``config.purified`` has an ``attack``. ``limit`` uses only the first ``limit`` training and
    test images (smoke tests). ``resume`` continues from the state an interrupted run with the same
    config and ``limit`` left beside ``out_path``.
    """
    if not isinstance(config.augment_shift, int) or isinstance(config.augment_shift, bool) or config.augment_shift < 0:
        raise SettingsError(f"augment_shift must be a whole number of pixels >= 0, got {config.augment_shift!r}")
    adversarial = check_adversarial_settings(config.adversarial) if config.adversarial else None
    if adversarial and perturb is None:
        raise ValueError("adversarial training needs a perturb function")
    if not is_int(config.checkpoint_every) or config.checkpoint_every < 1:
        raise SettingsError(f"checkpoint_every must be a whole number of steps >= 1, got {config.checkpoint_every!r}")
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    x_train, y_train = load_dataset(config.dataset, "train", data_dir)
    x_test, y_test = load_dataset(config.dataset, "test", data_dir)
    if limit:
        x_train, y_train, x_test, y_test = x_train[:limit], y_train[:limit], x_test[:limit], y_test[:limit]
    purified, purified_info = None, None
    if config.purified is not None:
        settings = check_purified_settings(config.purified)
        purifier = _purifier_for(settings["model"], config.dataset, "purified", device)
        start = x_train
        if "attack" in settings:
            if purified_source is None:
                raise ValueError("purified.attack needs a purified_source function")
            start = purified_source(x_train, y_train, settings["attack"])
        purified, purified_info = purified_copies(purifier, start, settings["seed"], progress=progress)
        purified_info = {**settings, **purified_info}
    view = None
    if adversarial and "through" in adversarial:
        view = DefendedView(_purifier_for(adversarial["through"], config.dataset, "adversarial.through", device), config.seed)
    model = build(config.architecture["name"], **config.architecture.get("args", {}))
    if config.init_from:
        load_initial_weights(model, config.init_from, "classifier", config.architecture)
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    per_epoch = math.ceil(len(x_train) / config.batch_size)
    total = per_epoch * config.epochs
    out = checkpoint_stem(Path(out_path))
    if out.suffix:
        raise SettingsError(f"{out_path}: a checkpoint stem has no dot in its name (the checkpoint is STEM.json + STEM.safetensors)")
    out.parent.mkdir(parents=True, exist_ok=True)
    state_path = out.with_name(out.name + "-state")
    run = {"config": to_dict(config), "limit": limit}
    step, attacks, elapsed, order = 0, 0, 0.0, torch.empty(0, dtype=torch.long)
    if resume:
        rest, saved = load_state(state_path, {"model": model}, optimizer)
        if saved.get("run") != json.loads(json.dumps(run)):
            raise SettingsError(f"{state_path}: the interrupted run had other settings; resume with its config (and --limit)")
        step, attacks, elapsed, order = saved["step"], saved["attacks"], saved["elapsed_s"], rest["order"]
        gen.set_state(rest["rng"])
        torch.set_rng_state(rest["torch_rng"])
    log = _open_log(out.with_suffix(".log.jsonl"), step)
    t0 = time.perf_counter() - elapsed
    bar = tqdm(initial=step, total=total, disable=not progress, desc="train-classifier")
    first_epoch, first_batch = divmod(step, per_epoch)
    for epoch in range(first_epoch, config.epochs):
        if epoch > first_epoch or first_batch == 0:
            order = torch.randperm(len(x_train), generator=gen)
        for b in range(first_batch if epoch == first_epoch else 0, per_epoch):
            idx = order[b * config.batch_size : (b + 1) * config.batch_size]
            x = x_train[idx] if purified is None else mix(x_train, purified, idx, purified_info["fraction"], gen)  # type: ignore[index]
            x, y = random_shift(x, config.augment_shift, gen).to(device), y_train[idx].to(device)
            if adversarial:
                model.eval()
                rows = attacked_rows(len(x), adversarial["fraction"], gen).to(device)
                if rows.any():
                    x = x.clone()
                    attacks += 1
                    x[rows] = perturb(model, view.purifier if view else None, x[rows], y[rows], step / total, attacks)  # type: ignore[misc]
                if view is not None:
                    x = view(x, step)
            model.train()
            frac = step / max(1, total - 1)
            for g in optimizer.param_groups:
                g["lr"] = config.lr * (config.lr_final_fraction + (1 - config.lr_final_fraction) * 0.5 * (1 + math.cos(math.pi * frac)))
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            bar.update(1)
            if step % config.log_every == 0:
                rec = {
                    "epoch": epoch, "step": step, "loss": loss.item(),
                    "train_acc": (logits.argmax(1) == y).float().mean().item(), "elapsed_s": round(time.perf_counter() - t0, 1),
                }
                log.write(json.dumps(rec) + "\n")
                log.flush()
                bar.set_postfix(loss=f"{rec['loss']:.3f}", acc=f"{rec['train_acc']:.3f}")
            if step % config.checkpoint_every == 0 and step < total:
                info = {"step": step, "attacks": attacks, "elapsed_s": time.perf_counter() - t0, "run": run}
                save_state(state_path, {"order": order, "rng": gen.get_state(), "torch_rng": torch.get_rng_state()}, {"model": model}, optimizer, info)
    bar.close()
    log.close()
    seconds = time.perf_counter() - t0
    test_acc = accuracy(model, x_test, y_test, device=device)
    info = dataset_info(config.dataset)
    meta = {
        "kind": "classifier",
        "architecture": config.architecture,
        "dataset": info.name,
        "image_shape": list(info.shape),
        "input_range": [0.0, 1.0],
        "num_classes": len(info.classes),
        "classes": list(info.classes),
        "training": {
            "adversarial": adversarial, "init_from": config.init_from, "purified": purified_info, "epochs": config.epochs, "train_images": len(x_train),
            "wall_time_s": round(seconds, 1), "clean_test_accuracy": test_acc, "test_images": len(x_test),
            "config": to_dict(config), **(provenance or {}),
        },
    }
    path = save_checkpoint(model.cpu(), out, meta)
    for suffix in (".safetensors", ".json"):
        state_path.with_suffix(suffix).unlink(missing_ok=True)
    return path


def _open_log(path: Path, step: int) -> Any:
    """The training log for appending: new for a fresh run (``step`` 0), else cut to the records of the
    first ``step`` steps, so that a resumed run's log reads as the uninterrupted run's."""
    if step == 0:
        return open(path, "w")
    if not path.is_file():
        raise CheckpointError(f"{path}: the interrupted run's log is missing")
    kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in kept))
    return open(path, "a")
