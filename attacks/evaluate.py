"""Run a robustness evaluation: attack, verify with the full defense, append per-image results.

``evaluate(settings, out_dir)`` is the library call behind ``ebm-purify evaluate``. Results are
appended to ``out_dir/results.jsonl`` one batch at a time, so an interrupted run resumes where it
stopped; ``settings.shard = (i, n)`` takes every n-th image from the i-th, and
:func:`attacks.report.merge` joins shard folders. ``settings.survivors_of`` chains runs as
AutoAttack does: an image an earlier run of the same defense already broke is not attacked again
but recorded with that run's result (``broken_by``). The report (JSON, Markdown, plots) is rebuilt
from the results at the end (:mod:`attacks.report`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from attacks.baselines import BinarizeDefense, NoiseMedianDefense
from attacks.defenses import Defense, EBMDefense, NoDefense, defended_predictions
from attacks.eot import eot_gradient
from attacks.interop import defense_module, torchattacks_attack
from attacks.losses import Loss
from attacks.norms import Norm
from attacks.pgd import PGD, PGDResult, model_gradient
from attacks.report import write_report
from attacks.settings import EvalSettings, models_differ
from attacks.verify import verify
from purifier.backends import load_classifier_ref
from purifier.checkpoint import recorded_path, resolve
from purifier.data import load_dataset
from purifier.errors import SettingsError
from purifier.grids import save_grid
from purifier.langevin import mix
from purifier.purifier import Purifier

RESULTS = "results.jsonl"


@dataclass
class _Context:
    settings: EvalSettings
    classifier: nn.Module
    transfer_source: nn.Module                 # the classifier transfer PGD differentiates
    defenses: dict[tuple[int, int], Defense]   # verification (K, R) -> defense
    attack_defense: Defense
    x: torch.Tensor
    y: torch.Tensor
    models: dict[str, Any]


def evaluate(settings: EvalSettings, out_dir: str | Path, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the evaluation and return the report dictionary."""
    out = Path(out_dir)
    ctx = _context(settings)
    earlier = _natural_from(settings, ctx.models)  # the earlier runs are checked before anything is written
    broken = _broken_earlier(settings, ctx)
    out.mkdir(parents=True, exist_ok=True)
    _check_or_write_settings(settings, out, ctx.models)
    rows = read_results(out)
    if (out / RESULTS).is_file():  # drop a line torn by an interruption before appending
        (out / RESULTS).write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = {(r["eps"], r["index"]) for r in rows}
    # clean-image results do not depend on eps or the attack: computed once per image, or taken from --natural-from
    natural = earlier | {r["index"]: r["natural"] for r in rows}
    eps_values = [0.0] if settings.attack == "none" else settings.eps
    indices = [i for i in range(settings.offset, settings.offset + settings.n) if i % settings.shard[1] == settings.shard[0]]
    todo = [(e, i) for e in eps_values for i in indices if (e, i) not in done]
    bar = tqdm(total=len(todo), disable=not progress, desc=f"evaluate {settings.attack}")
    with open(out / RESULTS, "a") as log:
        for eps in eps_values:
            for e, i in todo:
                if e == eps and (eps, i) in broken:
                    log.write(json.dumps(broken[(eps, i)]) + "\n")
                    bar.update(1)
            pending = [i for e, i in todo if e == eps and (eps, i) not in broken]
            for b in range(0, len(pending), settings.batch_size):
                batch = pending[b : b + settings.batch_size]
                for rec in _evaluate_batch(ctx, eps, batch, out, natural, first=(b == 0 and eps == eps_values[0])):
                    log.write(json.dumps(rec) + "\n")
                log.flush()
                bar.update(len(batch))
    bar.close()
    _large_eps_sanity(ctx, out)
    return write_report(out)


def read_results(out: Path) -> list[dict[str, Any]]:
    path = out / RESULTS
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by an interruption is recomputed
    return rows


def _natural_from(settings: EvalSettings, models: dict[str, Any]) -> dict[int, dict[str, int]]:
    if settings.natural_from is None:
        return {}
    folder = Path(settings.natural_from)
    _same_defense(folder, "--natural-from", settings, models)
    return {r["index"]: r["natural"] for r in read_results(folder)}


