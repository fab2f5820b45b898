"""What every wire model shares: the base model, finite floats, task states, task ids
and the engines' wire names."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Finite",
    "TaskStatus",
    "QueueStatus",
    "STATUS_LABELS",
    "PENDING_STATES",
    "FINAL_STATES",
    "TASK_ID_MAX",
    "task_id_problem",
    "SOFTWARE",
    "WIRE_NAMES",
    "wire_name",
]


#: a float that is never NaN nor +-Infinity (JSON has neither)
Finite = Annotated[float, Field(allow_inf_nan=False)]

#: states of a task on a worker (``GET /tasks/{id}``)
TaskStatus = Literal["queued", "running", "success", "failed", "timeout", "cancelled"]
#: states of a task in the queue of ``partisim serve`` (``GET /api/tasks``)
QueueStatus = Literal["queued", "running", "success", "failed", "cancelled"]
#: each state as users read it (worker and queue)
STATUS_LABELS: dict[str, str] = {
    "queued": "en cola",
    "running": "en curso",
    "success": "éxito",
    "failed": "fallida",
    "timeout": "tiempo agotado",
    "cancelled": "cancelada",
}
PENDING_STATES: frozenset[str] = frozenset({"queued", "running"})
FINAL_STATES: frozenset[str] = frozenset({"success", "failed", "timeout", "cancelled"})


#: longest task_id, in characters (ids are any printable text; see `task_id_problem`)
TASK_ID_MAX = 128


def task_id_problem(task_id: object) -> str | None:
    """Why `task_id` cannot be a task id (Spanish), or None when it can.

    Any printable text of 1 to TASK_ID_MAX characters (spaces, "ñ", "/" included);
    control characters, line separators and lone surrogates are refused."""
    if not isinstance(task_id, str):
        return "debe ser un texto"
    if not task_id:
        return "no puede estar vacío"
    if len(task_id) > TASK_ID_MAX:
        return f"demasiado largo ({len(task_id)} caracteres; máximo {TASK_ID_MAX})"
    if not task_id.isprintable():
        return "contiene caracteres de control o no imprimibles"
    return None


#: what a partisim worker says in ``/status`` "software"; a worker without it is foreign
SOFTWARE = "partisim"

#: the names clients put on the wire: every worker of this family understands the
#: original scripts' names; numpy has no such name and goes by its own
WIRE_NAMES: dict[str, str] = {"python": "benchmark.py", "cython": "benchmark_cython.py"}


def wire_name(engine: str) -> str:
    """The ``benchmark`` a client sends for an engine (``cython`` -> ``benchmark_cython.py``)."""
    return WIRE_NAMES.get(engine, engine)


class Wire(BaseModel):
    """The base of every wire model: extra fields ignored, frozen."""

    model_config = ConfigDict(extra="ignore", frozen=True)
