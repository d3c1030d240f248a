"""Langevin purification confined to the Linf ball of radius rho around the incoming image (projected
Langevin; issue 9 probe, not part of the package), optionally thresholded after the chain, attacked
with the project's PGD, EOT and verification on test images (of the model's data set) from ``--offset``.

    python experiments/linf-box-chain/probe.py --model configs/purify/mnist-noised-anneal.toml --rho 0.3 --attack transfer --n 64

The idea: a clean image lies inside the ball of radius eps around its attacked copy, and a digit of
another class (strokes of 1 where this one has 0) does not, so a chain kept inside the ball cannot
turn grey adversarial strokes into bright ones. ``--rho`` is in [0, 1] units; each step is clamped to
the ball and to the EBM's data range (the product's ``box`` and ``clamp`` Langevin settings since session 7;
the probe first ran with a sampler subclass of its own, which gives bit-identical chains). Prints one JSON line."""

from __future__ import annotations

import argparse
import json
import time

import torch

from attacks.defenses import NoDefense, defended_predictions
from attacks.eot import eot_gradient
from attacks.losses import Loss
from attacks.norms import Norm
from attacks.pgd import PGD, default_step_size
from attacks.verify import verify
from purifier import Purifier
from purifier.checkpoint import load_classifier
from purifier.data import load_dataset


class BoxDefense:
    """The chain inside the ball (the ``box`` Langevin setting, with the data range as ``clamp``), then
    (optionally) a threshold, then the classifier; BPDA backward. ``rho`` < 0: the unbounded chain."""

    name = "box"
    stochastic = True

    def __init__(self, purifier: Purifier, classifier: torch.nn.Module, rho: float, threshold: float | None = None) -> None:
        self.p, self.classifier, self.rho, self.threshold = purifier, classifier.eval(), rho, threshold
        lo, hi = purifier.data_range
        self.cfg = purifier.config(box=rho * (hi - lo), clamp=(lo, hi)) if rho > 0 else purifier.config()

    def purify(self, x: torch.Tensor, copies: int, seed: int | list[int]) -> torch.Tensor:
        if self.rho == 0:
            out = x[:, None].expand(-1, copies, *x.shape[1:])
        else:
            out = self.p.run_chains(x, self.cfg.updated(replicates=copies), seed)[0]
        return (out > self.threshold).float() if self.threshold is not None else out

    def logits(self, x: torch.Tensor, copies: int, seed: int | list[int], gradient: str) -> torch.Tensor:
        with torch.no_grad():
            p = self.purify(x.detach(), copies, seed)
        if gradient == "bpda":
            p = p + (x[:, None] - x[:, None].detach())
        n, r = p.shape[:2]
        return self.classifier(p.flatten(0, 1)).view(n, r, -1)

    def describe(self) -> dict:
        return {"name": "box", "rho": self.rho, "threshold": self.threshold, **self.cfg.to_dict()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="configs/purify/mnist-noised-anneal.toml")
    ap.add_argument("--rho", type=float, default=0.3, help="ball radius in [0, 1] units; 0: no chain; negative: the unbounded chain")
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--offset", type=int, default=0)
    ap.add_argument("--attack", default="none", choices=["none", "transfer", "bpda"])
    ap.add_argument("--eps", type=float, default=0.3)
    ap.add_argument("--eot", type=int, default=8)
    ap.add_argument("--R", type=int, default=8)
    ap.add_argument("--attack-steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--classifier", default="mnist", help="classifier reference (fashion-mnist for Fashion-MNIST models)")
    ap.add_argument("--data-dir", default="../shared/data")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    clf = load_classifier(a.classifier)
    purifier = Purifier.load(a.model)
    x, y = load_dataset(purifier.metadata["dataset"], "test", a.data_dir)
    x, y = x[a.offset : a.offset + a.n], y[a.offset : a.offset + a.n]
    d = BoxDefense(purifier, clf, a.rho, a.threshold)
    seeds = list(range(a.offset, a.offset + a.n))
    t0 = time.time()
    clean = (defended_predictions(d, x, a.R, seeds) == y).float().mean().item()
    t1 = time.time()
    out = {"model": a.model, "rho": a.rho, "threshold": a.threshold, "n": a.n, "offset": a.offset, "clean": clean,
           "clean_s_per_img": round((t1 - t0) / a.n, 4)}
    if a.attack != "none":
        if a.attack == "transfer":
            source, steps = eot_gradient(NoDefense(clf), 1, "none", Loss.MARGIN), 100
        else:
            source, steps = eot_gradient(d, a.eot, "bpda", Loss.MARGIN), a.attack_steps
        pgd = PGD(source, Norm.LINF, eps=a.eps, step_size=default_step_size(a.eps, steps), steps=steps, keep_iterates=True,
                  stop_after=None if a.attack == "transfer" else 2)
        final, worst = verify(d, y, pgd.run(x, y), a.R, seeds)
        out |= {"attack": a.attack, "eps": a.eps, "final": final.float().mean().item(), "worst": worst.float().mean().item(),
                "attack_s": round(time.time() - t1, 1)}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
