"""``ebm-purify evaluate`` end to end at tiny size: every attack, report schema, sanity checks,
resume, shards and merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import make_classifier_checkpoint, make_ebm_checkpoint

TINY = ["--eps-list", "0.1,0.3", "--n", "4", "--batch-size", "2", "--steps", "2", "--replicates", "2", "--eot", "2",
        "--attack-steps", "2", "--surrogate-steps", "1", "--no-progress"]


@pytest.mark.parametrize("attack", ["none", "transfer", "bpda-eot", "adaptive", "torchattacks:EOTPGD"])
def test_every_attack_writes_a_sane_report(cli, model_dir: Path, tmp_path: Path, data_dir: Path, attack: str) -> None:
    out = tmp_path / "ev"
    code, stdout, err = cli("evaluate", "--model", model_dir, "--attack", attack, *TINY, "--data-dir", data_dir, "--out", out)
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert report["images"] == 4 and report["settings"]["attack"] == attack
    assert report["models"]["ebm_sha256"] and report["models"]["classifier_sha256"]
    assert report["sanity"]["passed"] and report["sanity"]["large_eps_breaks_bare_classifier"]
    rows = report["by_eps"]
    assert [r["eps"] for r in rows] == ([0.0] if attack == "none" else [0.1, 0.3])
    for r in rows:
        assert r["n"] == 4 and 0 <= r["bare_natural"]["accuracy"] <= 1
        lo, hi = r["bare_natural"]["ci95"]
        assert lo <= r["bare_natural"]["accuracy"] <= hi
        if attack != "none":
            fin, worst = r["defended_final_point"]["2x2"], r["defended_worst_case"]["2x2"]
            assert worst["correct"] <= fin["correct"]
    if attack in ("bpda-eot", "adaptive", "transfer"):
        assert report["sanity"]["gradients_finite"] and report["sanity"]["gradients_nonzero"]
        per_image = {json.loads(line)["grad_evals"] for line in (out / "results.jsonl").read_text().splitlines()}
        assert per_image == {3 * (1 if attack == "transfer" else 2)}  # 2 steps + final point, times EOT copies through the defense
        assert (out / "accuracy_vs_eps.png").is_file() and (out / "examples.png").is_file()
    assert "| eps |" in (out / "report.md").read_text() and "Robustness report" in stdout


def test_steps_list_curve_and_resume(cli, model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "curve"
    args = ("evaluate", "--model", model_dir, "--attack", "none", "--n", "3", "--steps-list", "0,2,4", "--replicates", "1",
            "--data-dir", data_dir, "--out", out, "--no-progress")
    assert cli(*args)[0] == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["by_eps"][0]["defended_natural"]) == {"0x1", "2x1", "4x1"}
    assert report["by_eps"][0]["defended_natural"]["0x1"]["correct"] == report["by_eps"][0]["bare_natural"]["correct"]
    lines = (out / "results.jsonl").read_text().splitlines()
    (out / "results.jsonl").write_text("\n".join(lines[:1]) + "\n" + lines[1][:10])  # interrupted mid-line
    assert cli(*args)[0] == 0
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines() if x.startswith("{") and x.endswith("}")]
    assert sorted(r["index"] for r in rows) == [0, 1, 2]
    assert (out / "accuracy_vs_steps.png").is_file()
    code, _, err = cli("evaluate", "--model", model_dir, "--attack", "none", "--n", "3", "--steps", "5", "--data-dir", data_dir, "--out", out)
    assert code == 2 and "different settings" in err


def test_clean_results_are_computed_once_per_image_and_reused(cli, model_dir: Path, tmp_path: Path, data_dir: Path, monkeypatch) -> None:
    import attacks.evaluate as ev

    purified_rows: list[int] = []
    real = ev._natural
    monkeypatch.setattr(ev, "_natural", lambda ctx, x, seeds: purified_rows.append(len(x)) or real(ctx, x, seeds))
    base = ("evaluate", "--model", model_dir, "--attack", "transfer", *TINY, "--data-dir", data_dir)
    assert cli(*base, "--out", tmp_path / "a")[0] == 0
    assert sum(purified_rows) == 4  # two radii, four images: one clean purification per image
    assert cli(*base, "--loss", "margin", "--natural-from", tmp_path / "a", "--out", tmp_path / "b")[0] == 0
    assert sum(purified_rows) == 4  # all taken from the first run
    rows = {name: json.loads((tmp_path / name / "report.json").read_text())["by_eps"] for name in "ab"}
    assert [r["defended_natural"] for r in rows["a"]] == [r["defended_natural"] for r in rows["b"]]
    code, _, err = cli(*base, "--replicates", "3", "--natural-from", tmp_path / "a", "--out", tmp_path / "c")
    assert code == 2 and "another defense" in err and "replicates 2 vs 3" in err


def test_shards_merge_into_the_unsharded_report(cli, model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    common = ("evaluate", "--model", model_dir, "--attack", "transfer", *TINY, "--data-dir", data_dir)
    assert cli(*common, "--out", tmp_path / "full")[0] == 0
    for i in range(2):
        assert cli(*common, "--shard", f"{i}/2", "--out", tmp_path / f"s{i}")[0] == 0
    code, _, err = cli("evaluate", "merge", tmp_path / "s0", tmp_path / "s1", "--out", tmp_path / "merged")
    assert code == 0, err
    full = json.loads((tmp_path / "full" / "report.json").read_text())["by_eps"]
    merged = json.loads((tmp_path / "merged" / "report.json").read_text())["by_eps"]
    for a, b in zip(full, merged, strict=True):
        assert a["defended_final_point"] == b["defended_final_point"] and a["bare_adversarial"] == b["bare_adversarial"]
    code, stdout, err = cli("evaluate", "table", tmp_path / "full", tmp_path / "merged", "--out", tmp_path / "table")
    assert code == 0, err
    rows = json.loads((tmp_path / "table.json").read_text())
    assert [(r["eps"], r["attack"].split()[0]) for r in rows] == [(0.1, "transfer"), (0.3, "transfer")] * 3
    same = [{**r, "folder": str(tmp_path / "full"), "seconds_per_image": a["seconds_per_image"]} for a, r in zip(rows[:2], rows[2:4], strict=True)]
    assert rows[:2] == same and "| robust % (worst case) |" in stdout
    # the two runs of one attack on the same images pool into a row that equals either (the attack is seeded)
    assert [r["attack"].endswith("pooled over 2 runs") and r["n"] == 4 and r["robust_worst"] == a["robust_worst"]
            for a, r in zip(rows[:2], rows[4:], strict=True)] == [True, True]
    assert (tmp_path / "table.md").read_text() + "\n" + (tmp_path / "table-pareto.md").read_text() == stdout
    code, _, err = cli("evaluate", "table", tmp_path / "nowhere")
    assert code == 2 and "no report.json" in err


def test_the_table_adds_the_per_image_minimum_over_attacks(cli, model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    base = ("evaluate", "--model", model_dir, *TINY, "--data-dir", data_dir)
    assert cli(*base, "--attack", "transfer", "--out", tmp_path / "t")[0] == 0
    assert cli(*base, "--attack", "bpda-eot", "--eot", "1", "--out", tmp_path / "b")[0] == 0
    code, _, err = cli("evaluate", "table", tmp_path / "t", tmp_path / "b", "--out", tmp_path / "table")
    assert code == 0, err
    rows = json.loads((tmp_path / "table.json").read_text())
    combined = [r for r in rows if r["attack"].startswith("min over")]
    assert [r["eps"] for r in combined] == [0.1, 0.3] and combined[0]["attack"] == "min over transfer / bpda-eot (per image)"
    per_run = [[json.loads(line) for line in (tmp_path / name / "results.jsonl").read_text().splitlines()] for name in "tb"]
    for row in combined:
        survived = {(r["index"], r["eps"]): all(r["worst_correct"].values()) for r in per_run[0]}
        both = [survived[(r["index"], r["eps"])] and all(r["worst_correct"].values()) for r in per_run[1] if r["eps"] == row["eps"]]
        assert row["n"] == len(both) and row["robust_worst"]["correct"] == sum(both)
        singles = [r["robust_worst"]["correct"] for r in rows if r["eps"] == row["eps"] and not r["attack"].startswith("min")]
        assert row["robust_worst"]["correct"] <= min(singles)


def test_a_hybrid_with_an_input_classifier_is_its_own_pipeline(cli, model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    """--input-classifier: recorded with its weights, refused where its results would mix with the plain defense's,
    labelled apart in tables; the plain defense's fingerprint is the one it had before the knob."""
    from attacks.settings import EvalSettings

    other = make_classifier_checkpoint(tmp_path / "other", seed=3)
    base = ("evaluate", "--model", model_dir, "--attack", "bpda-eot", *TINY, "--data-dir", data_dir)
    hybrid = (*base, "--input-classifier", other.with_suffix(".json"))
    assert cli(*base, "--out", tmp_path / "plain")[0] == 0
    code, _, err = cli(*hybrid, "--out", tmp_path / "hybrid")
    assert code == 0, err
    report = json.loads((tmp_path / "hybrid" / "report.json").read_text())
    assert report["models"]["input_classifier_sha256"] and report["settings"]["input_weight"] == 1.0
    assert report["sanity"]["gradients_nonzero"] and "on the unpurified input" in (tmp_path / "hybrid" / "report.md").read_text()
    for extra, message in ((("--input-weight", "2", "--out", tmp_path / "hybrid"), "different settings"),
                           (("--survivors-of", tmp_path / "plain", "--out", tmp_path / "h2"), "another defense"),
                           (("--input-weight", "0", "--out", tmp_path / "h3"), "input_weight"),
                           (("--defense", "none", "--out", tmp_path / "h4"), "input-classifier")):
        code, _, err = cli(*hybrid, *extra)
        assert code == 2 and message in err and "Traceback" not in err, (extra, err)
    code, _, err = cli("evaluate", "table", tmp_path / "plain", tmp_path / "hybrid", "--out", tmp_path / "table")
    assert code == 0, err
    rows = json.loads((tmp_path / "table.json").read_text())
    assert not [r for r in rows if r["attack"].startswith("min over")]  # two pipelines, one attack each: nothing to combine
    labels = {r["defense"] for r in rows}
    assert len(labels) == 2 and any(f"other.json ({report['models']['input_classifier_sha256'][:8]}) on the input" in s for s in labels)
    pareto = json.loads((tmp_path / "table-pareto.json").read_text())
    assert sorted(r["classifier_forwards"] for r in pareto if r["eps"] == 0.1) == [2, 3]  # R = 2 copies, and the input's forward
    committed = Path(__file__).parents[1] / "experiments/mnist-classifier-pgd-w32-through-box/report/bpda-eot-r2-linf-1000/settings.json"
    written = json.loads(committed.read_text())  # written before the knob: it must still resume
    assert EvalSettings.from_dict(written["settings"]).fingerprint() == written["fingerprint"]


