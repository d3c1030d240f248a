"""The ``ebm-purify`` command line: thin subcommands over ``purifier``, ``attacks`` and ``service``."""
