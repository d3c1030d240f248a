"""``ebm-purify demo``: the README's main job. Takes a handful of test images, attacks the bare
classifier with PGD, then shows what the purifier does: bare vs defended predictions on clean and
attacked images, and a grid PNG (clean / adversarial / purified)."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from attacks.norms import Norm
from attacks.pgd import PGD
from ebm_purify.commands.common import add_data_option, add_runtime_options, apply_runtime
from purifier.checkpoint import load_checkpoint, resolve
from purifier.config import DEFAULT_MODEL
from purifier.data import load_dataset
from purifier.defense import DefendedClassifier
from purifier.grids import save_grid
from purifier.purifier import Purifier

DEFAULT_EPS = {"mnist": 0.3, "fashion-mnist": 0.1, "cifar10": 8 / 255}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="attack a few test images, purify them, print bare vs defended predictions")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"shipped model name, model folder or variant (default {DEFAULT_MODEL})")
    p.add_argument("--n", type=int, default=8, help="test images (default 8)")
    p.add_argument("--eps", type=float, help="Linf PGD radius (default 0.3 MNIST, 0.1 Fashion-MNIST)")
    p.add_argument("--steps", type=int, help="Langevin steps (default: the model's)")
    p.add_argument("--replicates", type=int, help="purified copies averaged (default: the model's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="demo-out", help="folder for the grid PNG (default demo-out)")
    add_data_option(p)
    add_runtime_options(p)
    p.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    device = apply_runtime(args)
    purifier = Purifier.load(args.model, device=device)
    classifier, clf_meta = load_checkpoint(resolve(args.model, "classifier"), device=device)
    dataset = purifier.metadata.get("dataset", clf_meta.get("dataset", "mnist"))
    x, y = load_dataset(dataset, "test", args.data_dir)
    x, y = x[: args.n].to(device), y[: args.n].to(device)
    eps = args.eps if args.eps is not None else DEFAULT_EPS.get(dataset, 0.1)
    x_adv = PGD.on_model(classifier, Norm.LINF, eps=eps, step_size=eps / 10, steps=40, seed=args.seed).run(x, y).x_adv
    defended = DefendedClassifier(purifier, classifier, replicates=args.replicates, steps=args.steps, seed=args.seed)
    with torch.no_grad():
        bare_clean, bare_adv = classifier(x).argmax(1), classifier(x_adv).argmax(1)
        def_clean, def_adv = defended(x).argmax(1), defended(x_adv).argmax(1)
        purified = purifier(x_adv, steps=args.steps, seed=args.seed)
    cfg = purifier.config(steps=args.steps, replicates=args.replicates)
    print(f"{dataset}: {args.n} test images, PGD-40 Linf eps={eps:g} on the bare classifier (transfer), "
          f"defense {cfg.steps} Langevin steps ({cfg.chain_label()}) x {cfg.replicates} copies")
    print(f"{'image':>5} {'label':>5} {'bare':>5} {'bare@adv':>8} {'defended':>8} {'def@adv':>7}")
    for i in range(args.n):
        print(f"{i:>5} {int(y[i]):>5} {int(bare_clean[i]):>5} {int(bare_adv[i]):>8} {int(def_clean[i]):>8} {int(def_adv[i]):>7}")
    acc = [float((p == y).float().mean()) for p in (bare_clean, bare_adv, def_clean, def_adv)]
    print(f"accuracy  bare {acc[0]:.0%}  bare@adv {acc[1]:.0%}  defended {acc[2]:.0%}  defended@adv {acc[3]:.0%}")
    grid = save_grid([x.cpu(), x_adv.cpu(), purified.cpu()], Path(args.out) / "demo_grid.png", scale=3)
    print(f"grid (rows: clean, adversarial, purified adversarial): {grid}")
    return 0
