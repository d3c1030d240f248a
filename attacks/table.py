"""One results table from many evaluation folders: a row per (run, eps, verified K x R setting)
with the defense, the attack and its budget, clean and robust accuracy (Wilson 95% intervals) and
the cost per image, as the README's results section shows them (``ebm-purify evaluate table
DIR...``). Where several attacks hit the same defended pipeline at the same radius, a further row
takes the per-image minimum: an image counts as robust only if every attack left it correct
(worst case), over the images that every kind of attack saw (runs of one kind, at any budget,
count together, so an image may have faced several budgets of one attack); runs of one attack on
different images (or repeated on the same ones) are also pooled into a row of their own. A pipeline
is its model and classifier references together with the weights they resolved to (the sha256 each run
recorded, its first 8 digits beside the reference) and the whole Langevin chain the run recorded: a name
re-shipped with new weights or a new default chain is another pipeline.

:func:`pareto_rows` condenses the table into the issue's Pareto view: per data set, norm and radius,
one row per defended pipeline with its strongest evaluation, the cost of one defended prediction
and whether another pipeline beats it on robustness, clean accuracy and cost at once."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from attacks.report import rate
from purifier.errors import SettingsError

# what makes runs one defended pipeline (their results may be pooled, minimised and compared); with the radius, one group
PIPELINE = ("model", "classifier", "defense", "chain", "setting", "norm")


def table_rows(folders: list[Path]) -> list[dict[str, Any]]:
    """A row per run (folder, radius, verified setting), then the pooled and per-image minimum rows."""
    rows = run_rows(folders)
    return rows + min_over_attacks(rows)


def run_rows(folders: list[Path]) -> list[dict[str, Any]]:
    """A row per run: each folder's report, one row per radius and verified K x R setting."""
    rows = []
    for folder in folders:
        path = Path(folder) / "report.json"
        if not path.is_file():
            raise SettingsError(f"{folder}: no report.json (run ebm-purify evaluate there first)")
        report = json.loads(path.read_text())
        s, models = report["settings"], report.get("models", {})
        described = models.get("defense", {})
        chain = _chain(described)
        for entry in report["by_eps"]:
            n = entry["n"]
            for key in entry["defended_natural"]:
                rows.append({
                    "folder": str(folder), "model": _weighed(s["model"], models.get("ebm_sha256")), "dataset": models.get("dataset"),
                    "classifier": _weighed(s["classifier"] or f"{s['model']}:classifier", models.get("classifier_sha256")),
                    "defense": _defense(s, described, key, models), "chain": chain, "attack": _attack(s), "norm": s["norm"], "eps": entry["eps"], "n": n,
                    "setting": key, "precision": described.get("precision"), "clean": entry["defended_natural"][key],
                    "robust_final": entry.get("defended_final_point", {}).get(key), "robust_worst": entry.get("defended_worst_case", {}).get(key),
                    "grad_evals_per_image": round(entry.get("gradient_evaluations", 0) / n), "seconds_per_image": round(entry["seconds"] / n, 2),
                    "attack_kinds": [attack_kind(_attack(s))], "input_classifier": bool(s.get("input_classifier")),
                })
    return rows


def _weighed(reference: str, sha256: str | None) -> str:
    """A model reference with the weights it resolved to: a name can be re-shipped and a path retrained in
    place, and runs of other weights must never share a pipeline (pooled rows, minima, comparisons)."""
    return f"{reference} ({sha256[:8]})" if sha256 else reference


def _chain(described: dict[str, Any]) -> str:
    """Every setting of the chain a run recorded but its length and copies (the setting) and the weights (the model's
    label): the defense label names only the usual ones, and runs differing in any other (temperature, clamp,
    precision, ...) must not share a pipeline. Settings an older report did not record are left out, as unset."""
    own = ("name", "steps", "replicates", "surrogate_steps", "ebm_sha256", "input_weight")  # the input classifier is in the label
    return "; ".join(f"{k} {v}" for k, v in sorted(described.items()) if k not in own and v is not None)


