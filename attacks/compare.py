"""Two defenses compared image by image on the images both were attacked on: each side is robust on
an image only if every attack its folders ran left it correct (the table's per-image minimum), and
the images one side keeps and the other loses give the exact McNemar test
(``ebm-purify evaluate compare A... --against B... --eps E``). Runs without an attack (``--attack none``, eps 0)
compare clean accuracy the same way."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from attacks.stats import mcnemar_exact, wilson_interval
from attacks.table import PIPELINE, attack_kind, by, kept, pool, run_records, run_rows
from purifier.errors import SettingsError


def robust_per_image(folders: list[Path], eps: float) -> tuple[dict[int, bool], dict[str, Any]]:
    """Image index -> robust under every attack in ``folders`` at radius ``eps`` (over the images
    every kind of attack saw), and the defended pipeline they all evaluated."""
    rows = [r for r in run_rows(folders) if math.isclose(r["eps"], eps)]
    if not rows:
        raise SettingsError(f"no run at eps {eps} in {', '.join(map(str, folders))}")
    pipelines = {tuple(r[k] for k in PIPELINE) for r in rows}
    if len(pipelines) > 1:
        raise SettingsError(f"{', '.join(map(str, folders))} evaluate {len(pipelines)} pipelines at eps {eps} "
                            f"({'; '.join(sorted(' '.join(map(str, p)) for p in pipelines))}): give one per side")
    setting = rows[0]["setting"]
    records = {r["folder"]: run_records(Path(r["folder"])) for r in rows}
    pools = [pool(runs, records) for runs in by(rows, lambda r: attack_kind(r["attack"])).values()]
    common = set.intersection(*(set(p) for p in pools))
    robust = {i: all(kept(x, setting) for p in pools for x in p[i]) for i in sorted(common)}
    first = rows[0]
    return robust, {k: first[k] for k in ("model", "classifier", "defense", "chain", "norm")} | {
        "attacks": sorted({attack_kind(r["attack"]) for r in rows}), "folders": [str(f) for f in folders]}


def compare(a: list[Path], b: list[Path], eps: float) -> dict[str, Any]:
    """Paired robust accuracy of defense ``a`` against defense ``b`` at radius ``eps``."""
    ra, pa = robust_per_image(a, eps)
    rb, pb = robust_per_image(b, eps)
    common = sorted(set(ra) & set(rb))
    if not common:
        raise SettingsError("the two sides share no attacked image")
    only_a = [i for i in common if ra[i] and not rb[i]]
    only_b = [i for i in common if rb[i] and not ra[i]]

    def side(robust: dict[int, bool], pipeline: dict[str, Any]) -> dict[str, Any]:
        k = sum(robust[i] for i in common)
        return {**pipeline, "correct": k, "accuracy": k / len(common), "ci95": list(wilson_interval(k, len(common)))}

    return {"eps": eps, "n": len(common), "a": side(ra, pa), "b": side(rb, pb), "only_a": only_a, "only_b": only_b,
            "mcnemar_p": mcnemar_exact(len(only_a), len(only_b))}


def markdown_comparison(c: dict[str, Any]) -> str:
    def pct(s: dict[str, Any]) -> str:
        return f"{100 * s['accuracy']:.1f}% [{100 * s['ci95'][0]:.1f}, {100 * s['ci95'][1]:.1f}]"

    def name(s: dict[str, Any]) -> str:
        return f"{s['defense']} {s['model']} / {s['classifier']} ({', '.join(s['attacks'])})"

    return (f"eps {c['eps']}, {c['n']} images both sides were attacked on\n"
            f"- A: {name(c['a'])}: {pct(c['a'])}\n- B: {name(c['b'])}: {pct(c['b'])}\n"
            f"- A keeps {len(c['only_a'])} images B loses, B keeps {len(c['only_b'])} A loses; exact McNemar p = {c['mcnemar_p']:.2g}\n")
