"""The `partisim` command: parses arguments and calls the library, nothing else.

Each command group lives in its own module exposing `register(subparsers)`,
which adds its subcommands with `set_defaults(func=handler)`; a handler takes
the parsed namespace and returns the exit code. Building the parser imports no
heavy module (NumPy, pydantic, rich, httpx): each handler imports what it uses.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from partisim import __version__
from partisim.cli import _spanish
from partisim.cli._commands import COMMANDS
from partisim.cli._output import fail
from partisim.errors import PartisimError

__all__ = ["main", "build_parser", "suggest"]

COMMAND_MODULES: tuple[str, ...] = tuple(dict.fromkeys(module for module, _ in COMMANDS.values()))


class _Ignored:
    """Takes any argparse call (add_argument, groups, set_defaults...) and keeps nothing."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self


class _OnlyOne:
    """Stands for the subparsers action while the parser is built for one command: the
    others get an empty parser (their name and help line, for the command list and
    for suggestions) and their arguments go nowhere, so a command pays only for its own."""

    def __init__(self, action: argparse._SubParsersAction[argparse.ArgumentParser], wanted: str) -> None:
        self.action = action
        self.wanted = wanted

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser | _Ignored:
        if name == self.wanted:
            return self.action.add_parser(name, **kwargs)
        self.action.add_parser(name, help=kwargs.get("help"), add_help=False)
        return _Ignored()


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``only``, every command is listed but only that one gets
    its options (``""``: none, enough for ``partisim --help``)."""
    _spanish.install()
    parser = argparse.ArgumentParser(
        prog="partisim",
        description="Simulaciones de colisiones de partículas distribuidas en una flota de máquinas.",
    )
    parser.add_argument(
        "--version", action="version", version=f"partisim {__version__}", help="muestra la versión y sale"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMANDO", title="comandos")
    if only is None:
        for module in COMMAND_MODULES:
            importlib.import_module(f"partisim.cli.{module}").register(subparsers)
        return _wrapping(parser)
    wanted = COMMANDS.get(only, ("", ""))[0]
    for name, (module, text) in COMMANDS.items():
        if module != wanted:
            subparsers.add_parser(name, help=text, add_help=False)  # listed, never parsed
        elif name == only:  # its module adds it (its siblings stay names only)
            importlib.import_module(f"partisim.cli.{module}").register(_OnlyOne(subparsers, only))
    return _wrapping(parser)


def _wrapping(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Every command's help wraps at words to the terminal's width (`_spanish.TextFormatter`)."""
    for command in _subparsers(parser).values():
        if command.formatter_class is argparse.HelpFormatter:
            command.formatter_class = _spanish.TextFormatter
    return parser


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def suggest(word: str, candidates: Sequence[str]) -> str | None:
    """The candidate closest to a mistyped ``word``, if one is close enough."""
    import difflib

    found = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return found[0] if found else None


#: commands that open a port are never offered as a guess: the listing command instead
_LISTING_INSTEAD = {"worker": "ping", "serve": "queue"}


def _looks_like_option(arg: str) -> bool:
    return arg.startswith("-") and len(arg) > 1 and not arg[1].isdigit() and arg[1] != "."


def _known(arg: str, options: Sequence[str]) -> bool:
    """An option of the command, written whole or as argparse accepts it (``--part``
    for ``--particles``, ``-n5``, ``--steps=3``)."""
    flag = arg.split("=", 1)[0]
    if flag in options:
        return True
    if flag.startswith("--"):
        return any(o.startswith(flag) for o in options)
    return flag[:2] in options


def _unknown(parser: argparse.ArgumentParser, argv: Sequence[str]) -> int | None:
    """A mistyped command or option: one Spanish line that names the closest valid one,
    under the usage of the command it belongs to (exit code 2). None when all is known."""
    commands = _subparsers(parser)
    words = [a for a in argv if not a.startswith("-")]
    command = words[0] if words else None
    if command is not None and command not in commands and argv and argv[0] == command:
        close = suggest(command, list(commands))
        # a guess never starts a server: `workers` is someone who wants the list of workers
        hint = f"; ¿quiso decir «{close}»?" if close else f"; comandos: {', '.join(commands)}"
        if close in _LISTING_INSTEAD:
            listing = _LISTING_INSTEAD[close]
            hint = f"; ¿quiso decir «{listing}» ({COMMANDS[listing][1]})? Para arrancar uno: partisim {close}"
        parser.print_usage(sys.stderr)
        print(f"partisim: error: comando desconocido «{command}»{hint}", file=sys.stderr)
        return 2
    sub = commands.get(command or "")
    if sub is None or command is None:
        return None
    rest = list(argv[argv.index(command) + 1 :])
    while nested := _subparsers(sub):  # `images build ...`: the options are the inner command's
        word = next((a for a in rest if not a.startswith("-")), None)
        if word not in nested:
            return None  # argparse says what is missing or invalid
        sub, rest = nested[word], rest[rest.index(word) + 1 :]
    options = [o for action in sub._actions for o in action.option_strings]
    if "--" in rest:
        rest = rest[: rest.index("--")]
    flags = [a.split("=", 1)[0] for a in rest if _looks_like_option(a) and not _known(a, options)]
    if not flags:
        return None
    options = [o for o in options if o.startswith("--")]
    parts = []
    for flag in flags:
        close = suggest(flag, options)
        parts.append(f"opción desconocida {flag}" + (f"; ¿quiso decir {close}?" if close else ""))
    sub.print_usage(sys.stderr)
    print(f"{sub.prog}: error: {' · '.join(parts)}", file=sys.stderr)
    return 2


#: exit code when the reader of the output went away (128 + SIGPIPE, as a shell reports it)
EXIT_CLOSED_PIPE = 141


def _quiet_closed_pipe() -> int:
    """The reader of stdout went away (``partisim results --format json | head``): point
    stdout at the null device so that the interpreter's last flush stays silent too."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real stdout (tests capture it): nothing to flush
        pass
    return EXIT_CLOSED_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the reader of its output may leave at any time (no traceback)."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # a pipe closed after the last write shows here
        return code
    except BrokenPipeError:
        return _quiet_closed_pipe()
    except SystemExit as exc:  # rich exits by itself on a closed pipe; argparse on --help
        if isinstance(exc.__context__, BrokenPipeError):
            return _quiet_closed_pipe()
        raise


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # only the command asked for gets its options built: the rest are names in a list
    parser = build_parser(only=next((a for a in argv if not a.startswith("-")), ""))
    # argparse would name an unknown flag under the top-level usage, without a hint
    code = _unknown(parser, argv)
    if code is not None:
        return code
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
    except ValueError as exc:  # a pydantic ValidationError that escaped: still Spanish, no traceback
        from pydantic import ValidationError

        from partisim.errors import explain_validation

        if isinstance(exc, ValidationError):
            return fail(f"respuesta inesperada: {explain_validation(exc.errors())[0]}")
        raise