def _labels(rows: list[dict[str, Any]]) -> dict[int, tuple[str, str]]:
    """The EBM and defense cells of the Markdown views, by ``id`` of the row: the EBM reference (``-`` for a defense
    without one) and the defense label, followed in brackets by the chain settings that set it apart where rows of
    one data set, EBM, classifier and label evaluated other chains (the label names K, R and the schedules only)."""
    chains: dict[tuple, set[str]] = defaultdict(set)
    for r in rows:
        chains[_labelled(r)].add(r["chain"])
    apart = {}  # per label: the settings whose values differ among its chains (none for a label of one chain)
    for key, seen in chains.items():
        parsed = [_settings(c) for c in seen]
        apart[key] = sorted(k for k in set().union(*parsed) if len({p.get(k) for p in parsed}) > 1)
    cells = {}
    for r in rows:
        label = r["defense"]
        if differ := apart[_labelled(r)]:
            own = _settings(r["chain"])
            label += " [" + ", ".join(f"{k} {own.get(k, 'unset')}" for k in differ) + "]"
        cells[id(r)] = (r["model"] if r["defense"].startswith("ebm") else "-", label)
    return cells


def _labelled(r: dict[str, Any]) -> tuple:
    """What a Markdown row shows of its pipeline but the chain: data set, EBM, classifier and defense label."""
    return r["dataset"], r["model"], r["classifier"], r["defense"]


def _settings(chain: str) -> dict[str, str]:
    """A row's ``chain`` back as setting -> value (as written)."""
    return dict(item.split(" ", 1) for item in chain.split("; ")) if chain else {}


def min_over_attacks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-image minimum over the attacks that hit one defended pipeline (model reference, classifier,
    defense, setting) at one norm and radius: robust only if every run that saw the image left it
    correct, over the images that every kind of attack (transfer, bpda-eot, adaptive, ...) saw. Runs
    of one kind are pooled first, whatever their budgets (the union of their images; an image two of
    them saw is robust only if both left it correct). Runs of one attack at one budget also get a
    pooled row of their own, so an attack spread over disjoint image ranges reads as one."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(*(r[k] for k in PIPELINE), r["eps"])].append(r)
    combined, records = [], {}  # each run's per-image records, read once however many groups it is in
    for group in groups.values():
        if len(group) < 2:  # one run: nothing to pool or take the minimum over
            continue
        for r in group:
            if r["folder"] not in records:
                records[r["folder"]] = run_records(Path(r["folder"]))
        for attack, runs in by(group, lambda r: r["attack"]).items():
            if len(runs) > 1:
                pooled = _combined_row(runs, [pool(runs, records)], f"{attack} pooled over {len(runs)} runs")
                combined.append({**pooled, "attack_kinds": [attack_kind(attack)], "pools": [r["folder"] for r in runs], "pooled_attack": attack})
        kinds = by(group, lambda r: attack_kind(r["attack"]))
        if len(kinds) > 1:
            names = [kind + (f" ({n} budgets)" if (n := len({r["attack"] for r in runs})) > 1 else "") for kind, runs in kinds.items()]
            name = "min over " + " / ".join(names) + " (per image)"
            combined.append({**_combined_row(group, [pool(runs, records) for runs in kinds.values()], name), "attack_kinds": list(kinds)})
    return combined


def attack_kind(attack: str) -> str:
    """An attack's name without its budget: ``bpda-eot (20 steps x 2 restarts, ...)`` -> ``bpda-eot``."""
    return attack.split(" (")[0]


def by(rows: list[dict[str, Any]], key: Any) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out[key(r)].append(r)
    return out


def pool(runs: list[dict[str, Any]], records: dict[str, list[dict[str, Any]]]) -> dict[int, list[dict[str, Any]]]:
    """Image index -> the records of every run (of one attack) that saw it at the runs' radius and setting."""
    pooled: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        for x in records[r["folder"]]:
            if x["eps"] == r["eps"] and r["setting"] in x.get("worst_correct", x["natural"]):
                pooled[x["index"]].append(x)
    return pooled


def kept(x: dict[str, Any], setting: str) -> bool:
    """An image record's verdict at a verified setting: correct in the worst case of its attack, or, for a run
    without an attack, correct on the clean image."""
    return x["worst_correct"][setting] if "worst_correct" in x else x["natural"][setting] == x["label"]


