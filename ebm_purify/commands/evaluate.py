"""``ebm-purify evaluate``: robustness evaluation of a defended classifier;
``ebm-purify evaluate merge``: join shard folders into one report;
``ebm-purify evaluate table``: one results table from many evaluation folders;
``ebm-purify evaluate compare``: two defenses paired image by image (exact McNemar test)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from attacks.compare import compare, markdown_comparison
from attacks.evaluate import evaluate
from attacks.report import merge
from attacks.settings import EvalSettings
from attacks.table import markdown_pareto, markdown_table, pareto_rows, purify_rates, table_rows
from ebm_purify.commands.common import add_data_option, add_runtime_options, apply_runtime
from purifier.config import DEFAULT_MODEL
from purifier.errors import SettingsError


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = text.split("/")
        return int(i), int(n)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected i/n, got {text!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="attack the defended classifier and report robust accuracy (or: evaluate merge|table|compare DIR...)",
                       description="Robustness evaluation. `ebm-purify evaluate merge DIR... --out DIR` joins shard folders; "
                       "`ebm-purify evaluate table DIR... [--out FILE]` makes one results table; "
                       "`ebm-purify evaluate compare DIR... --against DIR... --eps E` pairs two defenses image by image.")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"EBM: shipped name, model folder, checkpoint or variant (default {DEFAULT_MODEL})")
    p.add_argument("--classifier", help="classifier REF[:ROLE], e.g. mnist:classifier-pgd (default: the model's classifier)")
    p.add_argument("--transfer-from", help="torch classifier REF[:ROLE] attacked by --attack transfer (default: the evaluated classifier; "
                   "for an ONNX classifier, the model's own)")
    p.add_argument("--defense", default="ebm", help="ebm (default), none, or a cheap baseline: binarize, noise-median")
    p.add_argument("--input-classifier", help="torch classifier REF[:ROLE] that also reads the unpurified input (ebm defense): each copy's "
                   "output is log p(purified) + W log p(input), attacked through both")
    p.add_argument("--input-weight", type=float, default=1.0, help="W, the weight of --input-classifier (default 1)")
    p.add_argument("--attack", default="bpda-eot", help="none, transfer, bpda-eot (default), adaptive, torchattacks:NAME")
    p.add_argument("--norm", choices=["linf", "l2"], default="linf")
    p.add_argument("--eps", type=float, help="attack radius (images in [0, 1])")
    p.add_argument("--eps-list", type=_floats, help="several radii, comma-separated")
    p.add_argument("--n", type=int, default=100, help="test images (default 100)")
    p.add_argument("--offset", type=int, default=0, help="first test index (default 0)")
    p.add_argument("--steps", type=int, help="Langevin steps of the defense (default: the model's)")
    p.add_argument("--steps-list", type=_ints, help="verify at several K (attacks none/transfer)")
    p.add_argument("--replicates", type=int, default=8, help="R, copies of the full defense (default 8)")
    p.add_argument("--replicates-list", type=_ints, help="verify at several R (attacks none/transfer)")
    p.add_argument("--eot", type=int, default=8, help="copies per attack gradient (default 8)")
    p.add_argument("--attack-steps", type=int, default=50, help="PGD iterations (default 50)")
    p.add_argument("--step-size", type=float, help="PGD step (default 2.5 * eps / attack steps)")
    p.add_argument("--restarts", type=int, default=1)
    p.add_argument("--loss", choices=["ce", "margin"], default="ce")
    p.add_argument("--surrogate-steps", type=int, help="chain length differentiated by the adaptive attack (default: full)")
    p.add_argument("--verify-candidates", type=int, default=3, help="fooling iterates re-checked per image (default 3)")
    p.add_argument("--stop-after", type=int,
                   help="stop attacking an image after this many consecutive iterates the attack's EOT logits misclassify (default: never)")
    p.add_argument("--natural-from", help="result folder of an earlier run with the same defense: reuse its clean-image results")
    p.add_argument("--survivors-of", action="append", metavar="DIR",
                   help="result folder of an earlier attack on the same defense (repeatable): attack only the images it left correct "
                   "and record the others with its result, as AutoAttack chains its attacks")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeding", choices=["image", "batch"], default="image",
                   help="image (default): an image's attack is the same in any batch or shard; batch: one random stream per batch, "
                   "as folders written before this flag (to resume them)")
    p.add_argument("--shard", type=_shard, default=(0, 1), help="i/n: evaluate every n-th image from the i-th")
    p.add_argument("--out", required=True, help="result folder (resumes if it holds the same evaluation)")
    p.add_argument("--no-progress", action="store_true")
    add_data_option(p)
    add_runtime_options(p)
    p.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    device = apply_runtime(args)
    eps = args.eps_list or ([args.eps] if args.eps is not None else None)
    if eps is None and args.attack != "none":
        raise SettingsError("--eps or --eps-list is required for an attack")
    settings = EvalSettings(
        model=args.model, classifier=args.classifier, transfer_from=args.transfer_from, defense=args.defense,
        input_classifier=args.input_classifier, input_weight=args.input_weight, attack=args.attack,
        norm=args.norm, eps=eps or [0.0],
        n=args.n, offset=args.offset, steps=args.steps, steps_list=args.steps_list, replicates=args.replicates,
        replicates_list=args.replicates_list, eot=args.eot, attack_steps=args.attack_steps, step_size=args.step_size,
        restarts=args.restarts, loss=args.loss, surrogate_steps=args.surrogate_steps, verify_candidates=args.verify_candidates, stop_after=args.stop_after,
        natural_from=args.natural_from, survivors_of=args.survivors_of,
        batch_size=args.batch_size, seed=args.seed, seeding=args.seeding, shard=args.shard, data_dir=args.data_dir, device=device,
    )
    report = evaluate(settings, args.out, progress=not args.no_progress)
    print((Path(args.out) / "report.md").read_text())
    return 0 if report["sanity"]["passed"] else 3


def run_merge(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="ebm-purify evaluate merge", description="join evaluation shard folders into one report")
    p.add_argument("folders", nargs="+", type=Path)
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    merge(args.folders, args.out)
    print((args.out / "report.md").read_text())
    return 0


def run_table(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="ebm-purify evaluate table", description="one Markdown/JSON results table from evaluation folders")
    p.add_argument("folders", nargs="+", type=Path)
    p.add_argument("--out", type=Path, help="write FILE.md and FILE.json, and the Pareto view as FILE-pareto.md/.json (default: print only)")
    p.add_argument("--speed", type=Path, help="bench/purify_speed.py JSON: seconds per defended prediction at its batch-64 rate")
    args = p.parse_args(argv)
    rows = table_rows(args.folders)
    pareto = pareto_rows(rows, purify_rates(args.speed) if args.speed else None)
    text, pareto_text = markdown_table(rows), markdown_pareto(pareto)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2))
        stem = args.out.with_name(args.out.name + "-pareto")
        stem.with_suffix(".md").write_text(pareto_text)
        stem.with_suffix(".json").write_text(json.dumps(pareto, indent=2))
    print(text, end="")
    print("\n" + pareto_text, end="")
    return 0


def run_compare(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="ebm-purify evaluate compare",
                                description="two defenses on the same images: per image robust under every attack of its side's folders, "
                                "the images one side keeps and the other loses, and the exact McNemar test")
    p.add_argument("folders", nargs="+", type=Path, help="evaluation folders of defense A (one defended pipeline, any attacks)")
    p.add_argument("--against", nargs="+", type=Path, required=True, help="evaluation folders of defense B")
    p.add_argument("--eps", type=float, required=True, help="the radius to compare at")
    p.add_argument("--out", type=Path, help="also write the comparison as JSON, with the discordant image indices")
    args = p.parse_args(argv)
    result = compare(args.folders, args.against, args.eps)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown_comparison(result), end="")
    return 0


SUBCOMMANDS = {"merge": run_merge, "table": run_table, "compare": run_compare}


def maybe_subcommand(argv: list[str]) -> int | None:
    """``evaluate merge|table|compare ...`` are routed here before the main parser sees them."""
    if len(argv) >= 2 and argv[0] == "evaluate" and argv[1] in SUBCOMMANDS:
        try:
            return SUBCOMMANDS[argv[1]](argv[2:])
        except SettingsError as err:
            print(f"ebm-purify evaluate {argv[1]}: error: {err}", file=sys.stderr)
            return 2
    return None
