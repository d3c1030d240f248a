"""Attacks: PGD projections, BPDA+EOT and exact gradients, torchattacks interop, statistics."""

from __future__ import annotations

import torch
import torchattacks

from attacks.defenses import EBMDefense, NoDefense
from attacks.eot import eot_gradient
from attacks.interop import defense_module
from attacks.norms import Norm, project, random_start
from attacks.pgd import PGD
from attacks.stats import wilson_interval
from purifier.langevin import LangevinConfig
from purifier.models import build
from purifier.purifier import Purifier


def _parts(steps: int = 3) -> tuple[Purifier, torch.nn.Module]:
    torch.manual_seed(0)
    purifier = Purifier(build("conv-ebm", width=4), LangevinConfig(steps=steps), (-1.0, 1.0), (1, 28, 28))
    return purifier, build("small-cnn", width=4, hidden=16).eval()


def test_projection_stays_in_ball_and_unit_box() -> None:
    x = torch.rand(4, 1, 28, 28)
    far = x + torch.randn_like(x) * 5
    for norm, eps in ((Norm.LINF, 0.1), (Norm.L2, 1.5)):
        p = project(far, x, eps, norm)
        d = (p - x).flatten(1)
        size = d.abs().amax(1) if norm is Norm.LINF else d.norm(dim=1)
        assert (size <= eps + 1e-5).all() and p.min() >= 0 and p.max() <= 1
        s = random_start(x, eps, norm, torch.Generator().manual_seed(0))
        assert ((s - x).flatten(1).abs().amax(1) <= eps + 1e-6).all() if norm is Norm.LINF else ((s - x).flatten(1).norm(dim=1) <= eps + 1e-5).all()


def test_pgd_breaks_a_bare_classifier_at_large_eps() -> None:
    torch.manual_seed(0)
    clf = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    x = torch.rand(8, 1, 28, 28)
    y = clf(x).argmax(1)
    res = PGD.on_model(clf, Norm.LINF, eps=1.0, step_size=0.2, steps=10).run(x, y)
    assert (clf(res.x_adv).argmax(1) != y).all() and res.grad_finite and res.grad_nonzero
    assert (res.gradient_evaluations == 11).all()


def test_pgd_stops_attacking_fooled_images_and_gives_resisting_ones_the_full_budget() -> None:
    torch.manual_seed(0)
    clf = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    x = torch.rand(6, 1, 28, 28)
    pred = clf(x).argmax(1)
    y = pred.clone()
    y[:3] = (pred[:3] + 1) % 10  # already misclassified: fooled at every iterate
    full = PGD.on_model(clf, Norm.LINF, eps=1e-6, step_size=1e-7, steps=10, restarts=2, keep_iterates=True).run(x, y)
    early = PGD.on_model(clf, Norm.LINF, eps=1e-6, step_size=1e-7, steps=10, restarts=2, keep_iterates=True, stop_after=2).run(x, y)
    assert early.gradient_evaluations.tolist() == [2, 2, 2, 22, 22, 22]
    assert (full.gradient_evaluations == 22).all()
    assert early.fooled_any.tolist() == full.fooled_any.tolist() == [True] * 3 + [False] * 3
    assert torch.equal(early.x_adv[3:], full.x_adv[3:])  # resisting images: the same attack as without stopping
    assert early.iterates is not None and early.iterate_fooled is not None and early.iterate_fooled[:, :3].sum(0).tolist() == [2, 2, 2]


def test_with_seeds_per_image_an_images_attack_does_not_depend_on_its_batch() -> None:
    """Random starts and chain noise come from each image's seed, also when other images stop early."""
    purifier, clf = _parts(steps=2)
    x = torch.rand(4, 1, 28, 28)
    y = clf(x).argmax(1)
    y[0] = (y[0] + 1) % 10  # fooled at once: it leaves the batch after two iterates
    seeds = [11, 12, 13, 14]

    def attack(rows: list[int], mode: str) -> torch.Tensor:
        source = eot_gradient(EBMDefense(purifier, clf), eot=2, gradient=mode)
        pgd = PGD(source, Norm.LINF, eps=0.1, step_size=0.02, steps=3, restarts=2, stop_after=2, seed=[seeds[j] for j in rows])
        return pgd.run(x[rows], y[rows]).x_adv

    for mode in ("bpda", "exact"):
        together = attack([0, 1, 2, 3], mode)
        for j in range(4):
            assert torch.allclose(attack([j], mode)[0], together[j], atol=1e-5), (mode, j)
        assert torch.allclose(attack([3, 1], mode), together[[3, 1]], atol=1e-5)
    one_seed = PGD(eot_gradient(EBMDefense(purifier, clf), eot=2, gradient="bpda"), Norm.LINF, eps=0.1, step_size=0.02, steps=3, seed=5)
    assert not torch.allclose(one_seed.run(x[:2], y[:2]).x_adv[1], one_seed.run(x[1:2], y[1:2]).x_adv[0])  # one stream per batch


def test_a_surrogate_chain_attack_records_success_on_the_full_defense() -> None:
    from purifier.langevin import mix

    purifier, clf = _parts(steps=6)
    defense = EBMDefense(purifier, clf, surrogate_steps=1)
    x, y = torch.rand(2, 1, 28, 28), torch.tensor([3, 7])
    _, _, record = eot_gradient(defense, eot=2, gradient="exact")(x, y)
    full = clf(purifier.copies(x, steps=6, replicates=2, seed=mix(0, 1, 1)).flatten(0, 1)).view(2, 2, -1).mean(1)
    short = clf(purifier.copies(x, steps=1, replicates=2, seed=mix(0, 1)).flatten(0, 1)).view(2, 2, -1).mean(1)
    assert torch.allclose(record, full, atol=1e-6) and not torch.allclose(record, short, atol=1e-6)


