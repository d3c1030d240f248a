"""How much EOT 2 changes the one-step training attack (issue 9 probe, session 35): on Fashion-MNIST test images from
``--offset``, at a random start in the Linf eps ball, the BPDA gradient through ``fashion-mnist-noised``'s chain followed by
``--classifier`` with 1 and 2 chains (two seeds each) is compared with an 8-chain reference: the share of pixels whose sign
agrees (a one-step attack uses only the sign), and the training attack's examples (one step of 1.25 eps) are scored behind
the defense (R = 8, fresh seeds): cross-entropy and accuracy.

    python experiments/fashion-mnist-classifier-pgd-w32-through-eot2/sign_agreement.py \
        --classifier experiments/fashion-mnist-classifier-pgd-w32-through/classifier.json --data-dir ../shared/data

Prints one JSON line."""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F

from attacks.defenses import EBMDefense
from attacks.eot import eot_gradient
from attacks.norms import Norm, ascent_step, project, random_start
from purifier.checkpoint import load_classifier
from purifier.data import load_dataset
from purifier.purifier import Purifier


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classifier", required=True)
    ap.add_argument("--model", default="fashion-mnist-noised")
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--offset", type=int, default=0)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x, y = load_dataset("fashion-mnist", "test", args.data_dir)
    x, y = x[args.offset : args.offset + args.n], y[args.offset : args.offset + args.n]
    defense = EBMDefense(Purifier.load(args.model), load_classifier(args.classifier))
    start = random_start(x, args.eps, Norm.LINF, torch.Generator().manual_seed(0))
    grads = {f"eot{k}-seed{s}": eot_gradient(defense, k, "bpda", seed=s)(start, y)[1] for k, s in ((1, 1), (1, 2), (2, 3), (2, 4), (8, 5))}

    def agreement(a: str, b: str) -> float:
        return (grads[a].sign() == grads[b].sign()).float().mean().item()

    agree = {name: agreement(name, "eot8-seed5") for name in grads if name != "eot8-seed5"}
    agree |= {f"{a} vs {b}": agreement(a, b) for a, b in (("eot1-seed1", "eot1-seed2"), ("eot2-seed3", "eot2-seed4"))}
    scored = {}
    for name, g in grads.items():  # the training attack: one step of 1.25 eps from the start
        x_adv = project(start + ascent_step(g, 1.25 * args.eps, Norm.LINF), x, args.eps, Norm.LINF)
        with torch.no_grad():
            logits = defense.logits(x_adv, 8, [1000 + i for i in range(len(x))], "none").mean(1)
        scored[name] = {"ce": F.cross_entropy(logits, y).item(), "accuracy": (logits.argmax(1) == y).float().mean().item()}
    print(json.dumps({"classifier": args.classifier, "n": len(x), "eps": args.eps, "sign_agreement_with_eot8": agree, "attacked": scored}))


if __name__ == "__main__":
    main()
