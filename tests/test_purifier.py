"""The Purifier: range conversion, replicates, seeds, and its BPDA / exact backward passes."""

from __future__ import annotations

import torch

from purifier.defense import DefendedClassifier
from purifier.langevin import LangevinConfig
from purifier.models import build
from purifier.purifier import Purifier


def _purifier(steps: int = 5, dtype: torch.dtype = torch.float32, **kw) -> Purifier:
    torch.manual_seed(0)
    ebm = build("conv-ebm", width=4).to(dtype)
    return Purifier(ebm, LangevinConfig(steps=steps, **kw), (-1.0, 1.0), (1, 28, 28))


def test_range_conversion_round_trip_and_zero_steps_is_identity() -> None:
    p = _purifier()
    x = torch.rand(3, 1, 28, 28)
    assert torch.allclose(p.to_energy_range(x), x * 2 - 1)
    assert torch.allclose(p.from_energy_range(p.to_energy_range(x)), x, atol=1e-6)
    assert torch.allclose(p(x, steps=0), x, atol=1e-6)


def test_output_in_unit_range_with_copies_shape() -> None:
    p = _purifier(step_size=0.5, temperature=1.0)
    out = p.copies(torch.rand(2, 1, 28, 28), replicates=3, seed=4)
    assert out.shape == (2, 3, 1, 28, 28)
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out[:, 0], out[:, 1])


def test_same_seed_same_output_any_batch() -> None:
    p = _purifier()
    x = torch.rand(5, 1, 28, 28)
    batch = p.copies(x, replicates=2, seed=[3, 1, 4, 1, 5])
    alone = p.copies(x[2:3], replicates=2, seed=4)
    assert torch.equal(batch[2], alone[0])
    assert not torch.equal(p(x[:1], seed=1), p(x[:1], seed=2))


def test_bpda_gradient_is_the_classifier_gradient_at_the_purified_point() -> None:
    p = _purifier(steps=3)
    clf = build("small-cnn", width=4, hidden=16).eval()
    x = torch.rand(2, 1, 28, 28, requires_grad=True)
    purified = p(x, seed=1, gradient="bpda")
    clf(purified).logsumexp(1).sum().backward()
    at = p(x.detach(), seed=1).requires_grad_(True)
    clf(at).logsumexp(1).sum().backward()
    assert torch.allclose(x.grad, at.grad, atol=1e-6)


def test_init_noise_perturbs_each_chain_start_by_its_own_noise() -> None:
    from purifier.langevin import INIT_NOISE_STEP, chain_noise, chain_streams

    p = _purifier(init_noise=0.3)
    x = torch.rand(3, 1, 28, 28) * 0.4 + 0.3
    start = p.copies(x, steps=0, replicates=2, seed=[5, 6, 7])
    z = chain_noise(chain_streams([5, 6, 7], 2), INIT_NOISE_STEP, (1, 28, 28)).view(3, 2, 1, 28, 28)
    assert torch.allclose(start, (x[:, None] + 0.3 * z / 2).clamp(0, 1), atol=1e-6)  # sigma in the EBM's [-1, 1] range
    assert torch.equal(p.copies(x, replicates=2, seed=[5, 6, 7])[1], p.copies(x[1:2], replicates=2, seed=6)[0])
    assert not torch.equal(start[:, 0], start[:, 1])


def test_exact_gradient_matches_finite_differences_on_a_short_chain() -> None:
    for noise in (0.0, 0.2):
        _check_exact_gradient(_purifier(steps=4, dtype=torch.float64, step_size=0.05, temperature=0.01, init_noise=noise))
    _check_exact_gradient(_purifier(steps=4, dtype=torch.float64, step_size=0.05, temperature=0.01, step_size_final=0.01))  # annealed steps
    _check_exact_gradient(_purifier(steps=4, dtype=torch.float64, step_size=0.05, temperature=0.05, temperature_final=0.01))  # annealed T
    # the box around the start (alone, and meeting a clamp): held entries pass their gradient to the start itself
    _check_exact_gradient(_purifier(steps=4, dtype=torch.float64, step_size=0.05, temperature=0.01, box=0.03))
    _check_exact_gradient(_purifier(steps=4, dtype=torch.float64, step_size=0.05, temperature=0.01, box=0.03, clamp=(-0.75, 0.75)))