def _broken_earlier(settings: EvalSettings, ctx: _Context) -> dict[tuple[float, int], dict[str, Any]]:
    """(eps, index) -> the record to write for an image a ``survivors_of`` run broke at the main
    verified setting: that run's result (the first folder listed that broke it), no gradients spent."""
    key = next(iter(ctx.defenses))
    main = f"{key[0]}x{key[1]}"
    broken: dict[tuple[float, int], dict[str, Any]] = {}
    for name in settings.survivors_of or []:
        folder = Path(name)
        theirs = _same_defense(folder, "--survivors-of", settings, ctx.models)
        if theirs.norm != settings.norm:
            raise SettingsError(f"--survivors-of {folder} attacked in {theirs.norm}, this run in {settings.norm}")
        if theirs.attack == "none":
            raise SettingsError(f"--survivors-of {folder} ran no attack")
        for r in read_results(folder):
            if not r["worst_correct"][main] and (r["eps"], r["index"]) not in broken:
                broken[(r["eps"], r["index"])] = {**r, "grad_evals": 0, "seconds": 0.0, "broken_by": r.get("broken_by", str(folder))}
    return broken


def _same_defense(folder: Path, flag: str, settings: EvalSettings, models: dict[str, Any]) -> EvalSettings:
    """The settings of the evaluation in ``folder``, which must have run this defense on these models."""
    if not (folder / "settings.json").is_file():
        raise SettingsError(f"{flag} {folder}: no evaluation there (settings.json missing)")
    saved = json.loads((folder / "settings.json").read_text())
    their_settings = EvalSettings.from_dict(saved["settings"])
    theirs, ours = their_settings.defense_key(), settings.defense_key()
    if theirs != ours:
        diff = ", ".join(f"{k} {theirs[k]!r} vs {ours[k]!r}" for k in ours if theirs[k] != ours[k])
        raise SettingsError(f"{flag} {folder} evaluated another defense ({diff})")
    if other := models_differ(saved.get("models"), models):
        raise SettingsError(f"{flag} {folder} evaluated other models ({other})")
    return their_settings


def _check_or_write_settings(settings: EvalSettings, out: Path, models: dict[str, Any]) -> None:
    """Refuse to resume ``out`` with other settings, other weights or another default chain (the
    fingerprint hashes the settings, which name models by reference; the weights behind a reference
    can be retrained and its Langevin defaults re-shipped)."""
    path = out / "settings.json"
    if path.is_file():
        old = json.loads(path.read_text())
        theirs = old["settings"].get("seeding", "batch")  # folders written before the knob were seeded per batch
        if theirs != settings.seeding and settings.attack != "none":
            raise SettingsError(f"{out} holds results of attacks seeded per {theirs}, this run per {settings.seeding}; "
                                f"use another --out, or --seeding {theirs} to resume")
        if old.get("fingerprint") != settings.fingerprint() or old["settings"].get("shard") != list(settings.shard):
            raise SettingsError(f"{out} holds results of different settings; use another --out or the same flags to resume")
        if other := models_differ(old.get("models"), models):
            raise SettingsError(f"{out} holds results of other models ({other}); use another --out")
    path.write_text(json.dumps({"fingerprint": settings.fingerprint(), "settings": settings.to_dict(), "models": models}, indent=2))


