"""The one exception hierarchy of partisim, and the one translator of validation errors.

Every error a user can meet is a `PartisimError` whose message is Spanish and names
what is wrong. HTTP codes are mapped to these classes in one place on each side:
`worker.app` (exception -> status) and `orchestrator.client` (status -> exception).
pydantic's validation errors become Spanish sentences in one place, `explain_validation`.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a type only: importing errors stays free of pydantic
    from pydantic_core import ErrorDetails

__all__ = [
    "PartisimError",
    "ConfigError",
    "ParamsError",
    "WorkerError",
    "WorkerUnavailable",
    "TaskRejected",
    "AuthError",
    "TaskNotStarted",
    "TaskTimedOut",
    "WorkerFailed",
    "OutputError",
    "ServerUnavailable",
    "ServerError",
    "BatchNotFound",
    "LocalWorkersError",
    "ErrorLocation",
    "ImageError",
    "CheckFailed",
    "MenuExit",
    "explain_validation",
    "StorageFull",
    "explain_json_error",
    "explain_os_error",
    "json_type_name",
]


class PartisimError(Exception):
    """Base class: `str(exc)` is a message fit for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(PartisimError):
    """config_workers.json (or another settings file) is missing or invalid."""


class ParamsError(PartisimError):
    """Simulation parameters or the benchmark name are invalid (HTTP 422).

    `field` names the parameter (as the input named it: field name or API alias) when
    one is to blame, so a form can mark it without parsing the message; `reason` is
    the message without that name, so each front end can name the field the way its
    user typed it (``--particles: debe ser >= 1``)."""

    def __init__(self, message: str, field: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason

    def renamed(self, names: Mapping[str, str]) -> ParamsError:
        """This error with its field called by the name in ``names`` (if there is one)."""
        name = names.get(self.field or "")
        if name is None or self.reason is None:
            return self
        return ParamsError(f"{name}: {self.reason}", field=self.field, reason=self.reason)


class WorkerError(PartisimError):
    """Base for what goes wrong while talking to a worker."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class WorkerUnavailable(WorkerError):
    """The worker cannot be reached (connection refused, reset, DNS...)."""


class TaskRejected(WorkerError):
    """The worker refused the request (4xx): retrying elsewhere will not help."""


class AuthError(TaskRejected):
    """Missing or wrong bearer token (HTTP 401)."""


class TaskNotStarted(WorkerError):
    """The attempt never started where it was sent (the worker was busy, 429, or never
    received it): put the task back without counting the attempt."""


class TaskTimedOut(WorkerError):
    """The computation exceeded its deadline (HTTP 504 or a read timeout)."""


class WorkerFailed(WorkerError):
    """The worker answered 5xx: the task may succeed on another attempt."""


class OutputError(PartisimError):
    """A file partisim was asked to write (export, report, inbox note) could not be written."""


class StorageFull(PartisimError):
    """The disk holding serve's database is full (HTTP 507): nothing was written, retry later."""

    def __init__(self, path: str = "") -> None:
        where = f" ({path})" if path else ""
        super().__init__(
            f"el disco de la base de datos de partisim serve está lleno{where}: no se guardó nada; "
            "libere espacio y reintente (serve sigue funcionando y se recupera solo)"
        )


class ServerUnavailable(PartisimError):
    """Nothing answers at the address of `partisim serve`."""

    def __init__(self, url: str) -> None:
        super().__init__(f"el servidor no está en marcha en {url}; inícielo con `partisim serve`")
        self.url = url


class ServerError(PartisimError):
    """`partisim serve` answered with an error (its message is already Spanish)."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class BatchNotFound(PartisimError):
    """No batch of the queue has this id (the same message from wait, results and report)."""

    def __init__(self, batch: str, recent: Sequence[str] = ()) -> None:
        hint = f"; lotes recientes: {', '.join(recent)}" if recent else ""
        super().__init__(f"no existe el lote {batch}{hint}")
        self.batch = batch


class LocalWorkersError(PartisimError):
    """The local workers of `partisim demo --local` could not be started."""


class ImageError(PartisimError):
    """A wheelhouse or Docker image could not be made; `code` is the CLI exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class CheckFailed(PartisimError):
    """One check of the communication suite did not meet its expectation."""


class MenuExit(Exception):
    """Not an error: leave the interactive menu with this exit code (end of input,
    Ctrl-C at a prompt, or option Salir)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


# -- validation errors in Spanish ---------------------------------------------------

#: pydantic error type -> Spanish text (formatted with the error's ``ctx``)
_MESSAGES = {
    "greater_than_equal": "debe ser >= {ge}",
    "greater_than": "debe ser > {gt}",
    "less_than_equal": "debe ser <= {le}",
    "less_than": "debe ser < {lt}",
    "int_parsing_size": "número demasiado grande",
    "float_from_int": "debe ser un número",
    "too_short": "demasiado corto (mínimo {min_length})",
    "too_long": "demasiado largo (máximo {max_length})",
    "url_parsing": "dirección inválida",
    "url_scheme": "la dirección debe empezar por http:// o https://",
    "none_required": "debe ser null",
    "union_tag_invalid": "tipo desconocido",
    "is_instance_of": "tipo inválido",
    "int_type": "debe ser un número entero",
    "int_parsing": "debe ser un número entero",
    "int_from_float": "debe ser un número entero",
    "float_type": "debe ser un número",
    "float_parsing": "debe ser un número",
    "finite_number": "debe ser un número finito",
    "bool_type": "debe ser verdadero o falso",
    "bool_parsing": "debe ser verdadero o falso",
    "string_type": "debe ser un texto",
    "string_too_short": "demasiado corto (mínimo {min_length})",
    "string_too_long": "demasiado largo (máximo {max_length})",
    "string_pattern_mismatch": "formato inválido",
    "list_type": "debe ser una lista",
    "dict_type": "debe ser un objeto JSON (clave: valor)",
    "model_type": "debe ser un objeto JSON (clave: valor)",
    "model_attributes_type": "debe ser un objeto JSON (clave: valor)",
    "literal_error": "debe ser uno de: {expected}",
    "enum": "debe ser uno de: {expected}",
    "extra_forbidden": "parámetro desconocido",
    "missing": "falta este campo",
    "json_invalid": "JSON inválido",
}


#: where a validation error points: field names and list indices, outermost first
ErrorLocation = tuple[int | str, ...]


def _where(loc: ErrorLocation) -> str:
    text = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc)
    return text.replace(".[", "[")


def explain_validation(
    errors: Iterable[ErrorDetails],
    *,
    label: Callable[[ErrorLocation], str] = _where,
    drop: frozenset[str] = frozenset({"body", "query", "path", "header"}),
) -> tuple[str, str | None]:
    """A Spanish one-line message for pydantic's (or FastAPI's) validation errors, and
    the first field they name.

    `label` turns an error location into the name the user knows (e.g. an API alias);
    location parts in `drop` (FastAPI's ``body``/``query``...) are left out. A
    ``value_error`` raised by our own validators is already Spanish and kept as is."""
    parts: list[str] = []
    first: str | None = None
    for err in errors:
        loc = tuple(p for p in err.get("loc", ()) if p not in drop)
        kind = str(err.get("type", ""))
        ctx = err.get("ctx") or {}
        if kind == "value_error":  # from our own validators: already Spanish
            text = str(ctx.get("error", err.get("msg", "")))
            parts.append(f"{label(loc)}: {text}" if loc else text)
            continue
        template = _MESSAGES.get(kind)
        try:
            # 0.0 -> 0, 1000000 -> 1000000: limits as the user wrote them
            shown_ctx = {k: f"{v:g}" if isinstance(v, float) else v for k, v in ctx.items()}
            text = template.format(**shown_ctx) if template else "valor inválido"
        except (KeyError, IndexError):
            text = "valor inválido"
        if first is None and loc:
            first = str(loc[0])
        shown = "" if kind == "missing" else repr(err.get("input"))
        where = label(loc) if loc else ""
        sentence = f"{where}: {text}" if where else text
        parts.append(sentence + (f" (recibido {shown})" if shown and len(shown) < 60 else ""))
    return "; ".join(parts) or "valor inválido", first


# -- other errors whose own text is English ----------------------------------------------

#: the messages of Python's JSON decoder, start -> Spanish
_JSON_MESSAGES = (
    ("Expecting property name enclosed in double quotes", "se esperaba un nombre de campo entre comillas dobles"),
    ("Expecting value", "se esperaba un valor"),
    ("Expecting ',' delimiter", "falta una coma"),
    ("Expecting ':' delimiter", "faltan los dos puntos (:) tras el nombre del campo"),
    ("Extra data", "hay texto de más tras el final del JSON"),
    ("Unterminated string", "texto sin cerrar (faltan las comillas finales)"),
    ("Invalid control character", "carácter de control dentro de un texto"),
    ("Invalid \\escape", "secuencia de escape inválida"),
    ("Invalid \\uXXXX escape", "secuencia \\u inválida"),
    ("Illegal trailing comma", "coma sobrante antes del cierre"),
)


def explain_json_error(exc: json.JSONDecodeError) -> str:
    """``json.JSONDecodeError`` in Spanish: where, and what was expected there."""
    msg = str(exc.msg or "")
    text = next((es for en, es in _JSON_MESSAGES if msg.startswith(en)), "formato inválido")
    return f"JSON inválido en la línea {exc.lineno}, columna {exc.colno}: {text}"


_OS_MESSAGES = {
    errno.ENOENT: "no existe",
    errno.EACCES: "permiso denegado",
    errno.EPERM: "operación no permitida",
    errno.EISDIR: "es una carpeta, no un archivo",
    errno.ENOTDIR: "una parte de la ruta no es una carpeta",
    errno.EEXIST: "ya existe",
    errno.ENOSPC: "no queda espacio en el disco",
    errno.EROFS: "el sistema de archivos es de solo lectura",
    errno.ENAMETOOLONG: "nombre demasiado largo",
    errno.EMFILE: "demasiados archivos abiertos",
    errno.EADDRINUSE: "la dirección ya está en uso (¿otro programa en ese puerto?)",
    errno.EADDRNOTAVAIL: "esa dirección no pertenece a esta máquina",
    errno.ECONNREFUSED: "conexión rechazada (nada escucha en ese puerto)",
    errno.ECONNRESET: "el otro extremo cortó la conexión",
    errno.ETIMEDOUT: "tiempo de espera agotado",
    errno.EHOSTUNREACH: "máquina inalcanzable",
    errno.ENETUNREACH: "red inalcanzable",
}


def explain_os_error(exc: BaseException) -> str:
    """An ``OSError`` in Spanish (its ``strerror`` is the C library's English)."""
    code = getattr(exc, "errno", None)
    if code in _OS_MESSAGES:
        return _OS_MESSAGES[code]
    if isinstance(code, int):
        return f"error del sistema {errno.errorcode.get(code, code)}"
    return "error del sistema"


_JSON_TYPES = {
    dict: "un objeto",
    list: "una lista",
    str: "un texto",
    bool: "un valor lógico",
    int: "un número",
    float: "un número",
    type(None): "null",
}


def json_type_name(value: object) -> str:
    """What a decoded JSON value is, in Spanish ("una lista", "un texto"...)."""
    return _JSON_TYPES.get(type(value), "otro tipo de valor")
