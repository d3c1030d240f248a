"""One results table from many evaluation folders: a row per (run, eps, verified K x R setting)
with the defense, the attack and its budget, clean and robust accuracy (Wilson 95% intervals) and
the cost per image, as the README's results section shows them (``ebm-purify evaluate table
DIR...``). Where several attacks hit the same defended pipeline at the same radius, a further row
takes the per-image minimum: an image counts as robust only if every attack left it correct
(worst case), over the images all of those runs share."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from attacks.report import rate
from purifier.errors import SettingsError


def table_rows(folders: list[Path]) -> list[dict[str, Any]]:
    rows = []
    for folder in folders:
        path = Path(folder) / "report.json"
        if not path.is_file():
            raise SettingsError(f"{folder}: no report.json (run ebm-purify evaluate there first)")
        report = json.loads(path.read_text())
        s, models = report["settings"], report.get("models", {})
        for entry in report["by_eps"]:
            n = entry["n"]
            for key in entry["defended_natural"]:
                rows.append({
                    "folder": str(folder), "model": s["model"], "dataset": models.get("dataset"), "classifier": s["classifier"] or f"{s['model']}:classifier",
                    "defense": _defense(s, models.get("defense", {}), key), "attack": _attack(s), "norm": s["norm"], "eps": entry["eps"], "n": n,
                    "setting": key, "clean": entry["defended_natural"][key],
                    "robust_final": entry.get("defended_final_point", {}).get(key), "robust_worst": entry.get("defended_worst_case", {}).get(key),
                    "grad_evals_per_image": round(entry.get("gradient_evaluations", 0) / n), "seconds_per_image": round(entry["seconds"] / n, 2),
                })
    return rows + min_over_attacks(rows)


def min_over_attacks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-image minimum over the attacks that hit one defended pipeline (model reference, classifier,
    defense, setting) at one norm and radius: robust only if every attack left the image correct."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["model"], r["classifier"], r["defense"], r["setting"], r["norm"], r["eps"])].append(r)
    combined, records = [], {}  # each run's per-image records, read once however many groups it is in
    for group in groups.values():
        if len({r["attack"] for r in group}) < 2:
            continue
        for r in group:
            records.setdefault(r["folder"], _results(Path(r["folder"])))
        per_run = [{x["index"]: x for x in records[r["folder"]] if x["eps"] == r["eps"] and r["setting"] in x["worst_correct"]} for r in group]
        common = sorted(set.intersection(*(set(images) for images in per_run)))
        first = per_run[0]
        combined.append({
            **{k: group[0][k] for k in ("model", "dataset", "classifier", "defense", "norm", "eps", "setting")},
            "folder": ", ".join(r["folder"] for r in group), "n": len(common),
            "attack": "min over " + " / ".join(r["attack"].split(" (")[0] for r in group) + " (per image)",
            "clean": rate([first[i]["natural"][group[0]["setting"]] == first[i]["label"] for i in common]), "robust_final": None,
            "robust_worst": rate([all(images[i]["worst_correct"][r["setting"]] for images, r in zip(per_run, group, strict=True)) for i in common]),
            "grad_evals_per_image": round(sum(images[i]["grad_evals"] for images in per_run for i in common) / max(1, len(common))),
            "seconds_per_image": round(sum(images[i]["seconds"] for images in per_run for i in common) / max(1, len(common)), 2),
        })
    return combined


def _results(folder: Path) -> list[dict[str, Any]]:
    path = folder / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _defense(s: dict[str, Any], described: dict[str, Any], setting: str) -> str:
    if s["defense"] != "ebm":
        return s["defense"]
    steps, replicates = setting.split("x")
    extra = f", noise {described['init_noise']}" if described.get("init_noise") else ""
    if described.get("step_size_final"):
        extra += f", eps {described['step_size']:g}->{described['step_size_final']:g}"
    if described.get("temperature_final"):
        extra += f", T {described['temperature']:g}->{described['temperature_final']:g}"
    return f"ebm K={steps} R={replicates}{extra}"


def _attack(s: dict[str, Any]) -> str:
    attack = s["attack"]
    if attack == "none":
        return "none"
    budget = f"{s['attack_steps']} steps x {s['restarts']} restart{'s' if s['restarts'] > 1 else ''}, {s['loss']}"
    if attack in ("bpda-eot", "adaptive") and s["defense"] != "none":
        budget += f", EOT {s['eot']}"
        if attack == "adaptive" and s.get("surrogate_steps"):
            budget += f", through {s['surrogate_steps']} steps"
    if s.get("stop_after"):
        budget += f", stop after {s['stop_after']}"
    name = "PGD (white-box)" if s["defense"] == "none" and attack in ("bpda-eot", "adaptive") else attack
    return f"{name} ({budget})"


def _pct(rate: dict[str, Any] | None) -> str:
    if rate is None:
        return "-"
    lo, hi = rate["ci95"]
    return f"{100 * rate['accuracy']:.1f} [{100 * lo:.0f}, {100 * hi:.0f}]"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    head = ("| data set | classifier | defense | attack | norm | eps | n | clean % | robust % (final point) | robust % (worst case) "
            "| grad. evals / image | s / image |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['classifier']} | {r['defense']} | {r['attack']} | {r['norm']} | {r['eps']:g} | {r['n']} "
                     f"| {_pct(r['clean'])} | {_pct(r['robust_final'])} | {_pct(r['robust_worst'])} "
                     f"| {r['grad_evals_per_image']} | {r['seconds_per_image']} |")
    return "\n".join(lines) + "\n"
