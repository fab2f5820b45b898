"""The `partisim` command: parses arguments and calls the library, nothing else.

Each command group lives in its own module exposing `register(subparsers)`,
which adds its subcommands with `set_defaults(func=handler)`; a handler takes
the parsed namespace and returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from partisim import __version__
from partisim.cli import _spanish
from partisim.cli._output import fail
from partisim.errors import PartisimError

__all__ = ["main", "build_parser"]

COMMAND_MODULES: tuple[str, ...] = ("run", "theory", "orchestrator", "serve", "worker", "images")


def build_parser() -> argparse.ArgumentParser:
    _spanish.install()
    parser = argparse.ArgumentParser(
        prog="partisim",
        description="Simulaciones de colisiones de partículas distribuidas en una flota de máquinas.",
    )
    parser.add_argument("--version", action="version", version=f"partisim {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMANDO", title="comandos")
    for name in COMMAND_MODULES:
        importlib.import_module(f"partisim.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except PartisimError as exc:
        return fail(exc.message)
    except KeyboardInterrupt:
        print("\nInterrumpido.", file=sys.stderr)
        return 130
