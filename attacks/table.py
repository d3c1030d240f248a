"""One results table from many evaluation folders: a row per (run, eps) with the defense, the
attack and its budget, clean and robust accuracy (Wilson 95% intervals) and the cost per image,
as the README's results section shows them (``ebm-purify evaluate table DIR...``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
            key = next(iter(entry["defended_natural"]))
            n = entry["n"]
            rows.append({
                "folder": str(folder), "dataset": models.get("dataset"), "classifier": s["classifier"] or f"{s['model']}:classifier",
                "defense": _defense(s, models.get("defense", {})), "attack": _attack(s), "norm": s["norm"], "eps": entry["eps"], "n": n,
                "clean": entry["defended_natural"][key],
                "robust_final": entry.get("defended_final_point", {}).get(key), "robust_worst": entry.get("defended_worst_case", {}).get(key),
                "grad_evals_per_image": round(entry.get("gradient_evaluations", 0) / n), "seconds_per_image": round(entry["seconds"] / n, 2),
            })
    return rows


def _defense(s: dict[str, Any], described: dict[str, Any]) -> str:
    if s["defense"] != "ebm":
        return s["defense"]
    extra = f", noise {described['init_noise']}" if described.get("init_noise") else ""
    return f"ebm K={described.get('steps')} R={s['replicates']}{extra}"


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
