"""Subcommands of ``ebm-purify``; each module has ``register(subparsers)``."""

from ebm_purify.commands import demo, purify, train

COMMANDS = [train, purify, demo]
