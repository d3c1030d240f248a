"""Settings of one robustness evaluation: every attack and defense knob, recorded in the report.

The one configuration object of the ``attacks`` package; the CLI maps its flags onto it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from attacks.pgd import default_step_size
from purifier.config import DEFAULT_MODEL
from purifier.errors import SettingsError


class AttackName(StrEnum):
    NONE = "none"            # natural accuracy only
    TRANSFER = "transfer"    # PGD on the bare classifier, then defend
    BPDA_EOT = "bpda-eot"    # PGD through the defense, straight-through purifier, EOT copies
    ADAPTIVE = "adaptive"    # PGD with exact gradients through the Langevin chain, EOT copies


@dataclass
class EvalSettings:
    """One evaluation. Defaults follow Hill et al.'s protocol scaled to a CPU (see the README)."""

    model: str = DEFAULT_MODEL
    classifier: str | None = None          # REF[:ROLE] or a user's .onnx; default: the model's own classifier
    transfer_from: str | None = None       # torch classifier REF[:ROLE] that transfer PGD attacks (default: the evaluated one)
    defense: str = "ebm"                   # ebm | none | a baseline of attacks.baselines
    input_classifier: str | None = None    # torch classifier REF[:ROLE] on the unpurified input, summed with the purified copies (ebm)
    input_weight: float = 1.0              # weight of its log-probabilities
    attack: str = "bpda-eot"               # none | transfer | bpda-eot | adaptive | torchattacks:NAME
    norm: str = "linf"
    eps: list[float] = field(default_factory=lambda: [0.3])
    n: int = 100
    offset: int = 0                        # first test index (tune and report on different slices)
    steps: int | None = None               # Langevin steps of the defense (default: the model's)
    steps_list: list[int] | None = None    # verify at each of these K too (none / transfer only)
    replicates: int = 8                    # R, copies of the full defense used to verify
    replicates_list: list[int] | None = None
    eot: int = 8                           # copies averaged per attack gradient
    attack_steps: int = 50
    step_size: float | None = None         # default 2.5 * eps / attack_steps
    restarts: int = 1
    loss: str = "ce"                       # ce | margin
    surrogate_steps: int | None = None     # chain length for exact gradients (adaptive)
    verify_candidates: int = 3             # fooling iterates re-checked by the full defense
    stop_after: int | None = None          # stop attacking an image after this many consecutive fooled iterates
    natural_from: str | None = None        # reuse clean-image results of an earlier run with the same defense
    survivors_of: list[str] | None = None  # attack only what these earlier runs (same defense) left correct
    batch_size: int = 50
    seed: int = 0
    seeding: str = "image"                 # image: an image's attack is the same in any batch; batch: before that (old folders)
    shard: tuple[int, int] = (0, 1)
    data_dir: str | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not (self.attack in {a.value for a in AttackName} or self.attack.startswith("torchattacks:")):
            raise SettingsError(f"unknown attack {self.attack!r} (none, transfer, bpda-eot, adaptive, torchattacks:NAME)")
        if self.norm not in ("linf", "l2"):
            raise SettingsError(f"norm must be linf or l2, got {self.norm!r}")
        if self.loss not in ("ce", "margin"):
            raise SettingsError(f"loss must be ce or margin, got {self.loss!r}")
        if any(e < 0 for e in self.eps) or not self.eps:
            raise SettingsError("eps must be a non-empty list of values >= 0")
        for name in ("n", "replicates", "eot", "batch_size", "restarts"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be >= 1")
        if self.seeding not in ("image", "batch"):
            raise SettingsError(f"seeding must be image or batch, got {self.seeding!r}")
        if self.stop_after is not None and self.stop_after < 1:
            raise SettingsError("stop_after must be >= 1")
        if self.attack_steps < 0 or self.offset < 0:
            raise SettingsError("attack_steps and offset must be >= 0")
        i, k = self.shard
        if not (k >= 1 and 0 <= i < k):
            raise SettingsError(f"shard must be i/n with 0 <= i < n, got {i}/{k}")
        if (self.steps_list or self.replicates_list) and self.attack not in ("none", "transfer"):
            raise SettingsError("--steps-list/--replicates-list need an attack that does not depend on the defense (none, transfer)")
        if self.input_classifier and self.defense != "ebm":
            raise SettingsError(f"--input-classifier joins the EBM defense's purified copies; defense {self.defense!r} has none")
        if not self.input_weight > 0:
            raise SettingsError(f"input_weight must be > 0, got {self.input_weight}")
        if self.transfer_from and self.attack != "transfer":
            raise SettingsError(f"--transfer-from names the classifier a transfer attack runs on; {self.attack!r} does not use it")

    def step_for(self, eps: float) -> float:
        return self.step_size if self.step_size is not None else default_step_size(eps, self.attack_steps)

    def verify_grid(self, default_steps: int) -> list[tuple[int, int]]:
        """(K, R) pairs the full defense is verified at; the first is the main one."""
        ks = self.steps_list or [self.steps if self.steps is not None else default_steps]
        rs = self.replicates_list or [self.replicates]
        return [(k, r) for k in ks for r in rs]

    def defense_key(self) -> dict[str, Any]:
        """What decides the defended prediction on a clean image (besides its index)."""
        return {k: getattr(self, k) for k in ("model", "classifier", "defense", "input_classifier", "input_weight", "steps", "steps_list",
                                              "replicates", "replicates_list", "seed")}

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["shard"] = list(self.shard)
        return d

    def fingerprint(self) -> str:
        """Hash of everything that changes results (not the shard, device or data folder)."""
        d = {k: v for k, v in self.to_dict().items() if k not in ("shard", "device", "data_dir", "batch_size", "natural_from")}
        for late in ("stop_after", "survivors_of", "input_classifier"):  # knobs added later: runs without them keep their fingerprint (and resume)
            if not d[late]:
                del d[late]
        if "input_classifier" not in d:
            del d["input_weight"]
        if d["seeding"] == "batch" or d["attack"] == "none":  # what every folder written before the knob did; no attack, no seeds
            del d["seeding"]
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalSettings:
        d = dict(d)
        d["shard"] = tuple(d.get("shard", (0, 1)))
        d.setdefault("seeding", "batch")  # folders written before per-image attack seeds
        return cls(**d)


WEIGHT_KEYS = ("ebm_sha256", "classifier_sha256", "input_classifier_sha256")


def models_differ(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    """'' if the two model records (``models`` of settings.json) name the same weights and the same
    Langevin defaults, else what differs. A record or key that is missing (folders written before it
    was recorded; baselines record no chain) counts as the same.

    Settings name models by reference, and a reference can change behind its name: weights retrained
    in place, or a model's default chain re-shipped (``langevin``: the defaults the reference resolved
    to, a variant's overrides applied)."""
    if not a or not b:
        return ""
    diffs = [f"{k} {a[k][:12]} vs {b[k][:12]}" for k in WEIGHT_KEYS if a.get(k) and b.get(k) and a[k] != b[k]]
    la, lb = a.get("langevin"), b.get("langevin")
    if la and lb and la != lb:
        diffs.append("langevin defaults " + ", ".join(f"{k} {la.get(k)!r} vs {lb.get(k)!r}" for k in sorted(la.keys() | lb.keys()) if la.get(k) != lb.get(k)))
    return ", ".join(diffs)