def _context(s: EvalSettings) -> _Context:
    purifier = Purifier.load(s.model, device=s.device)
    dataset = purifier.metadata.get("dataset", "mnist")
    shape = purifier.image_shape or (1, 28, 28)
    classifier, _, clf_sha = load_classifier_ref(s.classifier or s.model, shape, device=s.device)
    source = classifier
    if not getattr(classifier, "differentiable", True):
        if s.attack != "transfer" and s.attack != "none":
            raise SettingsError(f"the ONNX classifier has no gradients; {s.attack} needs them (use --attack transfer or none)")
        source = load_classifier_ref(s.transfer_from or s.model, shape, device=s.device)[0]
    elif s.transfer_from:
        source = load_classifier_ref(s.transfer_from, shape, device=s.device)[0]
    x, y = load_dataset(dataset, "test", s.data_dir)
    if s.offset + s.n > len(x):
        raise SettingsError(f"offset {s.offset} + n {s.n} exceeds the {len(x)} test images of {dataset}")
    models = {"classifier": s.classifier or f"{s.model}:classifier", "classifier_sha256": clf_sha, "dataset": dataset,
              "ebm": recorded_path(resolve(s.model, "ebm")), "ebm_sha256": purifier.metadata["weights"]["sha256"]}
    if s.defense == "ebm":  # the chain the reference resolved to: a re-shipped default must not resume old results
        models["langevin"] = purifier.defaults.to_dict()
    input_clf = None
    if s.input_classifier:
        input_clf, _, models["input_classifier_sha256"] = load_classifier_ref(s.input_classifier, shape, device=s.device)
        if not getattr(input_clf, "differentiable", True):
            raise SettingsError("--input-classifier must be a torch classifier (the attacks differentiate it)")
        models["input_classifier"] = s.input_classifier

    def build(k: int | None) -> Defense:
        if s.defense == "none":
            return NoDefense(classifier)
        if s.defense == "ebm":
            return EBMDefense(purifier, classifier, steps=k, surrogate_steps=s.surrogate_steps, input_classifier=input_clf,
                              input_weight=s.input_weight)
        if s.defense == "binarize":
            return BinarizeDefense(classifier)
        if s.defense == "noise-median":
            return NoiseMedianDefense(classifier)
        raise SettingsError(f"unknown defense {s.defense!r} (ebm, none, binarize, noise-median)")

    grid = s.verify_grid(purifier.defaults.steps if s.defense == "ebm" else 0)
    defenses = {(k, r): build(k) for k, r in grid}
    return _Context(s, classifier, source, defenses, defenses[grid[0]], x, y, models)


def _evaluate_batch(
    ctx: _Context, eps: float, indices: list[int], out: Path, known: dict[int, dict[str, int]], first: bool
) -> list[dict[str, Any]]:
    s = ctx.settings
    t0 = time.perf_counter()
    idx = torch.tensor(indices)
    x, y = ctx.x[idx].to(s.device), ctx.y[idx].to(s.device)
    seeds = [mix(s.seed, i) for i in indices]
    with torch.no_grad():
        bare_clean = ctx.classifier(x).argmax(1).cpu()
    missing = [j for j, i in enumerate(indices) if i not in known]
    if missing:  # clean-image results are added to ``known``, once per image for the whole run
        fresh = _natural(ctx, x[missing], [seeds[j] for j in missing])
        for row, j in enumerate(missing):
            known[indices[j]] = {key: v[row] for key, v in fresh.items()}
    records = [{"eps": eps, "index": i, "label": int(y[j]), "bare_clean": int(bare_clean[j]), "natural": known[i]}
               for j, i in enumerate(indices)]
    if s.attack != "none":
        radius = int(eps * 1e6)
        seed = [mix(s.seed, radius, i) for i in indices] if s.seeding == "image" else mix(s.seed, radius, indices[0])
        result = _attack(ctx, x, y, eps, seed)
        with torch.no_grad():
            bare_adv = ctx.classifier(result.x_adv).argmax(1).cpu()
        # gradients through purified copies cost one per copy; transfer (bare classifier) and torchattacks count their own
        copies = s.eot if s.attack in ("bpda-eot", "adaptive") and ctx.attack_defense.stochastic else 1
        verified = {f"{k}x{r}": verify(d, y, result, r, [mix(sd, 7) for sd in seeds], s.verify_candidates)
                    for (k, r), d in ctx.defenses.items()}
        for j, rec in enumerate(records):
            rec.update(
                bare_adv=int(bare_adv[j]), attack_fooled_any=bool(result.fooled_any[j]),
                final_correct={key: bool(v[0][j]) for key, v in verified.items()},
                worst_correct={key: bool(v[1][j]) for key, v in verified.items()},
                linf=float((result.x_adv[j] - x[j]).abs().max()), l2=float((result.x_adv[j] - x[j]).norm()),
                grad_evals=int(result.gradient_evaluations[j]) * copies,
                grad_finite=result.grad_finite, grad_nonzero=result.grad_nonzero,
            )
        if first:
            purified = _purified_view(ctx, result.x_adv[:8])
            save_grid([x[:8].cpu(), result.x_adv[:8].cpu(), purified], out / "examples.png", scale=3)
    seconds = (time.perf_counter() - t0) / len(indices)
    for rec in records:
        rec["seconds"] = round(seconds, 3)
    return records


