"""Entry point of ``ebm-purify``: builds the subcommand parser and turns library errors into a
one-line message and a non-zero exit (2 for bad input, 1 for a file system error such as an
unwritable output folder, 130 when interrupted)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ebm_purify.commands import COMMANDS
from ebm_purify.commands.evaluate import maybe_subcommand
from purifier.errors import PurifierError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ebm-purify",
        description="Adversarial purification with midrun energy-based models: train, purify, evaluate, export, serve.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    routed = maybe_subcommand(argv)
    if routed is not None:
        return routed
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except PurifierError as err:
        print(f"ebm-purify {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"ebm-purify {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ebm-purify {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
