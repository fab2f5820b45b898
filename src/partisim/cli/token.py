"""``partisim token``: print a new random token for serve and the workers."""

from __future__ import annotations

import argparse

from partisim.cli._commands import command_help

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "token",
        help=command_help("token"),
        description="Imprime un token aleatorio (256 bits) para --token-file o PARTISIM_TOKEN de "
        "partisim serve y de los workers. Guárdelo en un archivo que solo usted pueda leer, por "
        "ejemplo: partisim token > token.txt && chmod 600 token.txt",
    )
    parser.set_defaults(func=_token)


def _token(args: argparse.Namespace) -> int:
    from partisim.fleet.tokens import new_token

    print(new_token())
    return 0
