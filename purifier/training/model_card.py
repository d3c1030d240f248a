"""Model cards: a Markdown page beside shipped weights, assembled from what the runs recorded
(checkpoint metadata, training logs, the midrun-curve report), never typed by hand."""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import fields
from pathlib import Path
from typing import Any

from purifier.checkpoint import read_metadata
from purifier.config import WEIGHTS_DIR
from purifier.errors import PurifierError, SettingsError
from purifier.langevin import LangevinConfig


def _tail_stats(log: Path, last: int = 100) -> dict[str, float]:
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []
    rows = rows[-max(1, last // 10) :]
    keys = [k for k in ("loss", "e_pos", "e_neg", "gap", "grad_norm", "train_acc") if rows and k in rows[0]]
    return {k: round(sum(r[k] for r in rows) / len(rows), 4) for k in keys}


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h {s % 3600 // 60:02d}m {s % 60:02d}s"


def _checkpoint_section(title: str, meta_path: Path, log: Path) -> list[str]:
    meta = read_metadata(meta_path)
    t = meta.get("training", {})
    lines = [f"### {title}", "", f"- file: `{meta_path.with_suffix('.safetensors').name}` (sha256 `{meta['weights']['sha256']}`)",
             f"- architecture: `{meta['architecture']['name']}` {json.dumps(meta['architecture'].get('args', {}))}",
             f"- command: `{t.get('command', '?')}` at commit `{(t.get('git_commit') or '?')[:12]}`{' (uncommitted changes)' if t.get('git_dirty') else ''}",
             f"- wall time on this machine ({t.get('machine', '?')}): {_hms(float(t.get('wall_time_s', 0)))}"]
    if "clean_test_accuracy" in t:
        lines.append(f"- clean accuracy on the full test set ({t.get('test_images')} images): **{100 * t['clean_test_accuracy']:.2f}%**")
    if t.get("adversarial"):
        lines.append(f"- adversarial training: PGD {json.dumps(t['adversarial'])}")
    if "iterations" in t:
        lines.append(f"- iterations: {t['iterations']}")
    stats = _tail_stats(log)
    if stats:
        lines.append("- final training statistics (mean of the last logged records): " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    return [*lines, ""]


def _classifier_training(meta: dict[str, Any]) -> str:
    """How a classifier was trained, as its card's section title says it."""
    adversarial = meta.get("training", {}).get("adversarial")
    if not adversarial:
        return "natural training"
    return f"adversarially trained through the purifier `{adversarial['through']}`" if adversarial.get("through") else "PGD adversarial training"


def _curve_section(curves: list[dict[str, Any]], langevin: dict[str, Any], reason: str) -> list[str]:
    """One table from curve reports over the same test images (from the same first index) and
    seeds, merged by K and chain (step size and temperature, with their schedules); each row says on
    how many images it was measured and the clean accuracy of the classifier on those same images."""
    curve = curves[0]
    lines = ["## Midrun evidence: accuracy after purification", "",
             f"Naturally trained classifier on clean test images (indices from {curve['settings']['offset']}), purified with K Langevin "
             f"steps, one copy (R = 1), seed {curve['settings']['seed']}. *Drop* is against the same images unpurified.", "",
             "| K | chain | images | accuracy % | 95% interval | clean on those images % | drop (points) |", "|---|---|---|---|---|---|---|"]
    rows: dict[tuple[int, str], tuple[dict[str, Any], dict[str, Any]]] = {}
    for c in sorted(curves, key=lambda c: -c["by_eps"][0]["n"]):  # prefer the largest measurement of each K and chain
        entry, chain = c["by_eps"][0], LangevinConfig.from_dict(c["models"]["defense"]).chain_label()
        for key, v in entry["defended_natural"].items():
            rows.setdefault((int(key.split("x")[0]), chain), (v, entry["bare_natural"]))
    for (k, chain), (v, clean) in sorted(rows.items()):
        lines.append(f"| {k} | {chain} | {v['n']} | {100 * v['accuracy']:.1f} | [{100 * v['ci95'][0]:.1f}, {100 * v['ci95'][1]:.1f}] | "
                     f"{100 * clean['accuracy']:.1f} | {100 * (clean['accuracy'] - v['accuracy']):+.1f} |")
    return [*lines, "", f"**Default chain: K = {langevin['steps']}, {LangevinConfig.from_dict(langevin).chain_label()}.** {reason}", ""]


def write_model_card(folder: Path, runs: dict[str, Path], curve_reports: list[Path], reason: str, notes: str = "") -> Path:
    """Write ``folder/MODEL_CARD.md``; ``runs`` maps role (ebm, classifier, classifier-pgd) to its training output folder."""
    ebm = read_metadata(folder / "ebm.json")
    loads = [f'`Purifier.load("{folder.name}")`'] + [f'`load_classifier("{folder.name}"{role})`' for role, file in (("", "classifier"),
             (', "classifier-pgd"', "classifier-pgd")) if (folder / f"{file}.json").is_file()]
    borrowed = [f"`{role}`" for role in ("classifier", "classifier-pgd") if not (folder / f"{role}.json").is_file()]
    companion = (f" It borrows {' and '.join(borrowed)} from `{ebm['classifiers_from']}`; {'they load' if len(borrowed) > 1 else 'it loads'} "
                 "under this name too.") if ebm.get("classifiers_from") and borrowed else ""
    lines = [f"# Model card: `{folder.name}`", "", f"Midrun EBM purifier{' and classifiers' if len(loads) > 1 else ''} for **{ebm['dataset']}**, "
             f"trained on a 2-core CPU with this project's own commands. Load by name: {', '.join(loads)}.{companion}", "",
             f"Purification defaults: {json.dumps(ebm['langevin'])}, data range {ebm['data_range']}.", "", "## Checkpoints", ""]
    for role, title in (("ebm", "Energy-based model (EMA weights)"), ("classifier", None),  # None: named by how it was trained
                        ("classifier-pgd", "Classifier, PGD adversarial training (baseline)")):
        if (folder / f"{role}.json").is_file():
            title = title or f"Classifier, {_classifier_training(read_metadata(folder / f'{role}.json'))}"
            log = runs[role] / "train_log.jsonl" if role == "ebm" else runs[role].with_suffix(".log.jsonl")
            lines += _checkpoint_section(title, folder / f"{role}.json", log)
    if curve_reports:
        lines += _curve_section([json.loads(p.read_text()) for p in curve_reports], ebm["langevin"], reason)
    grids = sorted(p.name for p in folder.glob("*.png"))
    if grids:
        lines += ["## Sample grids", ""] + [f"![{g}]({g})" for g in grids] + [""]
    if notes:
        lines += ["## Notes", "", notes, ""]
    path = folder / "MODEL_CARD.md"
    path.write_text("\n".join(lines))
    return path


def ship(
    name: str, runs_dir: Path, curve_reports: list[Path], langevin: dict[str, Any] | None, reason: str, notes: str = "",
    classifiers_from: str | None = None,
) -> Path:
    """Copy a run's checkpoints and last sample grids into ``purifier/weights/<name>``, set the
    default Langevin settings given in ``langevin`` (steps, step size, schedules...; the EBM metadata
    changes, its weights do not), and write the card. ``classifiers_from`` names a shipped model
    whose classifiers this EBM also defends: the roles the run did not train load from it."""
    _defaults(read_metadata(runs_dir / "ebm" / "ebm.json")["langevin"], langevin)  # checked before anything is copied
    folder = WEIGHTS_DIR / name
    folder.mkdir(parents=True, exist_ok=True)
    runs = {"ebm": runs_dir / "ebm", "classifier": runs_dir / "classifier", "classifier-pgd": runs_dir / "classifier-pgd"}
    for role, src in runs.items():
        stem = src / "ebm" if role == "ebm" else src
        if stem.with_suffix(".json").is_file():
            for suffix in (".json", ".safetensors"):
                shutil.copy(stem.with_suffix(suffix), folder / f"{role}{suffix}")
    meta = json.loads((folder / "ebm.json").read_text())
    meta["langevin"] = _defaults(meta["langevin"], langevin)
    if classifiers_from:
        meta["classifiers_from"] = classifiers_from
    (folder / "ebm.json").write_text(json.dumps(meta, indent=2) + "\n")
    samples = sorted((runs_dir / "ebm" / "samples").glob("chains_*.png"))
    banks = sorted((runs_dir / "ebm" / "samples").glob("bank_*.png"))
    for src, dst in ((samples[-1] if samples else None, "chains.png"), (banks[-1] if banks else None, "bank.png")):
        if src is not None:
            shutil.copy(src, folder / dst)
    return write_model_card(folder, runs, curve_reports, reason, notes)


def _defaults(recorded: dict[str, Any], changes: dict[str, Any] | None) -> dict[str, Any]:
    """The recorded Langevin defaults with ``changes``, validated."""
    if unknown := set(changes or {}) - {f.name for f in fields(LangevinConfig)}:
        raise SettingsError(f"unknown Langevin settings {sorted(unknown)}")
    try:
        return LangevinConfig.from_dict({**recorded, **(changes or {})}).to_dict()
    except TypeError as err:
        raise SettingsError(f"bad Langevin settings ({err})") from None


def main() -> None:
    p = argparse.ArgumentParser(description="ship a trained model: copy checkpoints into purifier/weights/NAME and write its model card")
    p.add_argument("--name", required=True)
    p.add_argument("--runs", required=True, type=Path, help="the training output folder (ebm/, classifier.*, classifier-pgd.*)")
    p.add_argument("--curve", type=Path, action="append", default=[], help="report.json of `ebm-purify evaluate --attack none --steps-list ...` (repeatable)")
    p.add_argument("--steps", type=int, help="default Langevin steps to record")
    p.add_argument("--langevin", type=_json_table, default={}, help='other default Langevin settings as JSON, e.g. \'{"step_size_final": 0.00625}\'')
    p.add_argument("--reason", default="", help="why this default")
    p.add_argument("--notes", default="")
    p.add_argument("--classifiers-from", help="shipped model whose classifiers stand in for the roles the run did not train")
    args = p.parse_args()
    langevin = {**args.langevin, **({"steps": args.steps} if args.steps is not None else {})}
    try:
        print(ship(args.name, args.runs, args.curve, langevin, args.reason, args.notes, args.classifiers_from))
    except PurifierError as err:
        raise SystemExit(f"model_card: {err}") from None


def _json_table(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not JSON ({err})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("a JSON object of Langevin settings")
    return value


if __name__ == "__main__":
    main()
