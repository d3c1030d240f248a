"""Attack score-based purification with the noise-conditional energy (issue 9 probe), with the project's
PGD, EOT and full-defense verification (``attacks``), on MNIST test images from ``--offset``.

    python experiments/dsm-noise-conditional-ebm/probe.py --ckpt runs/dsm-probe/ckpt.pt --weights model \
        --sigma 0.6 --steps 10 --R 4 --n 128 --attack transfer

``--attack``: none (clean only), transfer (PGD-100 on the bare classifier, margin), bpda (BPDA+EOT) or
exact (gradients through the reverse process); eps 0.3 Linf. Prints one JSON line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from energy import DenoisingEnergy, DSMDefense

from attacks.defenses import NoDefense, defended_predictions
from attacks.eot import eot_gradient
from attacks.losses import Loss
from attacks.norms import Norm
from attacks.pgd import PGD, default_step_size
from attacks.verify import verify
from purifier.checkpoint import load_classifier
from purifier.data import load_dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", type=Path, default=Path("runs/dsm-probe/ckpt.pt"))
    ap.add_argument("--weights", default="ema", choices=["ema", "model"])
    ap.add_argument("--sigma", type=float, default=0.5, help="sigma* where the reverse process starts (EBM range)")
    ap.add_argument("--init-noise", type=float, default=None, help="noise added first (default sigma*; 0 with --steps 1: Tweedie)")
    ap.add_argument("--sigma-min", type=float, default=0.01)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--mode", default="ddim", choices=["ddim", "ancestral"])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--offset", type=int, default=0)
    ap.add_argument("--attack", default="none", choices=["none", "transfer", "bpda", "exact"])
    ap.add_argument("--eps", type=float, default=0.3)
    ap.add_argument("--eot", type=int, default=8)
    ap.add_argument("--R", type=int, default=8)
    ap.add_argument("--attack-steps", type=int, default=20)
    ap.add_argument("--restarts", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--classifier", default="mnist")
    ap.add_argument("--data-dir", default="../shared/data")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    energy = DenoisingEnergy()
    energy.load_state_dict(torch.load(a.ckpt, weights_only=True)[a.weights])  # our own probe weights (train.py)
    clf = load_classifier(a.classifier)
    x, y = load_dataset("mnist", "test", a.data_dir)
    x, y = x[a.offset : a.offset + a.n], y[a.offset : a.offset + a.n]
    d = DSMDefense(energy, clf, a.sigma, a.steps, sigma_min=a.sigma_min, mode=a.mode, init_noise=a.init_noise)
    seeds = list(range(a.offset, a.offset + a.n))
    t0 = time.time()
    clean = (defended_predictions(d, x, a.R, seeds) == y).float().mean().item()
    t1 = time.time()
    out = {**d.describe(), "n": a.n, "offset": a.offset, "R": a.R, "clean": clean, "clean_s_per_img": round((t1 - t0) / a.n, 4)}
    if a.attack != "none":
        if a.attack == "transfer":
            source, steps = eot_gradient(NoDefense(clf), 1, "none", Loss.MARGIN), 100
        else:
            source, steps = eot_gradient(d, a.eot, a.attack, Loss.MARGIN), a.attack_steps
        pgd = PGD(source, Norm.LINF, eps=a.eps, step_size=default_step_size(a.eps, steps), steps=steps, restarts=a.restarts,
                  keep_iterates=True, stop_after=None if a.attack == "transfer" else 2)
        final, worst = verify(d, y, pgd.run(x, y), a.R, seeds)
        out |= {"attack": a.attack, "eps": a.eps, "eot": a.eot, "final": final.float().mean().item(), "worst": worst.float().mean().item(),
                "attack_s": round(time.time() - t1, 1)}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
