"""The Langevin update: hand computation, stationary law on a quadratic energy, seeding."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from purifier import langevin
from purifier.errors import SettingsError
from purifier.langevin import LangevinConfig, LangevinSampler, chain_streams, mix
from purifier.models import build


class Quadratic(nn.Module):
    """E(x) = |x - mu|^2 / 2 per image; p ~ exp(-E / T) is N(mu, T I)."""

    def __init__(self, mu: float) -> None:
        super().__init__()
        self.mu = nn.Parameter(torch.tensor(mu))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (x - self.mu).pow(2).flatten(1).sum(1)


def test_one_step_matches_hand_computation() -> None:
    cfg = LangevinConfig(steps=1, step_size=0.1, temperature=0.5)
    sampler = LangevinSampler(Quadratic(0.3), cfg)
    x = torch.tensor([[[[1.0, -2.0]]]])
    streams = chain_streams([7], 1)
    z = sampler.noise(streams, 0, x.shape[1:], x.device)
    out = sampler.run(x, streams).x
    # x - eps^2/(2T) * (x - mu) + eps * z, with eps^2/(2T) = 0.01
    expected = x - 0.01 * (x - 0.3) + 0.1 * z
    assert torch.allclose(out, expected, atol=1e-7)


def test_long_chain_reaches_the_known_stationary_law() -> None:
    # x' - mu = (1 - a)(x - mu) + eps z  =>  stationary N(mu, eps^2 / (a (2 - a))), a = eps^2 / (2T)
    eps, temp, mu = 0.2, 0.5, 0.7
    a = eps**2 / (2 * temp)
    cfg = LangevinConfig(steps=600, step_size=eps, temperature=temp)
    sampler = LangevinSampler(Quadratic(mu), cfg, micro_batch=None)
    x = torch.full((400, 1, 4, 4), -3.0)
    out = sampler.run(x, chain_streams(range(400), 1)).x
    want_var = eps**2 / (a * (2 - a))
    assert abs(out.mean().item() - mu) < 0.03
    assert abs(out.var().item() / want_var - 1) < 0.05


def test_step_size_schedule_anneals_geometrically_and_defaults_to_constant() -> None:
    cfg = LangevinConfig(steps=3, step_size=0.2, temperature=0.5, step_size_final=0.05)
    assert [round(cfg.step_size_at(t), 6) for t in range(4)] == [0.2, 0.1, 0.05, 0.05]  # held after the last step
    assert cfg.drift_at(1) == 0.1**2 / (2 * 0.5) and LangevinConfig(steps=3, step_size=0.2).step_size_at(2) == 0.2
    sampler = LangevinSampler(Quadratic(0.3), cfg)
    x, streams = torch.tensor([[[[1.0, -2.0]]]]), chain_streams([7], 1)
    expected = x
    for t in range(3):
        eps = cfg.step_size_at(t)
        expected = expected - eps**2 / (2 * 0.5) * (expected - 0.3) + eps * sampler.noise(streams, t, x.shape[1:], x.device)
    assert torch.allclose(sampler.run(x, streams).x, expected, atol=1e-6)
    constant = LangevinConfig(steps=3, step_size=0.2, temperature=0.5)
    flat = LangevinSampler(Quadratic(0.3), constant.updated(step_size_final=0.2)).run(x, streams).x
    assert torch.equal(flat, LangevinSampler(Quadratic(0.3), constant).run(x, streams).x)


def test_a_schedule_that_ends_where_it_starts_is_a_constant_chain() -> None:
    scheduled = LangevinConfig(step_size=0.025, step_size_final=0.00625, temperature_final=5e-5)
    constant = scheduled.updated(step_size=0.0125, step_size_final=0.0125, temperature_final=1e-4)
    assert constant.step_size_final is None and constant.temperature_final is None and constant == LangevinConfig(step_size=0.0125)
    assert constant.chain_label() == "eps 0.0125, T 0.0001" and scheduled.chain_label() == "eps 0.025 -> 0.00625, T 0.0001 -> 5e-05"


def test_temperature_schedule_scales_the_drift_only() -> None:
    cfg = LangevinConfig(steps=3, step_size=0.2, temperature=0.5, temperature_final=0.125)
    assert [cfg.temperature_at(t) for t in range(4)] == [0.5, 0.25, 0.125, 0.125]
    assert cfg.drift_at(1) == 0.2**2 / (2 * 0.25) and cfg.step_size_at(2) == 0.2
    sampler = LangevinSampler(Quadratic(0.3), cfg)
    x, streams = torch.tensor([[[[1.0, -2.0]]]]), chain_streams([7], 1)
    expected = x
    for t in range(3):
        expected = expected - 0.2**2 / (2 * cfg.temperature_at(t)) * (expected - 0.3) + 0.2 * sampler.noise(streams, t, x.shape[1:], x.device)
    assert torch.allclose(sampler.run(x, streams).x, expected, atol=1e-6)
    assert LangevinConfig.from_dict(cfg.to_dict()) == cfg


def test_clamp_bounds_every_state() -> None:
    cfg = LangevinConfig(steps=5, step_size=1.0, temperature=1.0, clamp=(-1.0, 1.0))
    out = LangevinSampler(Quadratic(0.0), cfg).run(torch.zeros(3, 1, 2, 2), chain_streams([1, 2, 3], 1)).x
    assert out.min() >= -1 and out.max() <= 1


def test_the_box_bounds_every_state_around_its_start_even_for_stopped_and_continued_chains() -> None:
    starts = torch.tensor([-0.9, 0.0, 0.9]).view(3, 1, 1, 1).expand(3, 1, 2, 2).clone()
    cfg = LangevinConfig(steps=6, step_size=1.0, temperature=1.0, box=0.25, clamp=(-1.0, 1.0))
    seen: list[torch.Tensor] = []
    sampler = LangevinSampler(Quadratic(0.0), cfg)
    sampler.update = lambda x, g, z, step, bounds, f=sampler.update: seen.append(f(x, g, z, step, bounds)) or seen[-1]  # type: ignore[method-assign]
    stop_first_after_two = lambda done, active: (active != 0) | (done < 2)  # noqa: E731
    out = sampler.run(starts, chain_streams([1, 2, 3], 1), hook=stop_first_after_two).x
    lo, hi = (starts - 0.25).clamp(min=-1.0), (starts + 0.25).clamp(max=1.0)
    assert (out >= lo).all() and (out <= hi).all() and len(seen) == 6 and seen[-1].shape[0] == 2  # the stopped chain left the batch
    assert (out - starts).abs().amax() == 0.25  # the box binds
    again = LangevinSampler(Quadratic(0.0), cfg.updated(steps=3)).run(out, chain_streams([1, 2, 3], 1), start_step=6, origin=starts).x
    assert (again >= lo).all() and (again <= hi).all() and (again - starts).abs().amax() == 0.25


def test_parameters_never_receive_gradients() -> None:
    ebm = build("conv-ebm", width=4)
    LangevinSampler(ebm, LangevinConfig(steps=3)).run(torch.rand(2, 1, 28, 28), chain_streams([0, 1], 1))
    assert all(p.grad is None for p in ebm.parameters())
    assert all(p.requires_grad for p in ebm.parameters())  # restored after the run


def test_batch_invariance_bit_identical() -> None:
    torch.manual_seed(0)
    ebm = build("conv-ebm", width=4)
    sampler = LangevinSampler(ebm, LangevinConfig(steps=4))
    x = torch.rand(11, 1, 28, 28) * 2 - 1
    seeds = [5, 9, 5, 1, 2, 3, 4, 8, 7, 6, 0]
    together = sampler.run(x, chain_streams(seeds, 1)).x
    for i in (0, 3, 10):
        alone = sampler.run(x[i : i + 1], chain_streams([seeds[i]], 1)).x
        assert torch.equal(alone[0], together[i])
    perm = torch.randperm(11)
    shuffled = sampler.run(x[perm], chain_streams([seeds[i] for i in perm.tolist()], 1)).x
    assert torch.equal(shuffled, together[perm])


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_large_groups_give_each_row_the_bits_of_groups_of_eight(precision: str) -> None:
    torch.manual_seed(0)
    ebm = build("conv-ebm", width=16)  # the shipped models' width
    config = LangevinConfig(steps=3, precision=precision)
    x = torch.rand(300, 1, 28, 28) * 2 - 1
    streams = chain_streams(list(range(300)), 1)
    strict = LangevinSampler(ebm, config, micro_batch=8, group_rows=8).run(x, streams).x
    assert torch.equal(LangevinSampler(ebm, config).run(x, streams).x, strict)  # groups of 256 + 48 rows
    assert torch.equal(LangevinSampler(ebm, config).run(x[7:8], streams[7:8]).x[0], strict[7])


@pytest.mark.parametrize("native", [True, False])
def test_bfloat16_warns_only_on_a_cpu_that_emulates_it(native: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Emulated bfloat16 ran 13x slower than float32 on an AVX2 EPYC: a bfloat16 sampler says so there; float32 never warns."""
    monkeypatch.setattr(langevin, "cpu_has_native_bfloat16", lambda: native)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LangevinSampler(Quadratic(0.0), LangevinConfig(precision="bfloat16"))
        LangevinSampler(Quadratic(0.0), LangevinConfig(precision="float32"))
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    if native:
        assert messages == []
    else:
        assert len(messages) == 1 and "slower than with precision float32" in messages[0]


