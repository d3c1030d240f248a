"""Train the noise-conditional energy of ``energy.py`` on MNIST by denoising score matching (issue 9 probe).

    python experiments/dsm-noise-conditional-ebm/train.py --iterations 2000 --out runs/dsm-probe/ckpt.pt

Adam 2e-4, batch 64, EMA 0.999, seed 0; writes {"model", "ema"} state dicts every 1000 iterations (a
torch pickle of our own weights, read back only by ``probe.py``; never a user's file)."""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from energy import DenoisingEnergy, dsm_loss

from purifier.data import load_dataset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=2000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("runs/dsm-probe/ckpt.pt"))
    p.add_argument("--data-dir", default="../shared/data")
    args = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    x, _ = load_dataset("mnist", "train", args.data_dir)
    x = x * 2 - 1
    model = DenoisingEnergy()
    ema = copy.deepcopy(model)
    print(sum(q.numel() for q in model.parameters()), "params", flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t0, running = time.time(), 0.0
    for it in range(1, args.iterations + 1):
        x0 = x[torch.randint(0, len(x), (64,))]
        sigma = torch.exp(torch.empty(64).uniform_(math.log(0.01), math.log(2.0)))
        loss = dsm_loss(model, x0, sigma, torch.randn_like(x0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        for pe, q in zip(ema.parameters(), model.parameters(), strict=True):
            pe.data.mul_(0.999).add_(q.data, alpha=0.001)
        running = 0.98 * running + 0.02 * loss.item() if it > 1 else loss.item()
        if it % 100 == 0:
            print(f"it {it} loss {running:.4f} {time.time() - t0:.0f}s", flush=True)
        if it % 1000 == 0:
            torch.save({"model": model.state_dict(), "ema": ema.state_dict()}, args.out)


if __name__ == "__main__":
    main()
