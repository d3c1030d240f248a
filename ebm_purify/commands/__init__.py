"""Subcommands of ``ebm-purify``; each module has ``register(subparsers)``."""

from ebm_purify.commands import demo, evaluate, export, purify, serve, train

COMMANDS = [train, purify, evaluate, export, serve, demo]
