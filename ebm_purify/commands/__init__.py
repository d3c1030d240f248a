"""Subcommands of ``ebm-purify``; each module has ``register(subparsers)``."""

from ebm_purify.commands import train

COMMANDS = [train]
