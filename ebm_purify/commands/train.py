"""``ebm-purify train-ebm`` and ``ebm-purify train-classifier``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

from attacks.defenses import EBMDefense
from attacks.eot import eot_gradient
from attacks.norms import Norm
from attacks.pgd import PGD, default_step_size
from ebm_purify.commands.common import add_data_option, add_runtime_options, apply_runtime, provenance
from purifier.checkpoint import load_classifier
from purifier.purifier import Purifier
from purifier.training.adversarial import check_adversarial_settings
from purifier.training.attack_starts import AttackSource, cached_attack
from purifier.training.classifier import train_classifier
from purifier.training.configs import ClassifierTrainConfig, EBMTrainConfig, load_config
from purifier.training.ebm import train_ebm


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-ebm", help="train a midrun EBM (persistent data-initialised chains, rejuvenation)")
    p.add_argument("--config", help="TOML config (see configs/); flags below override it")
    p.add_argument("--dataset", help="mnist, fashion-mnist or cifar10")
    p.add_argument("--out", required=True, help="output folder (checkpoints, logs, sample grids)")
    p.add_argument("--iterations", type=int, help="total training iterations")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--bank-size", type=int, help="persistent chains in the bank")
    p.add_argument("--langevin-steps", type=int, help="K, Langevin steps per update")
    p.add_argument("--rejuvenation", type=float, help="probability a drawn bank state is replaced by data")
    p.add_argument("--seed", type=int)
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--sample-every", type=int)
    p.add_argument("--grid-steps", type=lambda t: [int(v) for v in t.split(",")], help="chain-grid columns, e.g. 0,100,500,1000,2000")
    p.add_argument("--resume", action="store_true", help="continue from OUT/state.*")
    p.add_argument("--init-from", help="start from this EBM's weights (model reference), e.g. to fine-tune with noised rejuvenation")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_data_option(p)
    add_runtime_options(p)
    p.set_defaults(run=run_train_ebm)

    q = sub.add_parser("train-classifier", help="train a classifier, naturally or with PGD adversarial training")
    q.add_argument("--config", help="TOML config (see configs/); flags below override it")
    q.add_argument("--dataset", help="mnist, fashion-mnist or cifar10")
    q.add_argument("--out", required=True, help="checkpoint path stem, e.g. runs/mnist/classifier")
    q.add_argument("--epochs", type=int)
    q.add_argument("--batch-size", type=int)
    q.add_argument("--lr", type=float)
    q.add_argument("--adversarial", choices=["none", "pgd"], default=None, help="PGD adversarial training (Madry et al.)")
    q.add_argument("--eps", type=float, help="PGD training radius (images in [0, 1])")
    q.add_argument("--pgd-steps", type=int, help="PGD steps per training batch (default 10)")
    q.add_argument("--pgd-step-size", type=float, help="PGD step length (default 2.5 * eps / steps)")
    q.add_argument("--norm", choices=["linf", "l2"], default=None, help="PGD training norm (default linf)")
    q.add_argument("--init-from", help="start from this classifier's weights (model reference), e.g. to fine-tune it through a purifier")
    q.add_argument("--limit", type=int, help="use only the first N training and N test images (smoke runs)")
    q.add_argument("--seed", type=int)
    q.add_argument("--checkpoint-every", type=int, help="steps between resumable training states (default 50)")
    q.add_argument("--resume", action="store_true", help="continue an interrupted run from OUT-state.* (same config and --limit)")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_data_option(q)
    add_runtime_options(q)
    q.set_defaults(run=run_train_classifier)


def run_train_ebm(args: argparse.Namespace) -> int:
    device = apply_runtime(args)
    config = load_config(EBMTrainConfig, args.config, {
        "dataset": args.dataset, "iterations": args.iterations, "batch_size": args.batch_size, "bank_size": args.bank_size,
        "langevin_steps": args.langevin_steps, "rejuvenation": args.rejuvenation, "seed": args.seed,
        "checkpoint_every": args.checkpoint_every, "sample_every": args.sample_every, "grid_steps": args.grid_steps,
        "init_from": args.init_from,
    })
    path = train_ebm(config, args.out, args.data_dir, device, args.resume, provenance(), progress=not args.no_progress,
                     attack_source=_attack_source(device))
    print(f"EBM checkpoint: {path}")
    return 0


def run_train_classifier(args: argparse.Namespace) -> int:
    device = apply_runtime(args)
    config = load_config(ClassifierTrainConfig, args.config, {
        "dataset": args.dataset, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
        "init_from": args.init_from, "checkpoint_every": args.checkpoint_every,
    })
    if args.adversarial == "none":
        config.adversarial = None
    elif args.adversarial == "pgd" or args.eps is not None:
        adv = dict(config.adversarial or {})
        for key, value in (("eps", args.eps), ("steps", args.pgd_steps), ("step_size", args.pgd_step_size), ("norm", args.norm)):
            if value is not None:
                adv[key] = value
        if "eps" not in adv:
            raise SystemExit("ebm-purify train-classifier: error: --adversarial pgd needs --eps")
        config.adversarial = adv
    if config.adversarial:
        config.adversarial = check_adversarial_settings(config.adversarial)
    perturb = _pgd_perturb(config.adversarial) if config.adversarial else None
    path = train_classifier(config, args.out, perturb, args.data_dir, device, args.limit, provenance(), progress=not args.no_progress,
                            purified_source=_attack_source(device), resume=args.resume)
    meta = json.loads(Path(path).read_text())
    print(f"classifier checkpoint: {path} (clean test accuracy {meta['training']['clean_test_accuracy']:.4f})")
    return 0


def _attack_source(device: str) -> AttackSource:
    """Transfer examples for training (``purified.attack``, ``rejuvenation_attack``), cached across runs."""
    return cached_attack(lambda x, y, attack: _transfer_examples(x, y, attack, device), "linf-pgd ce, step 2.5 eps/steps, chunks of 1000 seeded by position")


def _transfer_examples(x: torch.Tensor, y: torch.Tensor, attack: dict, device: str) -> torch.Tensor:
    """Linf PGD examples of ``x`` against a fixed classifier (``purified.attack``, ``rejuvenation_attack``) on ``device``,
    in chunks seeded by position."""
    classifier = load_classifier(attack["classifier"], device=device)
    eps, steps, chunk = attack["eps"], attack["steps"], 1000
    out = torch.empty_like(x)
    for i in range(0, len(x), chunk):
        pgd = PGD.on_model(classifier, Norm.LINF, eps=eps, step_size=default_step_size(eps, steps), steps=steps, seed=i)
        out[i : i + chunk] = pgd.run(x[i : i + chunk].to(device), y[i : i + chunk].to(device)).x_adv.cpu()
    return out


def _pgd_perturb(adv: dict) -> object:
    """PGD for adversarial training (settings checked, :func:`check_adversarial_settings`): against the
    model, or with ``through`` BPDA+EOT PGD against the purifier training loads followed by the model,
    as Hill et al. attack the defense. eps (and the step with it) ramps up linearly over the first ``warmup``
    fraction of training, without which small nets at MNIST eps 0.3 stay at chance."""
    eps, steps = adv["eps"], adv["steps"]
    step_size = float(adv.setdefault("step_size", default_step_size(eps, steps)))
    norm, warmup = Norm(adv["norm"]), adv["warmup"]

    def perturb(model: nn.Module, purifier: Purifier | None, x: torch.Tensor, y: torch.Tensor, progress: float, seed: int) -> torch.Tensor:
        scale = min(1.0, progress / warmup) if warmup > 0 else 1.0
        if scale == 0.0:
            return x
        pgd_args = {"eps": eps * scale, "step_size": step_size * scale, "steps": steps, "seed": seed}
        if purifier is None:
            return PGD.on_model(model, norm, **pgd_args).run(x, y).x_adv  # type: ignore[arg-type]
        source = eot_gradient(EBMDefense(purifier, model), adv["eot"], "bpda", seed=seed)
        return PGD(source, norm, **pgd_args).run(x, y).x_adv  # type: ignore[arg-type]

    return perturb
