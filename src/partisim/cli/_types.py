"""Argument types shared by the CLI's commands: whole numbers, seconds, ports, numbers
a person types (a decimal comma or point), task states and output formats in Spanish,
each refused with a Spanish reason."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = [
    "FORMAT_BY_SUFFIX",
    "STATUS_WORDS",
    "number",
    "output_format",
    "port",
    "positive_int",
    "results_format",
    "seconds",
    "status",
]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"debe ser un número entero, se recibió {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"debe ser al menos 1, se recibió {value}")
    return value


def seconds(text: str) -> float:
    from partisim.sim.numbers import parse_number

    try:
        value = parse_number(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"debe ser un número de segundos, se recibió {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"debe ser mayor que 0, se recibió {text}")
    return value


def port(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"debe ser un número de puerto, se recibió {text!r}") from None


def number(text: str) -> float:
    from partisim.sim.numbers import parse_number

    try:  # a decimal comma or point: --dt 0,05 and --dt 0.05
        return parse_number(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"debe ser un número, se recibió {text!r}") from None


#: --status in Spanish -> the state's name in the API
STATUS_WORDS = {
    "en-cola": "queued",
    "en-curso": "running",
    "éxito": "success",
    "fallida": "failed",
    "cancelada": "cancelled",
}


def status(text: str) -> str:
    word = text.strip().lower()
    word = {"exito": "éxito", "fallidas": "fallida", "canceladas": "cancelada"}.get(word, word)
    if word in STATUS_WORDS.values():
        return word
    if word in STATUS_WORDS:
        return STATUS_WORDS[word]
    raise argparse.ArgumentTypeError(f"estado desconocido {text!r}; elija entre {', '.join(STATUS_WORDS)}")


def output_format(text: str) -> str:
    word = {"tabla": "table"}.get(text.strip().lower(), text.strip().lower())
    if word not in ("table", "csv", "json", "ndjson"):
        raise argparse.ArgumentTypeError(f"formato desconocido {text!r}; elija entre tabla, csv, json, ndjson")
    return word


#: the format a file's extension asks for, with ``-o`` and no ``--format``
FORMAT_BY_SUFFIX = {".csv": "csv", ".json": "json", ".ndjson": "ndjson", ".jsonl": "ndjson"}


def results_format(asked: str | None, output: str | None) -> str:
    """The format to write: the one asked for; with ``-o`` alone, the one the file's
    extension names (a table is never silently printed instead of the file)."""
    from partisim.errors import PartisimError

    if output is None:
        return asked or "table"
    if asked == "table":
        raise PartisimError("-o escribe un archivo CSV o JSON; la tabla solo se muestra en el terminal")
    fmt = FORMAT_BY_SUFFIX.get(Path(output).suffix.lower())
    if asked is not None:
        if fmt is not None and fmt != asked:  # a CSV in a .json file would mislead whoever opens it
            raise PartisimError(
                f"--format {asked} no corresponde a la extensión de {output} ({fmt}): "
                f"cambie una de las dos, o quite --format"
            )
        return asked
    if fmt is None:
        raise PartisimError(
            f"no se sabe qué formato escribir en {output}: use la extensión .csv, .json o .ndjson, "
            "o indique --format csv|json|ndjson"
        )
    return fmt
