"""One results table from many evaluation folders: a row per (run, eps, verified K x R setting)
with the defense, the attack and its budget, clean and robust accuracy (Wilson 95% intervals) and
the cost per image, as the README's results section shows them (``ebm-purify evaluate table
DIR...``). Where several attacks hit the same defended pipeline at the same radius, a further row
takes the per-image minimum: an image counts as robust only if every attack left it correct
(worst case), over the images all of those attacks saw; runs of one attack on different images (or
repeated on the same ones) are pooled into one row first."""

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
    defense, setting) at one norm and radius: robust only if every attack left the image correct, over
    the images every attack saw. Runs of the same attack are pooled first (the union of their images;
    an image two of them saw is robust only if both left it correct), and a pooled run gets a row of
    its own, so an attack spread over disjoint image ranges reads as one."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["model"], r["classifier"], r["defense"], r["setting"], r["norm"], r["eps"])].append(r)
    combined, records = [], {}  # each run's per-image records, read once however many groups it is in
    for group in groups.values():
        by_attack: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in group:
            by_attack[r["attack"]].append(r)
        if len(group) < 2:  # one run: nothing to pool or take the minimum over
            continue
        for r in group:
            if r["folder"] not in records:
                records[r["folder"]] = _results(Path(r["folder"]))
        pooled = {attack: _pool(runs, records) for attack, runs in by_attack.items()}
        for attack, runs in by_attack.items():
            if len(runs) > 1:
                combined.append(_combined_row(runs, [pooled[attack]], f"{attack} pooled over {len(runs)} runs"))
        if len(by_attack) > 1:
            combined.append(_combined_row(group, list(pooled.values()), "min over " + " / ".join(_short_names(list(by_attack))) + " (per image)"))
    return combined


def _short_names(attacks: list[str]) -> list[str]:
    """Attack names without their budgets, except where two attacks share a name: those keep their steps and restarts."""
    names = [a.split(" (")[0] for a in attacks]
    return [n if names.count(n) == 1 else a.split(", ")[0] + ")" for n, a in zip(names, attacks, strict=True)]


def _pool(runs: list[dict[str, Any]], records: dict[str, list[dict[str, Any]]]) -> dict[int, list[dict[str, Any]]]:
    """Image index -> the records of every run (of one attack) that saw it at the runs' radius and setting."""
    pooled: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        for x in records[r["folder"]]:
            if x["eps"] == r["eps"] and r["setting"] in x["worst_correct"]:
                pooled[x["index"]].append(x)
    return pooled


def _combined_row(runs: list[dict[str, Any]], attacks: list[dict[int, list[dict[str, Any]]]], name: str) -> dict[str, Any]:
    setting = runs[0]["setting"]
    common = sorted(set.intersection(*(set(images) for images in attacks)))
    seen = [[x for images in attacks for x in images[i]] for i in common]  # every record of every attack, per common image
    return {
        **{k: runs[0][k] for k in ("model", "dataset", "classifier", "defense", "norm", "eps", "setting")},
        "folder": ", ".join(r["folder"] for r in runs), "n": len(common), "attack": name,
        "clean": rate([xs[0]["natural"][setting] == xs[0]["label"] for xs in seen]), "robust_final": None,
        "robust_worst": rate([all(x["worst_correct"][setting] for x in xs) for xs in seen]),
        "grad_evals_per_image": round(sum(x["grad_evals"] for xs in seen for x in xs) / max(1, len(common))),
        "seconds_per_image": round(sum(x["seconds"] for xs in seen for x in xs) / max(1, len(common)), 2),
    }


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
