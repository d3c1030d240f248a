"""Subcommands of ``ebm-purify``; each module has ``register(subparsers)``."""

from ebm_purify.commands import demo, evaluate, purify, serve, train

COMMANDS = [train, purify, evaluate, serve, demo]
