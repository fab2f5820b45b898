"""The users' ETAPA-6 task files, read as they are.

Their files come in two wrappers: ``{"generated_at", "task_count", "source",
"description", "tasks"}`` (their generator) and ``{"metadata": {"creation_date",
"description", "total_tasks", "created_by", "version"}, "tasks"}`` (their hand-written
examples). Each task is ``{"task_id", "algorithm", "parameters", "priority",
"description"}``, plus ``created_at``, ``status`` and ``source`` in generated files.

Here a task becomes a `TaskSpec`: ``algorithm`` is the engine, ``parameters`` its
parameters (either spelling), ``priority`` a number or ``high``/``medium``/``low``, and
``task_id`` the task's label. A count in the wrapper that disagrees with the list is a
warning; a repeated ``task_id`` or an unknown key is an error that names it.
"""

from __future__ import annotations

from collections.abc import Mapping

from partisim.errors import ParamsError

__all__ = [
    "PRIORITY_WORDS",
    "MAX_PRIORITY",
    "MAX_LABEL",
    "is_etapa6_task",
    "etapa6_wrapper",
    "parse_priority",
    "parse_label",
    "task_fields",
]

#: what the words of their files mean on partisim's scale (higher runs first)
PRIORITY_WORDS: dict[str, int] = {"high": 10, "medium": 5, "low": 1, "alta": 10, "media": 5, "baja": 1}
MAX_PRIORITY = 1_000_000
#: longest label kept (a ``task_id`` of their files, or ``label`` of ours)
MAX_LABEL = 200

_GENERATED_KEYS = ("generated_at", "task_count", "source", "description", "tasks")
_METADATA_KEYS = ("creation_date", "description", "total_tasks", "created_by", "version")
_TASK_KEYS = ("task_id", "algorithm", "parameters", "priority", "description", "created_at", "status", "source")


def is_etapa6_task(obj: object) -> bool:
    """Whether a task object is written in their format (it names ``algorithm`` or
    ``parameters``, which partisim's own format calls ``benchmark`` and ``params``)."""
    return isinstance(obj, Mapping) and ("algorithm" in obj or "parameters" in obj)


def etapa6_wrapper(data: Mapping[str, object], source: str) -> tuple[list[object], list[str]] | None:
    """``(tasks, warnings)`` if ``data`` is one of their wrappers, else None.

    Raises `ParamsError` naming an unknown key of the wrapper or of its metadata."""
    if "tasks" not in data or not ({"generated_at", "task_count", "metadata"} & set(data)):
        return None
    if "metadata" in data:
        allowed: tuple[str, ...] = ("metadata", "tasks")
        count_key = "total_tasks"
        metadata = data["metadata"]
        if not isinstance(metadata, Mapping):
            raise ParamsError(f"{source}: metadata debe ser un objeto JSON", field="metadata")
        unknown = [k for k in metadata if k not in _METADATA_KEYS]
        if unknown:
            raise ParamsError(
                f"{source}: clave desconocida {unknown[0]!r} en metadata; válidas: {', '.join(_METADATA_KEYS)}",
                field=str(unknown[0]),
            )
        declared = metadata.get(count_key)
    else:
        allowed = _GENERATED_KEYS
        count_key = "task_count"
        declared = data.get(count_key)
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise ParamsError(
            f"{source}: clave desconocida {unknown[0]!r}; un archivo de ETAPA 6 admite {', '.join(allowed)}",
            field=str(unknown[0]),
        )
    tasks = data["tasks"]
    if not isinstance(tasks, list):
        raise ParamsError(f"{source}: tasks debe ser una lista de tareas", field="tasks")
    warnings: list[str] = []
    if declared is not None and declared != len(tasks):
        warnings.append(
            f"{source}: {count_key} dice {declared!r} pero el archivo trae {len(tasks)} tareas; "
            f"se encolan las {len(tasks)}"
        )
    return tasks, warnings


def parse_priority(value: object, where: str) -> int:
    """A number (or a numeric text such as ``"5"``), or ``high``/``medium``/``low``."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in PRIORITY_WORDS:
            return PRIORITY_WORDS[text]
        try:
            value = int(text)
        except ValueError:
            raise ParamsError(
                f"{where}: priority debe ser un número entero o high, medium o low (recibido {value!r})",
                field="priority",
            ) from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamsError(
            f"{where}: priority debe ser un número entero o high, medium o low (recibido {value!r})", field="priority"
        )
    if not -MAX_PRIORITY <= value <= MAX_PRIORITY:
        raise ParamsError(f"{where}: priority debe estar entre {-MAX_PRIORITY} y {MAX_PRIORITY}", field="priority")
    return value


def parse_label(value: object, where: str, key: str) -> str | None:
    """A task's label: text, or an integer id (kept as its digits)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ParamsError(f"{where}: {key} debe ser un texto no vacío o un número entero", field=key)
    if len(value) > MAX_LABEL or any(ord(c) < 32 for c in value):
        raise ParamsError(
            f"{where}: {key} debe tener como mucho {MAX_LABEL} caracteres, sin caracteres de control", field=key
        )
    return value


def task_fields(obj: Mapping[str, object], where: str) -> dict[str, object]:
    """One of their task objects as the fields of partisim's own format (``benchmark``,
    ``params``, ``priority``, ``label``), checked for unknown keys."""
    unknown = [k for k in obj if k not in _TASK_KEYS]
    if unknown:
        raise ParamsError(
            f"{where}: clave desconocida {unknown[0]!r}; una tarea de ETAPA 6 admite {', '.join(_TASK_KEYS)}",
            field=str(unknown[0]),
        )
    if "algorithm" not in obj:
        raise ParamsError(f"{where}: falta algorithm (python, cython, benchmark.py o benchmark_cython.py)")
    for key in ("description", "created_at", "status", "source"):
        if obj.get(key) is not None and not isinstance(obj[key], str):
            raise ParamsError(f"{where}: {key} debe ser un texto", field=key)
    fields: dict[str, object] = {"benchmark": obj["algorithm"], "params": obj.get("parameters") or {}}
    if obj.get("priority") is not None:
        fields["priority"] = obj["priority"]
    if obj.get("task_id") is not None:
        fields["label"] = obj["task_id"]
    return fields