def _combined_row(runs: list[dict[str, Any]], attacks: list[dict[int, list[dict[str, Any]]]], name: str) -> dict[str, Any]:
    setting = runs[0]["setting"]
    common = sorted(set.intersection(*(set(images) for images in attacks)))
    seen = [[x for images in attacks for x in images[i]] for i in common]  # every record of every attack, per common image
    return {
        **{k: runs[0][k] for k in (*PIPELINE, "dataset", "eps", "precision", "input_classifier")},
        "folder": ", ".join(r["folder"] for r in runs), "n": len(common), "attack": name,
        "clean": rate([xs[0]["natural"][setting] == xs[0]["label"] for xs in seen]), "robust_final": None,
        "robust_worst": None if all(r["attack"] == "none" for r in runs) else rate([all(kept(x, setting) for x in xs) for xs in seen]),
        "grad_evals_per_image": round(sum(x.get("grad_evals", 0) for xs in seen for x in xs) / max(1, len(common))),
        "seconds_per_image": round(sum(x["seconds"] for xs in seen for x in xs) / max(1, len(common)), 2),
    }


def run_records(folder: Path) -> list[dict[str, Any]]:
    path = folder / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _defense(s: dict[str, Any], described: dict[str, Any], setting: str, models: dict[str, Any]) -> str:
    if s["defense"] != "ebm":
        return s["defense"]
    steps, replicates = setting.split("x")
    extra = f", noise {described['init_noise']}" if described.get("init_noise") else ""
    if described.get("step_size_final"):
        extra += f", eps {described['step_size']:g}->{described['step_size_final']:g}"
    if described.get("temperature_final"):
        extra += f", T {described['temperature']:g}->{described['temperature_final']:g}"
    if described.get("box"):
        extra += f", box {described['box']:g}"
    if s.get("input_classifier"):
        weight = f" x {s['input_weight']:g}" if s["input_weight"] != 1 else ""
        extra += f", + {_weighed(s['input_classifier'], models.get('input_classifier_sha256'))} on the input{weight}"
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
    if s.get("survivors_of"):
        budget += f", on the survivors of {len(s['survivors_of'])} earlier run{'s' if len(s['survivors_of']) > 1 else ''}"
    name = "PGD (white-box)" if s["defense"] == "none" and attack in ("bpda-eot", "adaptive") else attack
    return f"{name} ({budget})"


def _pct(rate: dict[str, Any] | None) -> str:
    if rate is None:
        return "-"
    lo, hi = rate["ci95"]
    return f"{100 * rate['accuracy']:.1f} [{100 * lo:.0f}, {100 * hi:.0f}]"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The rows as Markdown; a run that a pooled row covers is left to the JSON table (the pooled row reads as one)."""
    head = ("| data set | classifier | EBM | defense | attack | norm | eps | n | clean % | robust % (final point) | robust % (worst case) "
            "| grad. evals / image | s / image |")
    lines = [head, "|" + "---|" * 13]
    pooled = {(f, *_pipeline(r)) for r in rows for f in r.get("pools", [])}
    shown = [r for r in rows if (r["folder"], *_pipeline(r)) not in pooled]
    cells = _labels(shown)
    for r in shown:
        ebm, defense = cells[id(r)]
        lines.append(f"| {r['dataset']} | {r['classifier']} | {ebm} | {defense} | {r['attack']} | {r['norm']} | {r['eps']:g} | {r['n']} "
                     f"| {_pct(r['clean'])} | {_pct(r['robust_final'])} | {_pct(r['robust_worst'])} "
                     f"| {r['grad_evals_per_image']} | {r['seconds_per_image']} |")
    if hidden := len(rows) - len(shown):
        lines += ["", f"{hidden} rows of single runs that a pooled row covers are in the JSON table."]
    return "\n".join(lines) + "\n"


def _pipeline(r: dict[str, Any]) -> tuple:
    """What a pooled row shares with the runs it pools: the defended pipeline, the attack and the radius."""
    return *(r[k] for k in PIPELINE), r["eps"], r.get("pooled_attack", r["attack"])


# classifier forwards of one defended prediction with R copies, for defenses without energy gradients
_FORWARDS = {"none": lambda r: 1, "binarize": lambda r: 1, "noise-median": lambda r: r}


def pareto_rows(rows: list[dict[str, Any]], rates: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Per (data set, norm, radius): one row per defended pipeline, its strongest evaluation (the row
    covering the most kinds of attack, then the most images), the cost of one defended prediction
    (energy gradients K x R and classifier forwards; seconds when ``rates`` gives image-steps per second
    by precision) and ``frontier``: no other pipeline there is at least as robust, as accurate on clean
    images and as cheap, and better in one of them (point estimates; the rows say on how many images).
    Clean accuracy comes from the pipeline's evaluation on the most images: an adaptive attack run on
    the first 50 says as much about robustness as it can, but the clean reading of 500 is the better one."""
    best: dict[tuple, dict[str, Any]] = {}
    clean: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        if r["attack"] == "none" or r["robust_worst"] is None:
            continue
        key = (r["dataset"], r["eps"], *(r[k] for k in PIPELINE))
        rank = (len(r["attack_kinds"]), r["n"], -r["robust_worst"]["accuracy"])
        if key not in best or rank > best[key]["_rank"]:
            best[key] = {**r, "_rank": rank}
        if key not in clean or r["n"] > clean[key]["n"]:
            clean[key] = r
    out = []
    for key, r in best.items():
        k, reps = (int(v) for v in r["setting"].split("x"))
        gradients = k * reps if r["defense"].startswith("ebm") else 0
        forwards = reps + r["input_classifier"] if r["defense"].startswith("ebm") else _FORWARDS.get(r["defense"], lambda r: 1)(reps)
        rate = (rates or {}).get(r["precision"] or "float32")
        out.append({
            **{f: r[f] for f in ("dataset", "eps", *PIPELINE, "n", "robust_worst", "attack", "folder")},
            "clean": clean[key]["clean"],
            "attack_kinds": r["attack_kinds"], "energy_gradients": gradients, "classifier_forwards": forwards,
            "seconds_per_prediction": round(gradients / rate, 4) if rate and gradients else (0.0 if rate else None),
        })
    for r in out:
        r["frontier"] = not any(_dominates(o, r) for o in out if o is not r and (o["dataset"], o["norm"], o["eps"]) == (r["dataset"], r["norm"], r["eps"]))
    return sorted(out, key=lambda r: (r["dataset"], r["norm"], r["eps"], r["energy_gradients"], r["classifier_forwards"], -r["robust_worst"]["accuracy"]))