def test_seeds_change_the_noise_and_replicates_differ() -> None:
    streams = chain_streams([1, 1, 2], 2)
    assert streams[0] == streams[2] and streams[0] != streams[1] and streams[0] != streams[4]
    assert mix(1, 2) != mix(2, 1)


def test_hook_stops_chains() -> None:
    ebm = build("conv-ebm", width=4)
    sampler = LangevinSampler(ebm, LangevinConfig(steps=6))
    x = torch.rand(3, 1, 28, 28)
    seen = []

    def hook(step: int, active: torch.Tensor) -> torch.Tensor:
        seen.append((step, active.tolist()))
        return active != 1 if step == 2 else torch.ones(len(active), dtype=torch.bool)

    res = sampler.run(x, chain_streams([0, 1, 2], 1), hook=hook)
    assert res.completed.tolist() == [True, False, True]
    assert seen[2] == (3, [0, 2])
    stopped = LangevinSampler(ebm, LangevinConfig(steps=2)).run(x[1:2], chain_streams([1], 1)).x
    assert torch.equal(res.x[1], stopped[0])


@pytest.mark.parametrize("bad", [{"steps": -1}, {"step_size": 0}, {"temperature": -1}, {"replicates": 0}, {"clamp": (1.0, -1.0)}, {"step_size_final": 0},
                                 {"temperature_final": -1.0}, {"box": 0.0}, {"clamp": (0.0, 1.0, 2.0)}])
def test_bad_settings_are_refused(bad: dict) -> None:
    with pytest.raises(SettingsError):
        LangevinConfig(**bad)


def test_inference_mode_is_refused_with_a_clear_message() -> None:
    sampler = LangevinSampler(build("conv-ebm", width=4), LangevinConfig(steps=1))
    with torch.inference_mode(), pytest.raises(SettingsError, match="no_grad"):
        sampler.run(torch.rand(1, 1, 28, 28), [0])
