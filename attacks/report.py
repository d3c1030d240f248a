"""Evaluation reports: aggregate per-image results into accuracies with Wilson 95% intervals,
sanity checks, a JSON report, a Markdown summary and plots (accuracy vs eps; vs Langevin steps
and copies). :func:`merge` joins the result folders of shards of one evaluation."""

from __future__ import annotations

import itertools
import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from attacks.settings import models_differ
from attacks.stats import wilson_interval
from purifier.errors import SettingsError


def rate(flags: list[bool]) -> dict[str, Any]:
    """Accuracy of a list of correct/incorrect flags with its Wilson 95% interval."""
    k, n = sum(flags), len(flags)
    lo, hi = wilson_interval(k, n)
    return {"accuracy": k / n if n else None, "correct": k, "n": n, "ci95": [round(lo, 4), round(hi, 4)]}


def aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracies per eps and per verified (K x R) setting."""
    by_eps: dict[float, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_eps[r["eps"]].append(r)
    table = []
    for eps in sorted(by_eps):
        rs = sorted(by_eps[eps], key=lambda r: r["index"])
        entry: dict[str, Any] = {"eps": eps, "n": len(rs), "bare_natural": rate([r["bare_clean"] == r["label"] for r in rs])}
        keys = list(rs[0]["natural"])
        entry["defended_natural"] = {k: rate([r["natural"][k] == r["label"] for r in rs]) for k in keys}
        if "final_correct" in rs[0]:
            entry["bare_adversarial"] = rate([r["bare_adv"] == r["label"] for r in rs])
            entry["defended_final_point"] = {k: rate([r["final_correct"][k] for r in rs]) for k in keys}
            entry["defended_worst_case"] = {k: rate([r["worst_correct"][k] for r in rs]) for k in keys}
            entry["attack_fooled_its_own_estimate"] = sum(r["attack_fooled_any"] for r in rs) / len(rs)
            entry["broken_earlier"] = sum("broken_by" in r for r in rs)  # not attacked: a --survivors-of run broke them
            entry["gradient_evaluations"] = sum(r["grad_evals"] for r in rs)
            entry["max_linf"] = max(r["linf"] for r in rs)
            entry["max_l2"] = max(r["l2"] for r in rs)
        entry["seconds"] = round(sum(r["seconds"] for r in rs), 1)
        table.append(entry)
    return {"by_eps": table}


def sanity(rows: list[dict[str, Any]], table: list[dict[str, Any]], run_meta: dict[str, Any]) -> dict[str, Any]:
    """Checks every report carries: accuracy does not rise with eps (beyond sampling noise of two
    images), attack gradients were finite and non-zero, PGD at eps = 1 breaks the bare classifier."""
    checks: dict[str, Any] = {}
    attacked = [e for e in table if "defended_worst_case" in e]
    if len(attacked) > 1:
        key = next(iter(attacked[0]["defended_worst_case"]))
        accs = [e["defended_worst_case"][key]["correct"] for e in attacked]
        checks["accuracy_not_rising_with_eps"] = all(b <= a + 2 for a, b in itertools.pairwise(accs))
    if rows and "grad_finite" in rows[0]:
        checks["gradients_finite"] = all(r["grad_finite"] for r in rows)
        checks["gradients_nonzero"] = all(r["grad_nonzero"] for r in rows)
    if "large_eps_bare_accuracy" in run_meta:
        checks["large_eps_bare_accuracy"] = run_meta["large_eps_bare_accuracy"]
        checks["large_eps_breaks_bare_classifier"] = run_meta["large_eps_bare_accuracy"] <= 0.05
    checks["passed"] = all(v for k, v in checks.items() if isinstance(v, bool))
    return checks


def write_report(out: Path) -> dict[str, Any]:
    """Rebuild ``report.json``, ``report.md`` and plots in ``out`` from its results."""
    settings = json.loads((out / "settings.json").read_text())
    rows = _rows(out)
    run_meta = json.loads((out / "run_meta.json").read_text()) if (out / "run_meta.json").is_file() else {}
    agg = aggregate(rows)
    report = {
        "settings": settings["settings"], "fingerprint": settings["fingerprint"], "models": run_meta.get("models", {}),
        "images": len({r["index"] for r in rows}), **agg, "sanity": sanity(rows, agg["by_eps"], run_meta),
        "wall_time_s": round(sum(r["seconds"] for r in rows), 1),
        "gradient_evaluations": sum(r.get("grad_evals", 0) for r in rows),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(report))
    _plots(report, out)
    return report


def _rows(out: Path) -> list[dict[str, Any]]:
    seen: dict[tuple[float, int], dict[str, Any]] = {}
    for line in (out / "results.jsonl").read_text().splitlines() if (out / "results.jsonl").is_file() else []:
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        seen[(r["eps"], r["index"])] = r
    return list(seen.values())


def _pct(rate: dict[str, Any]) -> str:
    if rate["accuracy"] is None:
        return "-"
    return f"{100 * rate['accuracy']:.1f} [{100 * rate['ci95'][0]:.1f}, {100 * rate['ci95'][1]:.1f}]"


def markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    lines = [
        f"# Robustness report: {s['attack']} on {s['defense']} ({report['models'].get('dataset', '?')})", "",
        f"- model `{s['model']}`, classifier `{s['classifier'] or s['model'] + ':classifier'}`; images {report['images']} "
        f"(test indices from {s['offset']}), seed {s['seed']}",
        *([f"- with `{s['input_classifier']}` on the unpurified input, its log-probabilities x {s['input_weight']:g} added to each copy's"]
          if s.get("input_classifier") else []),
        f"- threat model {s['norm']}, attack steps {s['attack_steps']}, step size {s['step_size'] or '2.5 eps / steps'}, "
        f"restarts {s['restarts']}, loss {s['loss']}, EOT {s['eot']}, surrogate steps {s['surrogate_steps'] or 'full chain'}",
        f"- defense verified with R = {s['replicates_list'] or s['replicates']} copies at K = {s['steps_list'] or s['steps'] or 'model default'} steps",
        f"- wall time {report['wall_time_s']} s, gradient evaluations {report['gradient_evaluations']}",
        *([f"- attacked only what {', '.join(s['survivors_of'])} left correct; the others carry that run's result "
           f"(per eps: {', '.join(str(e.get('broken_earlier', 0)) for e in report['by_eps'])} images)"] if s.get("survivors_of") else []), "",
        "Accuracy %, Wilson 95% interval in brackets. *Final*: full defense at the attack's final point; "
        "*worst*: also broken if the full defense misclassifies a fooling iterate.", "",
        "| eps | setting K x R | bare natural | bare adversarial | defended natural | defended final | defended worst |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in report["by_eps"]:
        for key, nat in e["defended_natural"].items():
            adv = _pct(e["bare_adversarial"]) if "bare_adversarial" in e else "-"
            fin = _pct(e["defended_final_point"][key]) if "defended_final_point" in e else "-"
            worst = _pct(e["defended_worst_case"][key]) if "defended_worst_case" in e else "-"
            lines.append(f"| {e['eps']:g} | {key} | {_pct(e['bare_natural'])} | {adv} | {_pct(nat)} | {fin} | {worst} |")
    lines += ["", "Sanity checks: " + ", ".join(f"{k} = {v}" for k, v in report["sanity"].items()), ""]
    return "\n".join(lines)


def _plots(report: dict[str, Any], out: Path) -> None:
    table = report["by_eps"]
    attacked = [e for e in table if "defended_worst_case" in e]
    if attacked:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        eps = [e["eps"] for e in attacked]
        key = next(iter(attacked[0]["defended_worst_case"]))
        ax.plot(eps, [100 * e["bare_adversarial"]["accuracy"] for e in attacked], "o-", label="bare classifier")
        ax.plot(eps, [100 * e["defended_final_point"][key]["accuracy"] for e in attacked], "s-", label="defended, final point")
        ax.plot(eps, [100 * e["defended_worst_case"][key]["accuracy"] for e in attacked], "v--", label="defended, worst case")
        ax.set(xlabel=f"eps ({report['settings']['norm']})", ylabel="accuracy %", ylim=(0, 100), title=report["settings"]["attack"])
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "accuracy_vs_eps.png", dpi=120)
        plt.close(fig)
    entry = attacked[-1] if attacked else table[-1]
    metric = "defended_worst_case" if attacked else "defended_natural"
    settings = [(int(k.split("x")[0]), int(k.split("x")[1]), v["accuracy"]) for k, v in entry[metric].items()]
    if len(settings) > 1:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for r in sorted({r for _, r, _ in settings}):
            pts = sorted((k, a) for k, rr, a in settings if rr == r)
            ax.plot([k for k, _ in pts], [100 * a for _, a in pts], "o-", label=f"R = {r}")
        ax.set(xlabel="Langevin steps K", ylabel="accuracy %", title=f"{metric.replace('_', ' ')} at eps {entry['eps']:g}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "accuracy_vs_steps.png", dpi=120)
        plt.close(fig)


def merge(folders: list[Path], out: Path) -> dict[str, Any]:
    """Join shard folders of one evaluation into ``out`` and write its report."""
    if not folders:
        raise SettingsError("merge needs at least one result folder")
    metas = []
    for f in folders:
        if not (f / "settings.json").is_file():
            raise SettingsError(f"{f}: not an evaluation folder (no settings.json)")
        metas.append(json.loads((f / "settings.json").read_text()))
    if len({m["fingerprint"] for m in metas}) != 1:
        raise SettingsError("the folders hold evaluations with different settings")
    for f, m in zip(folders[1:], metas[1:], strict=True):
        if other := models_differ(metas[0].get("models"), m.get("models")):
            raise SettingsError(f"{f} evaluated other models than {folders[0]} ({other})")
    out.mkdir(parents=True, exist_ok=True)
    merged = dict(metas[0])
    merged["settings"] = {**metas[0]["settings"], "shard": [0, 1]}
    (out / "settings.json").write_text(json.dumps(merged, indent=2))
    with open(out / "results.jsonl", "w") as dst:
        for f in folders:
            if (f / "results.jsonl").is_file():
                dst.write((f / "results.jsonl").read_text())
    if (folders[0] / "run_meta.json").is_file() and folders[0] != out:
        shutil.copy(folders[0] / "run_meta.json", out / "run_meta.json")
    return write_report(out)