def _dominates(a: dict[str, Any], b: dict[str, Any]) -> bool:
    ge = (a["robust_worst"]["accuracy"], a["clean"]["accuracy"], -a["energy_gradients"], -a["classifier_forwards"])
    le = (b["robust_worst"]["accuracy"], b["clean"]["accuracy"], -b["energy_gradients"], -b["classifier_forwards"])
    return all(x >= y for x, y in zip(ge, le, strict=True)) and ge != le


def markdown_pareto(rows: list[dict[str, Any]]) -> str:
    head = ("| data set | norm | eps | defense | EBM | classifier | energy gradients / prediction | classifier forwards | s / prediction "
            "| clean % (largest run) | robust % (worst case, min over the attacks) | attacks | images | frontier |")
    lines = [head, "|" + "---|" * 14]
    cells = _labels(rows)
    for r in rows:
        ebm, defense = cells[id(r)]
        seconds = "-" if r["seconds_per_prediction"] is None else f"{r['seconds_per_prediction']:g}"
        lines.append(f"| {r['dataset']} | {r['norm']} | {r['eps']:g} | {defense} | {ebm} | {r['classifier']} | {r['energy_gradients']} "
                     f"| {r['classifier_forwards']} | {seconds} | {_pct(r['clean'])} | {_pct(r['robust_worst'])} "
                     f"| {' / '.join(r['attack_kinds'])} | {r['n']} | {'**yes**' if r['frontier'] else 'no'} |")
    return "\n".join(lines) + "\n"


def purify_rates(bench_json: Path, batch: int = 64) -> dict[str, float]:
    """Image-steps per second of the purifier by precision at ``batch``, from ``bench/purify_speed.py``'s JSON."""
    try:
        data = json.loads(Path(bench_json).read_text())
        row = next(r for r in data["rows"] if r["batch"] == batch)
        return {"float32": float(row["purifier"]["image_steps_per_s"]), "bfloat16": float(row["purifier_bf16"]["image_steps_per_s"])}
    except (OSError, json.JSONDecodeError, KeyError, StopIteration) as err:
        raise SettingsError(f"{bench_json}: not a purify_speed result with batch {batch} ({type(err).__name__})") from None