def test_the_table_pools_runs_of_one_attack_on_disjoint_images(cli, model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    base = ("evaluate", "--model", model_dir, *TINY, "--data-dir", data_dir)
    assert cli(*base, "--attack", "bpda-eot", "--eot", "1", "--out", tmp_path / "b")[0] == 0  # images 0-3
    for offset in (0, 2):  # transfer on images 0-1 and 2-3, and on nothing else
        assert cli(*base, "--attack", "transfer", "--n", "2", "--offset", str(offset), "--out", tmp_path / f"t{offset}")[0] == 0
    code, _, err = cli("evaluate", "table", tmp_path / "b", tmp_path / "t0", tmp_path / "t2", "--out", tmp_path / "table")
    assert code == 0, err
    rows = [r for r in json.loads((tmp_path / "table.json").read_text()) if r["eps"] == 0.3]
    pooled = next(r for r in rows if r["attack"].endswith("pooled over 2 runs"))
    singles = [r for r in rows if r["attack"].startswith("transfer (")]
    assert pooled["n"] == 4 and pooled["robust_worst"]["correct"] == sum(r["robust_worst"]["correct"] for r in singles)
    markdown = (tmp_path / "table.md").read_text()  # the pooled row stands for its runs there; the JSON keeps them
    assert markdown.count("| transfer (") == markdown.count("pooled over 2 runs |") == 2 and "4 rows of single runs" in markdown
    low = next(r for r in rows if r["attack"].startswith("min over"))
    assert low["attack"] == "min over bpda-eot / transfer (per image)" and low["n"] == 4  # every image, not the empty overlap of t0 and t2
    records = {(name, x["index"]): all(x["worst_correct"].values()) for name in ("b", "t0", "t2")
               for x in map(json.loads, (tmp_path / name / "results.jsonl").read_text().splitlines()) if x["eps"] == 0.3}
    assert low["robust_worst"]["correct"] == sum(records[("b", i)] and records[("t0" if i < 2 else "t2", i)] for i in range(4))
    # two budgets of one attack are two attacks, named with their budgets in the minimum
    assert cli(*base, "--attack", "bpda-eot", "--eot", "1", "--attack-steps", "1", "--out", tmp_path / "b1")[0] == 0
    code, _, err = cli("evaluate", "table", tmp_path / "b", tmp_path / "b1", tmp_path / "t0", "--out", tmp_path / "table")
    assert code == 0, err
    names = {r["attack"] for r in json.loads((tmp_path / "table.json").read_text()) if r["attack"].startswith("min over")}
    assert names == {"min over bpda-eot (2 budgets) / transfer (per image)"}


def test_the_minimum_covers_every_image_each_kind_of_attack_saw_at_any_budget(cli, model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    """A stronger budget on all images and a weaker one on some: every image counts, each against every run that saw it."""
    base = ("evaluate", "--model", model_dir, *TINY, "--eps-list", "0.3", "--data-dir", data_dir)
    assert cli(*base, "--attack", "transfer", "--out", tmp_path / "t")[0] == 0  # images 0-3
    assert cli(*base, "--attack", "bpda-eot", "--out", tmp_path / "b")[0] == 0  # images 0-3, 2 steps
    assert cli(*base, "--attack", "bpda-eot", "--attack-steps", "1", "--n", "2", "--out", tmp_path / "b1")[0] == 0  # images 0-1, 1 step
    code, _, err = cli("evaluate", "table", tmp_path / "t", tmp_path / "b", tmp_path / "b1", "--out", tmp_path / "table")
    assert code == 0, err
    low = next(r for r in json.loads((tmp_path / "table.json").read_text()) if r["attack"].startswith("min over"))
    assert low["n"] == 4 and low["attack_kinds"] == ["transfer", "bpda-eot"]
    ok = {(name, x["index"]): all(x["worst_correct"].values()) for name in ("t", "b", "b1")
          for x in map(json.loads, (tmp_path / name / "results.jsonl").read_text().splitlines())}
    assert low["robust_worst"]["correct"] == sum(ok[("t", i)] and ok[("b", i)] and ok.get(("b1", i), True) for i in range(4))


def test_compare_pairs_two_defenses_image_by_image(cli, model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    """Side A: the EBM under transfer on images 0-5 and BPDA+EOT on 0-3; side B: thresholding on 2-5. The comparison is on
    the images both sides saw every attack on (2-3), each side robust only where all its attacks failed."""
    base = ("evaluate", "--model", model_dir, *TINY, "--eps-list", "0.3", "--data-dir", data_dir)
    assert cli(*base, "--attack", "transfer", "--n", "6", "--out", tmp_path / "t")[0] == 0
    assert cli(*base, "--attack", "bpda-eot", "--out", tmp_path / "b")[0] == 0
    assert cli(*base, "--defense", "binarize", "--attack", "bpda-eot", "--offset", "2", "--out", tmp_path / "bin")[0] == 0
    code, out, err = cli("evaluate", "compare", tmp_path / "t", tmp_path / "b", "--against", tmp_path / "bin", "--eps", "0.3",
                         "--out", tmp_path / "c.json")
    assert code == 0, err
    ok = {(name, x["index"]): all(x["worst_correct"].values()) for name in ("t", "b", "bin")
          for x in map(json.loads, (tmp_path / name / "results.jsonl").read_text().splitlines())}
    a = {i: ok[("t", i)] and ok[("b", i)] for i in (2, 3)}
    c = json.loads((tmp_path / "c.json").read_text())
    assert c["n"] == 2 and c["a"]["correct"] == sum(a.values()) and c["b"]["correct"] == sum(ok[("bin", i)] for i in (2, 3))
    assert c["only_a"] == [i for i in (2, 3) if a[i] and not ok[("bin", i)]] and c["only_b"] == [i for i in (2, 3) if ok[("bin", i)] and not a[i]]
    assert c["a"]["attacks"] == ["bpda-eot", "transfer"] and c["b"]["defense"] == "binarize" and "exact McNemar p" in out
    for argv, message in (((tmp_path / "t", "--against", tmp_path / "bin", "--eps", "0.1"), "no run at eps 0.1"),
                          ((tmp_path / "t", tmp_path / "bin", "--against", tmp_path / "b", "--eps", "0.3"), "give one per side"),
                          ((tmp_path / "t", "--against", tmp_path / "nowhere", "--eps", "0.3"), "no report.json")):
        code, _, err = cli("evaluate", "compare", *argv)
        assert code == 2 and message in err and "Traceback" not in err


def test_clean_only_runs_pool_in_tables_and_compare_on_clean_accuracy(cli, model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    """Runs without an attack hold no worst-case verdicts: the table pools two of one pipeline (on disjoint images) as clean
    accuracy only, and compare --eps 0 pairs two pipelines on clean correctness."""
    base = ("evaluate", "--model", model_dir, "--attack", "none", "--n", "3", "--steps", "2", "--replicates", "2", "--no-progress",
            "--data-dir", data_dir)
    for name, extra in (("a0", ("--offset", "0")), ("a3", ("--offset", "3")), ("bare", ("--defense", "none", "--n", "6"))):
        assert cli(*base, *extra, "--out", tmp_path / name)[0] == 0
    code, _, err = cli("evaluate", "table", tmp_path / "a0", tmp_path / "a3", tmp_path / "bare", "--out", tmp_path / "table")
    assert code == 0, err
    pooled = [r for r in json.loads((tmp_path / "table.json").read_text()) if "pooled" in r["attack"]]
    assert len(pooled) == 1 and pooled[0]["n"] == 6 and pooled[0]["robust_worst"] is None
    code, out, err = cli("evaluate", "compare", tmp_path / "a0", tmp_path / "a3", "--against", tmp_path / "bare", "--eps", "0",
                         "--out", tmp_path / "c.json")
    assert code == 0, err
    right = {(name, x["index"]): next(iter(x["natural"].values())) == x["label"] for name in ("a0", "a3", "bare")
             for x in map(json.loads, (tmp_path / name / "results.jsonl").read_text().splitlines())}
    c = json.loads((tmp_path / "c.json").read_text())
    assert c["n"] == 6 and c["a"]["correct"] == sum(right[(f"a{3 * (i >= 3)}", i)] for i in range(6))
    assert c["b"]["correct"] == sum(right[("bare", i)] for i in range(6)) and "exact McNemar p" in out


def test_the_exact_mcnemar_test() -> None:
    from attacks.stats import mcnemar_exact

    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(5, 0) == mcnemar_exact(0, 5) == 2 / 32
    assert abs(mcnemar_exact(1, 10) - 2 * 12 / 2**11) < 1e-12  # 2 * (C(11,0) + C(11,1)) / 2^11
    assert mcnemar_exact(54, 6) < 1e-9


def _row(defense: str, setting: str, robust: float, clean: float, kinds: list[str], n: int = 100, eps: float = 0.3) -> dict:
    return {"dataset": "mnist", "norm": "linf", "eps": eps, "model": "m", "classifier": "c", "defense": defense, "chain": "", "setting": setting,
            "precision": "float32", "n": n, "clean": {"accuracy": clean, "ci95": [0, 1]}, "robust_worst": {"accuracy": robust, "ci95": [0, 1]},
            "attack": " / ".join(kinds), "attack_kinds": kinds, "folder": "f", "input_classifier": False}


def test_the_pareto_view_keeps_each_pipelines_strongest_evaluation_and_marks_the_frontier(tmp_path: Path) -> None:
    from attacks.table import markdown_pareto, pareto_rows, purify_rates
    from purifier.errors import SettingsError

    rows = [
        _row("ebm K=100 R=8", "100x8", 0.70, 0.98, ["transfer"], n=500),                    # weaker coverage: not the pipeline's row
        _row("ebm K=100 R=8", "100x8", 0.50, 0.98, ["transfer", "bpda-eot", "adaptive"]),  # its strongest evaluation
        _row("ebm K=200 R=8", "200x8", 0.45, 0.97, ["transfer", "bpda-eot", "adaptive"]),  # beaten on every count by K=100
        _row("ebm K=500 R=8", "500x8", 0.60, 0.96, ["transfer", "bpda-eot", "adaptive"]),  # dearer but more robust: on the frontier
        _row("binarize", "0x8", 0.80, 0.95, ["bpda-eot"]),                                  # free and most robust
        _row("noise-median", "0x8", 0.10, 0.95, ["bpda-eot"]),
        _row("binarize", "0x8", 0.90, 0.95, ["bpda-eot"], eps=0.1),                          # another radius, another frontier
        {**_row("ebm K=100 R=8", "100x8", 0.0, 0.98, ["none"]), "attack": "none", "robust_worst": None},  # clean-only runs are skipped
        _row("ebm K=50 R=8", "50x8", 0.55, 0.99, ["transfer", "bpda-eot", "adaptive"], n=50),   # all attacks on 50 images, lucky clean:
        _row("ebm K=50 R=8", "50x8", 0.65, 0.90, ["transfer"], n=500),                      # its clean reading on 500 is the one kept
    ]
    bench = tmp_path / "speed.json"
    bench.write_text(json.dumps({"rows": [{"batch": 64, "purifier": {"image_steps_per_s": 4000.0}, "purifier_bf16": {"image_steps_per_s": 8000.0}}]}))
    pareto = pareto_rows(rows, purify_rates(bench))
    by = {(r["eps"], r["defense"]): r for r in pareto}
    assert len(pareto) == 7 and by[(0.3, "ebm K=100 R=8")]["robust_worst"]["accuracy"] == 0.50
    assert by[(0.3, "ebm K=50 R=8")]["robust_worst"]["accuracy"] == 0.55 and by[(0.3, "ebm K=50 R=8")]["clean"]["accuracy"] == 0.90
    assert by[(0.3, "ebm K=100 R=8")]["energy_gradients"] == 800 and by[(0.3, "ebm K=100 R=8")]["seconds_per_prediction"] == 0.2
    assert by[(0.3, "noise-median")]["classifier_forwards"] == 8 and by[(0.3, "binarize")]["classifier_forwards"] == 1
    assert {k[1] for k, r in by.items() if r["frontier"] and k[0] == 0.3} == {"binarize", "ebm K=100 R=8", "ebm K=500 R=8"}
    assert by[(0.1, "binarize")]["frontier"] and "| **yes** |" in markdown_pareto(pareto)
    bench.write_text("{}")
    with pytest.raises(SettingsError, match="not a purify_speed result"):
        purify_rates(bench)


def test_bad_evaluation_flags(cli, model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    base = ("evaluate", "--model", model_dir, "--data-dir", data_dir, "--out", tmp_path / "x")
    for extra, message in ((("--attack", "bogus", "--eps", "0.1"), "unknown attack"), (("--attack", "bpda-eot"), "--eps"),
                           (("--attack", "bpda-eot", "--eps", "0.1", "--steps-list", "1,2"), "steps-list"),
                           (("--attack", "none", "--n", "20000"), "exceeds"),
                           (("--attack", "bpda-eot", "--eps", "0.1", "--transfer-from", "mnist"), "transfer-from")):
        code, _, err = cli(*base, *extra)
        assert code == 2 and message in err and "Traceback" not in err


def test_a_transfer_attack_runs_on_the_classifier_it_is_told(cli, model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    """--transfer-from: PGD runs on another classifier (a robust surrogate) and the evaluated one is defended and scored
    on those examples; naming the evaluated classifier itself is the default transfer attack."""
    base = ("evaluate", "--model", model_dir, "--classifier", "mnist", "--attack", "transfer", *TINY, "--n", "8", "--data-dir", data_dir)
    for name, extra in (("own", ()), ("self", ("--transfer-from", "mnist")), ("pgd", ("--transfer-from", "mnist:classifier-pgd"))):
        code, _, err = cli(*base, *extra, "--out", tmp_path / name)
        assert code == 0, err
    read = {name: [json.loads(line) for line in (tmp_path / name / "results.jsonl").read_text().splitlines()] for name in ("own", "self", "pgd")}
    assert [(r["bare_adv"], r["l2"]) for r in read["self"]] == [(r["bare_adv"], r["l2"]) for r in read["own"]]
    assert [r["l2"] for r in read["pgd"]] != [r["l2"] for r in read["own"]]  # other gradients, other examples
    settings = json.loads((tmp_path / "pgd" / "settings.json").read_text())
    assert settings["settings"]["transfer_from"] == "mnist:classifier-pgd"
    code, _, err = cli(*base, "--transfer-from", "mnist:classifier-pgd", "--out", tmp_path / "own")  # a folder holds one surrogate
    assert code == 2 and "different settings" in err


@pytest.mark.parametrize("defense", ["none", "binarize", "noise-median"])
def test_baseline_defenses_in_the_harness(cli, model_dir: Path, tmp_path: Path, data_dir: Path, defense: str) -> None:
    out = tmp_path / defense
    code, _, err = cli("evaluate", "--model", model_dir, "--defense", defense, "--attack", "bpda-eot", "--eps", "0.2", "--n", "3",
                       "--eot", "2", "--attack-steps", "2", "--replicates", "2", "--data-dir", data_dir, "--out", out, "--no-progress")
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["defense"] == defense and report["sanity"]["gradients_nonzero"]


def test_results_of_other_weights_are_never_mixed(cli, model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    """A model reference can be retrained in place: resume, --natural-from and merge compare the weights' sha256."""
    base = ("evaluate", "--model", model_dir, "--attack", "none", "--n", "2", "--steps", "1", "--replicates", "1", "--no-progress",
            "--data-dir", data_dir)
    for name in ("a", "s0"):
        assert cli(*base, *(("--shard", "0/2") if name == "s0" else ()), "--out", tmp_path / name)[0] == 0
    saved = json.loads((tmp_path / "a" / "settings.json").read_text())["models"]
    assert saved["ebm_sha256"] == json.loads((model_dir / "ebm.json").read_text())["weights"]["sha256"]
    make_ebm_checkpoint(model_dir / "ebm", seed=1)  # retrained under the same reference
    code, _, err = cli(*base, "--out", tmp_path / "a")
    assert code == 2 and "holds results of other models (ebm_sha256" in err and "Traceback" not in err
    code, _, err = cli(*base, "--natural-from", tmp_path / "a", "--out", tmp_path / "b")
    assert code == 2 and "evaluated other models" in err
    assert cli(*base, "--shard", "1/2", "--out", tmp_path / "s1")[0] == 0
    code, _, err = cli("evaluate", "merge", tmp_path / "s0", tmp_path / "s1", "--out", tmp_path / "merged")
    assert code == 2 and "evaluated other models" in err


def _table_across_a_reship(cli, model_dir: Path, tmp_path: Path, data_dir: Path, reship) -> list[dict]:
    """A transfer run, ``reship()`` (what the model reference resolves to changes), a BPDA+EOT run: compare refuses to
    take the two as one side; the table's rows over both are returned."""
    base = ("evaluate", "--model", model_dir, *TINY, "--eps-list", "0.3", "--data-dir", data_dir)
    assert cli(*base, "--attack", "transfer", "--out", tmp_path / "t")[0] == 0
    reship()
    assert cli(*base, "--attack", "bpda-eot", "--out", tmp_path / "b")[0] == 0
    code, _, err = cli("evaluate", "compare", tmp_path / "t", tmp_path / "b", "--against", tmp_path / "b", "--eps", "0.3")
    assert code == 2 and "give one per side" in err and "Traceback" not in err
    code, _, err = cli("evaluate", "table", tmp_path / "t", tmp_path / "b", "--out", tmp_path / "table")
    assert code == 0, err
    return json.loads((tmp_path / "table.json").read_text())


def test_tables_and_comparisons_never_pool_runs_of_other_weights(cli, model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    """A classifier re-shipped under the same reference is another pipeline: no minimum or pooled row over both."""
    rows = _table_across_a_reship(cli, model_dir, tmp_path, data_dir, lambda: make_classifier_checkpoint(model_dir / "classifier", seed=1))
    shas = [json.loads((tmp_path / name / "report.json").read_text())["models"]["classifier_sha256"][:8] for name in "tb"]
    assert [r["classifier"] for r in rows] == [f"{model_dir}:classifier ({sha})" for sha in shas] and shas[0] != shas[1]


def test_tables_never_pool_runs_of_other_chains(cli, model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    """Runs of the same weights through chains that differ only where the defense label is silent (here the
    temperature) are two pipelines: no minimum or pooled row over both, and compare refuses to mix them."""
    meta_path = model_dir / "ebm.json"

    def reship() -> None:
        meta = json.loads(meta_path.read_text())
        meta["langevin"] = {**meta["langevin"], "temperature": 2 * meta["langevin"]["temperature"]}
        meta_path.write_text(json.dumps(meta))

    rows = _table_across_a_reship(cli, model_dir, tmp_path, data_dir, reship)
    assert len(rows) == 2 and rows[0]["defense"] == rows[1]["defense"] and rows[0]["chain"] != rows[1]["chain"]
    temperatures = [json.loads((tmp_path / name / "report.json").read_text())["models"]["defense"]["temperature"] for name in "tb"]
    for view in ("table.md", "table-pareto.md"):  # the Markdown rows say which chain each is, by the setting that differs only
        lines = [line for line in (tmp_path / view).read_text().splitlines() if f"| {model_dir} (" in line]
        assert len(lines) == 2 and all(sum(f"{rows[0]['defense']} [temperature {t}] |" in line for line in lines) == 1 for t in temperatures)


def test_results_of_another_default_chain_are_never_mixed(cli, model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    """A model's default chain can be re-shipped under the same name and weights: resume and --natural-from
    compare the Langevin settings the reference resolved to; a baseline records no chain and resumes."""
    base = ("evaluate", "--model", model_dir, "--attack", "none", "--n", "2", "--steps", "1", "--replicates", "1", "--no-progress",
            "--data-dir", data_dir)
    assert cli(*base, "--out", tmp_path / "a")[0] == 0
    assert cli(*base, "--defense", "binarize", "--out", tmp_path / "bin")[0] == 0
    saved = json.loads((tmp_path / "a" / "settings.json").read_text())["models"]
    assert saved["langevin"]["box"] is None and "langevin" not in json.loads((tmp_path / "bin" / "settings.json").read_text())["models"]
    meta_path = model_dir / "ebm.json"
    meta = json.loads(meta_path.read_text())
    meta["langevin"] = {**meta["langevin"], "box": 0.6, "clamp": [-1.0, 1.0]}  # the same weights, a new default chain
    meta_path.write_text(json.dumps(meta))
    code, _, err = cli(*base, "--out", tmp_path / "a")
    assert code == 2 and "holds results of other models (langevin defaults box None vs 0.6, clamp None vs [-1.0, 1.0])" in err
    assert "Traceback" not in err
    code, _, err = cli(*base, "--natural-from", tmp_path / "a", "--out", tmp_path / "b")
    assert code == 2 and "evaluated other models (langevin defaults" in err
    assert cli(*base, "--defense", "binarize", "--out", tmp_path / "bin")[0] == 0


def test_a_chained_run_attacks_only_what_the_earlier_runs_left(cli, model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    """--survivors-of (AutoAttack's cascade): images an earlier run broke carry its result and cost nothing; the
    rest are attacked; the per-image minimum over both runs is what it is without the cascade."""
    base = ("evaluate", "--model", model_dir, "--classifier", "mnist", *TINY, "--n", "8", "--data-dir", data_dir)  # a trained classifier
    assert cli(*base, "--attack", "transfer", "--out", tmp_path / "t")[0] == 0
    code, stdout, err = cli(*base, "--attack", "bpda-eot", "--survivors-of", tmp_path / "t", "--out", tmp_path / "c")
    assert code == 0, err
    assert cli(*base, "--attack", "bpda-eot", "--out", tmp_path / "b")[0] == 0  # the same attack on every image
    read = {name: {(x["eps"], x["index"]): x for x in map(json.loads, (tmp_path / name / "results.jsonl").read_text().splitlines())}
            for name in "tcb"}
    broken = {k for k, x in read["t"].items() if not x["worst_correct"]["2x2"]}
    assert broken and len(broken) < len(read["t"])  # the fixture's transfer attack breaks some images, not all
    for k, x in read["c"].items():
        if k in broken:
            assert x["broken_by"] == str(tmp_path / "t") and x["grad_evals"] == 0 and x["worst_correct"] == read["t"][k]["worst_correct"]
        else:  # attacked as in the standalone run: seeds per image, whichever images share the batch
            assert "broken_by" not in x and x["grad_evals"] > 0
            same = ("worst_correct", "final_correct", "grad_evals", "bare_adv", "attack_fooled_any")
            assert {f: x[f] for f in same} == {f: read["b"][k][f] for f in same} and x["l2"] == pytest.approx(read["b"][k]["l2"], abs=1e-4)
    report = json.loads((tmp_path / "c" / "report.json").read_text())
    assert [e["broken_earlier"] for e in report["by_eps"]] == [sum(k[0] == e for k in broken) for e in (0.1, 3.0e-1)]
    assert "attacked only what" in stdout
    code, _, err = cli("evaluate", "table", tmp_path / "t", tmp_path / "c", "--out", tmp_path / "table")
    assert code == 0, err
    rows = json.loads((tmp_path / "table.json").read_text())
    assert any(r["attack"].startswith("bpda-eot (") and r["attack"].endswith("on the survivors of 1 earlier run)") for r in rows)
    for row in (r for r in rows if r["attack"].startswith("min over")):
        keys = [k for k in read["t"] if k[0] == row["eps"]]
        assert row["robust_worst"]["correct"] == sum(read["t"][k]["worst_correct"]["2x2"] and read["c"][k]["worst_correct"]["2x2"] for k in keys)
    code, _, err = cli(*base, "--attack", "bpda-eot", "--out", tmp_path / "c")  # the cascade is part of what a folder holds
    assert code == 2 and "different settings" in err
    for extra, message in ((("--replicates", "3"), "another defense"), (("--norm", "l2"), "attacked in linf")):
        code, _, err = cli(*base, "--attack", "bpda-eot", *extra, "--survivors-of", tmp_path / "t", "--out", tmp_path / "x")
        assert code == 2 and message in err and "Traceback" not in err
    code, _, err = cli(*base, "--attack", "bpda-eot", "--survivors-of", tmp_path / "nowhere", "--out", tmp_path / "x")
    assert code == 2 and "no evaluation there" in err and not (tmp_path / "x").exists()  # refused before the folder is made


@pytest.mark.parametrize("attack", ["bpda-eot", "adaptive"])
def test_an_images_result_does_not_depend_on_its_batch_or_shard(cli, model_dir: Path, tmp_path: Path, data_dir: Path, attack: str) -> None:
    base = ("evaluate", "--model", model_dir, "--classifier", "mnist", "--attack", attack, *TINY, "--eps-list", "0.1",
            "--n", "8", "--stop-after", "1", "--data-dir", data_dir)
    assert cli(*base, "--batch-size", "8", "--out", tmp_path / "one")[0] == 0
    assert cli(*base, "--batch-size", "1", "--shard", "1/2", "--out", tmp_path / "odd")[0] == 0

    def records(name: str) -> dict[int, dict]:
        return {x["index"]: x for x in map(json.loads, (tmp_path / name / "results.jsonl").read_text().splitlines())}

    one, odd = records("one"), records("odd")
    assert sorted(odd) == [1, 3, 5, 7] and len({x["grad_evals"] for x in one.values()}) > 1  # some images stopped early, some did not
    for i, x in odd.items():
        assert {k: v for k, v in x.items() if k not in ("seconds", "l2", "linf")} == {k: v for k, v in one[i].items() if k not in ("seconds", "l2", "linf")}
        assert x["l2"] == pytest.approx(one[i]["l2"], abs=1e-4)


def test_folders_seeded_per_batch_resume_only_as_they_were_written(cli, model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    base = ("evaluate", "--model", model_dir, "--attack", "transfer", *TINY, "--data-dir", data_dir, "--out", tmp_path / "old")
    assert cli(*base, "--seeding", "batch")[0] == 0
    results = tmp_path / "old" / "results.jsonl"
    results.write_text("".join(results.read_text().splitlines(keepends=True)[:4]))  # interrupted after the first radius
    saved = json.loads((tmp_path / "old" / "settings.json").read_text())
    del saved["settings"]["seeding"]  # as every folder written before the flag
    (tmp_path / "old" / "settings.json").write_text(json.dumps(saved))
    code, _, err = cli(*base)
    assert code == 2 and "seeded per batch, this run per image" in err and "--seeding batch" in err
    assert cli(*base, "--seeding", "batch")[0] == 0  # the old fingerprint: it resumes with the second radius
    assert len(results.read_text().splitlines()) == 8