def test_bpda_eot_gradient_is_mean_classifier_gradient_over_purified_copies() -> None:
    purifier, clf = _parts()
    defense = EBMDefense(purifier, clf)
    x, y = torch.rand(2, 1, 28, 28), torch.tensor([3, 7])
    loss, grad, _ = eot_gradient(defense, eot=3, gradient="bpda")(x, y)
    from purifier.langevin import mix

    copies = purifier.copies(x, replicates=3, seed=mix(0, 1)).detach().requires_grad_(True)
    logits = clf(copies.flatten(0, 1)).view(2, 3, -1).mean(1)
    value = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    (g,) = torch.autograd.grad(value.sum(), copies)
    assert torch.allclose(grad, g.sum(1), atol=1e-6) and torch.allclose(loss, value.detach())


def test_an_input_classifier_joins_every_copy_and_the_attack_differentiates_both_paths() -> None:
    """The hybrid defense: each copy's output is log p(purified copy) + w log p(input); BPDA's gradient is the
    straight-through one of the copies plus the input classifier's exact one."""
    from purifier.langevin import mix

    purifier, clf = _parts()
    torch.manual_seed(1)
    other = build("small-cnn", width=4, hidden=16).eval()
    defense = EBMDefense(purifier, clf, input_classifier=other, input_weight=0.5)
    x, y = torch.rand(2, 1, 28, 28), torch.tensor([3, 7])
    copies = purifier.copies(x, replicates=3, seed=mix(0, 1)).detach()
    want = clf(copies.flatten(0, 1)).view(2, 3, -1).log_softmax(-1) + 0.5 * other(x).log_softmax(-1)[:, None]
    assert torch.allclose(defense.logits(x, 3, mix(0, 1), "none"), want, atol=1e-6)
    assert not torch.allclose(EBMDefense(purifier, clf).logits(x, 3, mix(0, 1), "none").log_softmax(-1), want, atol=1e-3)
    loss, grad, _ = eot_gradient(defense, eot=3, gradient="bpda")(x, y)
    c, xi = copies.clone().requires_grad_(True), x.clone().requires_grad_(True)
    logits = (clf(c.flatten(0, 1)).view(2, 3, -1).log_softmax(-1) + 0.5 * other(xi).log_softmax(-1)[:, None]).mean(1)
    value = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    gc, gx = torch.autograd.grad(value.sum(), (c, xi))
    assert torch.allclose(grad, gc.sum(1) + gx, atol=1e-6) and torch.allclose(loss, value.detach())
    assert defense.describe()["input_weight"] == 0.5 and "input_weight" not in EBMDefense(purifier, clf).describe()


def test_adaptive_gradient_differs_from_bpda_and_is_finite() -> None:
    purifier, clf = _parts()
    defense = EBMDefense(purifier, clf, surrogate_steps=2)
    x, y = torch.rand(2, 1, 28, 28), torch.tensor([1, 2])
    _, g_exact, _ = eot_gradient(defense, eot=2, gradient="exact")(x, y)
    _, g_bpda, _ = eot_gradient(defense, eot=2, gradient="bpda")(x, y)
    assert torch.isfinite(g_exact).all() and g_exact.abs().sum() > 0
    assert not torch.allclose(g_exact, g_bpda)


def test_torchattacks_eotpgd_runs_unchanged_on_the_defended_module() -> None:
    purifier, clf = _parts(steps=2)
    module = defense_module(EBMDefense(purifier, clf), copies=2)
    x = torch.rand(3, 1, 28, 28)
    y = torch.tensor([0, 1, 2])
    adv = torchattacks.EOTPGD(module, eps=0.1, alpha=0.02, steps=3, eot_iter=2)(x, y)
    assert adv.shape == x.shape and (adv - x).abs().max() <= 0.1 + 1e-6 and not torch.equal(adv, x)
    assert defense_module(NoDefense(clf)) is clf


def test_wilson_interval_known_values() -> None:
    lo, hi = wilson_interval(50, 100)
    assert abs(lo - 0.4038) < 1e-3 and abs(hi - 0.5962) < 1e-3
    assert wilson_interval(0, 10)[0] == 0.0 and abs(wilson_interval(10, 10)[1] - 1.0) < 1e-12
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_baselines_transform_and_take_gradients() -> None:
    from attacks.baselines import BinarizeDefense, NoiseMedianDefense, median_filter

    _, clf = _parts()
    x = torch.rand(2, 1, 28, 28)
    b = BinarizeDefense(clf)
    assert set(b.transform(x, "none").unique().tolist()) <= {0.0, 1.0}
    y = torch.tensor([1, 2])
    for defense, mode in ((b, "bpda"), (NoiseMedianDefense(clf), "bpda"), (NoiseMedianDefense(clf), "exact")):
        _, grad, _ = eot_gradient(defense, eot=2, gradient=mode)(x, y)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    nm = NoiseMedianDefense(clf, sigma=0.0)
    assert torch.allclose(nm.transform(x, 1, 0, "none"), median_filter(x, 3))
    const = torch.full((1, 1, 5, 5), 0.3)
    assert torch.allclose(median_filter(const, 3), const)
    assert not torch.equal(NoiseMedianDefense(clf).logits(x, 2, 0, "none")[:, 0], NoiseMedianDefense(clf).logits(x, 2, 0, "none")[:, 1])