def test_the_box_keeps_every_state_near_its_chain_start_also_when_continued() -> None:
    p = _purifier(steps=6, step_size=0.2, temperature=0.05, box=0.1)
    x = torch.rand(3, 1, 28, 28)
    out = p.copies(x, replicates=2, seed=[1, 2, 3])
    far = (out - x[:, None]).abs().amax()
    assert 0.04 < far <= 0.05 + 1e-6  # radius 0.1 in the EBM's [-1, 1] is 0.05 in [0, 1], and the chain reaches it
    free = _purifier(steps=6, step_size=0.2, temperature=0.05).copies(x, replicates=2, seed=[1, 2, 3])
    assert (free - x[:, None]).abs().amax() > 0.1
    traj = p.trajectory(x, [2, 6], replicates=2, seed=[1, 2, 3])  # continued chains keep the box of their first state
    assert torch.equal(traj[6], out) and torch.equal(traj[2], p.copies(x, steps=2, replicates=2, seed=[1, 2, 3]))


def _check_exact_gradient(p: Purifier) -> None:
    x = (torch.rand(2, 1, 28, 28, dtype=torch.float64) * 0.8 + 0.1).requires_grad_(True)
    w = torch.randn(2, 1, 1, 28, 28, dtype=torch.float64)
    (p.copies(x, seed=[3, 4], gradient="exact") * w).sum().backward()
    h = 1e-6
    for idx in [(0, 0, 10, 10), (1, 0, 5, 20), (0, 0, 14, 14)]:
        xp, xm = x.detach().clone(), x.detach().clone()
        xp[idx] += h
        xm[idx] -= h
        fd = ((p.copies(xp, seed=[3, 4]) * w).sum() - (p.copies(xm, seed=[3, 4]) * w).sum()) / (2 * h)
        assert abs(fd.item() - x.grad[idx].item()) < 1e-6 * max(1.0, abs(fd.item()))
    xp, xm = x.detach().clone(), x.detach().clone()
    xp[0, 0, 10] += h  # a whole image row, boxed entries included
    xm[0, 0, 10] -= h
    fd_row = ((p.copies(xp, seed=[3, 4]) * w).sum() - (p.copies(xm, seed=[3, 4]) * w).sum()) / (2 * h)
    assert abs(fd_row.item() - x.grad[0, 0, 10].sum().item()) < 1e-5 * max(1.0, abs(fd_row.item()))


def test_defended_classifier_averages_logits_over_copies() -> None:
    p = _purifier(steps=2)
    clf = build("small-cnn", width=4, hidden=16).eval()
    d = DefendedClassifier(p, clf, replicates=3, fixed_noise=True, seed=9)
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        logits = d(x)
        manual = clf(p.copies(x, replicates=3, seed=9).flatten(0, 1)).view(2, 3, -1).mean(1)
    assert torch.allclose(logits, manual, atol=1e-6)
    free = DefendedClassifier(p, clf, replicates=1)
    with torch.no_grad():
        assert not torch.equal(free(x), free(x))  # fresh noise every call


def test_trajectory_equals_separate_purifications() -> None:
    p = _purifier()
    x = torch.rand(3, 1, 28, 28)
    traj = p.trajectory(x, [0, 2, 5], replicates=2, seed=[1, 2, 3])
    for k in (0, 2, 5):
        assert torch.equal(traj[k], p.copies(x, steps=k, replicates=2, seed=[1, 2, 3]))
    p.defaults = p.defaults.updated(step_size_final=p.defaults.step_size / 4)  # a schedule spans each chain's own K steps
    traj = p.trajectory(x, [2, 5], replicates=2, seed=[1, 2, 3])
    for k in (2, 5):
        assert torch.equal(traj[k], p.copies(x, steps=k, replicates=2, seed=[1, 2, 3]))
