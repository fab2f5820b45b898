"""The limits of ``partisim serve`` on the command line: what slow clients, many
connections and large bodies get (`ServeOptions`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypedDict

from partisim.serve.options import ServeOptions

__all__ = ["add_limit_options", "limit_options"]


def _positive(kind: type[float] | type[int]) -> Callable[[str], float | int]:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"debe ser un número mayor que 0, se recibió {text!r}") from None
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"debe ser un número finito mayor que 0, se recibió {text}")
        return value

    return parse


def add_limit_options(p: argparse.ArgumentParser, defaults: ServeOptions) -> None:
    p.add_argument(
        "--request-timeout",
        type=_positive(float),
        default=defaults.request_timeout,
        metavar="S",
        help="segundos para recibir las cabeceras y el cuerpo de una petición; después, 408 y se cierra "
        f"la conexión (por defecto {defaults.request_timeout:g}; no limita el flujo de eventos del panel)",
    )
    p.add_argument(
        "--max-connections",
        type=_positive(int),
        default=defaults.max_connections,
        metavar="N",
        help=f"conexiones abiertas como máximo (los paneles abiertos cuentan); más allá, 503 "
        f"(por defecto {defaults.max_connections})",
    )
    p.add_argument(
        "--max-body-mb",
        type=_positive(float),
        default=defaults.max_body_bytes / 2**20,
        metavar="MB",
        help=f"tamaño máximo del cuerpo de una petición, en MiB; más allá, 413 "
        f"(por defecto {defaults.max_body_bytes // 2**20})",
    )


class LimitOptions(TypedDict):
    """The `ServeOptions` fields the limit options set."""

    request_timeout: float
    max_connections: int
    max_body_bytes: int


def limit_options(args: argparse.Namespace) -> LimitOptions:
    """The `ServeOptions` fields the limit options set."""
    return {
        "request_timeout": args.request_timeout,
        "max_connections": args.max_connections,
        "max_body_bytes": int(args.max_body_mb * 2**20),
    }