def _natural(ctx: _Context, x: torch.Tensor, seeds: list[int]) -> dict[str, list[int]]:
    """Defended predictions on clean images at every verified (K, R); one chain per R for EBMs."""
    d0 = ctx.attack_defense
    if not (isinstance(d0, EBMDefense) and len(ctx.defenses) > 1):
        return {f"{k}x{r}": defended_predictions(d, x, r, seeds).tolist() for (k, r), d in ctx.defenses.items()}
    out: dict[str, list[int]] = {}
    for r in sorted({r for _, r in ctx.defenses}):
        ks = [k for k, rr in ctx.defenses if rr == r]
        traj = d0.purifier.trajectory(x, ks, replicates=r, seed=seeds)
        with torch.no_grad():
            for k, copies in traj.items():
                out[f"{k}x{r}"] = d0.classify(copies, x).mean(1).argmax(1).tolist()
    return out


def _purified_view(ctx: _Context, x_adv: torch.Tensor) -> torch.Tensor:
    d = ctx.attack_defense
    if isinstance(d, EBMDefense):
        return d.purifier(x_adv, steps=d.config.steps, seed=ctx.settings.seed).cpu()
    return x_adv.cpu()


def _attack(ctx: _Context, x: torch.Tensor, y: torch.Tensor, eps: float, seed: int | list[int]) -> PGDResult:
    """PGD of the settings' kind; ``seed`` per image, or one for the batch (``seeding = batch``, and torchattacks,
    whose attacks draw from one stream: they take the first image's)."""
    s = ctx.settings
    norm, loss = Norm(s.norm), Loss(s.loss)
    budget = {"eps": eps, "step_size": s.step_for(eps), "steps": s.attack_steps, "restarts": s.restarts, "seed": seed,
              "stop_after": s.stop_after}
    if s.attack == "transfer":
        return PGD(model_gradient(ctx.transfer_source, loss), norm, keep_iterates=True, **budget).run(x, y)
    if s.attack in ("bpda-eot", "adaptive"):
        mode = "bpda" if s.attack == "bpda-eot" else "exact"
        batch_seed = seed if isinstance(seed, int) else 0  # the source's own stream is used only when PGD has one seed
        return PGD(eot_gradient(ctx.attack_defense, s.eot, mode, loss, batch_seed), norm, keep_iterates=True, **budget).run(x, y)
    name = s.attack.split(":", 1)[1]
    one = seed if isinstance(seed, int) else seed[0]
    module = defense_module(ctx.attack_defense, copies=1, seed=one)
    atk = torchattacks_attack(name, module, s.norm, eps, s.step_for(eps), s.attack_steps, s.eot, one)
    x_adv = atk(x, y)
    evals = s.attack_steps * (s.eot if name in ("EOTPGD", "APGD") else 1)
    return PGDResult(x_adv.detach(), torch.zeros(len(x), dtype=torch.bool), None, None, torch.full((len(x),), evals), True, True)


def _large_eps_sanity(ctx: _Context, out: Path) -> None:
    """PGD at eps = 1 (Linf) on the bare classifier must drive accuracy to about 0%."""
    s = ctx.settings
    n = min(32, s.n)
    x, y = ctx.x[s.offset : s.offset + n].to(s.device), ctx.y[s.offset : s.offset + n].to(s.device)
    adv = PGD.on_model(ctx.transfer_source, Norm.LINF, eps=1.0, step_size=0.1, steps=20, seed=s.seed).run(x, y).x_adv
    with torch.no_grad():
        acc = float((ctx.transfer_source(adv).argmax(1) == y).float().mean())
    meta = {"large_eps_bare_accuracy": acc, "large_eps_images": n, "models": {**ctx.models, "defense": ctx.attack_defense.describe()}}
    (out / "run_meta.json").write_text(json.dumps(meta, indent=2))
