"""Reading a task request: strict JSON, its fields, the worker's limits.

Everything a client can get wrong is a `ParamsError` (422) or a
`TaskRejected` with 400 (not JSON at all), with a Spanish message naming the
field or the limit; nothing here can raise anything else.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, NoReturn

from pydantic import JsonValue

from partisim.errors import ParamsError, TaskRejected, explain_json_error, json_type_name
from partisim.protocol import BATCH_MAX, TASK_ID_MAX, task_id_problem
from partisim.sim import ENGINE_ALIASES, ENGINES, SimParams, parse_params, resolve_engine
from partisim.sim.params import LEGACY_NAMES, number_from_text
from partisim.worker.settings import Limits

__all__ = [
    "TaskRequest",
    "loads_strict",
    "parse_task_request",
    "parse_batch_request",
    "parse_task_fields",
    "check_limits",
    "BENCHMARKS",
    "request_schema",
]

BENCHMARKS: tuple[str, ...] = (*ENGINE_ALIASES, *ENGINES)
_FIELDS = ("benchmark", "params", "task_id", "timeout", "threads")
_MAX_DIGITS = 30  # integers longer than this are refused before Python builds them


@dataclass(frozen=True)
class TaskRequest:
    benchmark: str
    engine: str
    params: SimParams
    task_id: str | None
    timeout: float | None
    threads: int | None = None  # as asked; the worker caps it (TaskManager)


def _no_constant(name: str) -> NoReturn:
    raise ParamsError(f"{name} no es un valor JSON válido: use números finitos")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_DIGITS:
        raise ParamsError(f"número demasiado grande ({len(text)} cifras)")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ParamsError(f"número fuera de rango: {text[:40]}")
    return value


def loads_strict(body: bytes) -> JsonValue:
    """JSON without NaN, Infinity or numbers too large to be meant."""
    if not body.strip():
        raise TaskRejected("el cuerpo de la petición está vacío: se espera un objeto JSON", 400)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise TaskRejected("el cuerpo de la petición no es texto UTF-8", 400) from None
    try:
        value: JsonValue = json.loads(text, parse_constant=_no_constant, parse_int=_int, parse_float=_float)
    except json.JSONDecodeError as exc:
        raise TaskRejected(explain_json_error(exc), 400) from None
    except (ValueError, RecursionError):
        raise TaskRejected("JSON inválido: demasiado anidado o con valores fuera de rango", 400) from None
    return value


def check_limits(params: SimParams, limits: Limits) -> None:
    """Refuse what this worker was configured not to run."""
    if params.particles > limits.max_particles:
        raise ParamsError(
            f"NUM_PARTICULAS = {params.particles} supera el límite de este worker "
            f"(max_particles = {limits.max_particles})",
            field="particles",
        )
    if params.steps > limits.max_steps:
        raise ParamsError(
            f"NUM_PASOS = {params.steps} supera el límite de este worker (max_steps = {limits.max_steps})",
            field="steps",
        )
    work = params.particles * params.steps
    if work > limits.max_work:
        raise ParamsError(
            f"NUM_PARTICULAS x NUM_PASOS = {work} supera el presupuesto de trabajo de este "
            f"worker (max_work = {limits.max_work})",
            field="particles",
        )


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


#: fields the users' ETAPA-6 scripts send along, accepted and ignored: they change no result
_IGNORED = ("priority", "description")


def parse_task_request(body: bytes, limits: Limits) -> TaskRequest:
    """The body of ``POST /execute`` or ``POST /tasks``."""
    return parse_task_fields(loads_strict(body), limits)


def parse_batch_request(body: bytes, limits: Limits) -> list[TaskRequest | ParamsError]:
    """The body of ``POST /execute/batch``: ``{"tasks": [task, ...]}``, 1 to `BATCH_MAX`
    tasks. A body of the wrong shape refuses the whole batch; a task that is wrong is
    that task's own error (its place in the list keeps the error), and the others run."""
    data = loads_strict(body)
    if not isinstance(data, dict):
        raise ParamsError(f"el cuerpo debe ser un objeto JSON con el campo tasks; se recibió {json_type_name(data)}")
    unknown = [k for k in data if k != "tasks"]
    if unknown:
        raise ParamsError(f"campo desconocido: {_shown(unknown[0])} (válido: tasks)", field=str(unknown[0])[:60])
    tasks = data.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise ParamsError(
            f"tasks debe ser una lista de 1 a {BATCH_MAX} tareas; se recibió {_shown(tasks)}", field="tasks"
        )
    if len(tasks) > BATCH_MAX:
        raise ParamsError(
            f"tasks tiene {len(tasks)} tareas; un lote admite como máximo {BATCH_MAX}: envíe varios lotes",
            field="tasks",
        )
    parsed: list[TaskRequest | ParamsError] = []
    for number, task in enumerate(tasks, start=1):
        try:
            parsed.append(parse_task_fields(task, limits))
        except ParamsError as exc:
            parsed.append(ParamsError(f"tarea {number} del lote: {exc.message}", field=exc.field, reason=exc.reason))
    return parsed


def parse_task_fields(data: JsonValue, limits: Limits) -> TaskRequest:
    """One task request, already decoded from JSON."""
    if not isinstance(data, dict):
        raise ParamsError(
            f"el cuerpo debe ser un objeto JSON con los campos {', '.join(_FIELDS)}; se recibió {json_type_name(data)}"
        )
    unknown = [k for k in data if k not in _FIELDS and k not in _IGNORED]
    if unknown:
        raise ParamsError(
            f"campo desconocido: {_shown(unknown[0])} (válidos: {', '.join(_FIELDS)})", field=str(unknown[0])[:60]
        )
    if "benchmark" not in data:
        raise ParamsError(f"falta el campo benchmark (uno de: {', '.join(BENCHMARKS)})", field="benchmark")
    benchmark = data["benchmark"]
    engine = resolve_engine(benchmark)  # refuses paths, commands and unknown names
    raw = data.get("params")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"params debe ser un objeto JSON (clave: valor); se recibió {_shown(raw)}", field="params")
    try:
        params = parse_params({k: number_from_text(v) for k, v in raw.items()})
    except ParamsError as exc:
        raise ParamsError(f"params: {exc.message}", field=exc.field) from None
    check_limits(params, limits)
    raw_id = data.get("task_id")
    # an integer id (ETAPA-6 scripts number their tasks) is its digits
    task_id = str(raw_id) if isinstance(raw_id, int) and not isinstance(raw_id, bool) else raw_id
    problem = None if task_id is None else task_id_problem(task_id)
    if problem:
        raise ParamsError(
            f"task_id {problem}: use un texto imprimible de 1 a {TASK_ID_MAX} caracteres; se recibió {_shown(task_id)}",
            field="task_id",
        )
    timeout = data.get("timeout")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ParamsError(
                f"timeout debe ser un número de segundos mayor que 0; se recibió {_shown(timeout)}", field="timeout"
            )
        timeout = float(timeout)
    threads = data.get("threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ParamsError(
            f"threads (hilos) debe ser un número entero >= 1; se recibió {_shown(threads)}", field="threads"
        )
    return TaskRequest(str(benchmark), engine, params, None if task_id is None else str(task_id), timeout, threads)


def request_schema(limits: Limits | None = None) -> dict[str, Any]:
    """OpenAPI schema of the /execute and /tasks body, with this worker's limits where JSON Schema can say them."""
    params = SimParams.model_json_schema(by_alias=True, mode="validation")
    params.pop("title", None)
    params["additionalProperties"] = False
    props = params.get("properties", {})
    if limits is not None:
        for alias, limit in (("NUM_PARTICULAS", limits.max_particles), ("NUM_PASOS", limits.max_steps)):
            if alias in props:
                props[alias]["maximum"] = min(props[alias].get("maximum", limit), limit)
        params["description"] = (
            f"Límites de este worker: NUM_PARTICULAS <= {limits.max_particles}, NUM_PASOS <= "
            f"{limits.max_steps}, NUM_PARTICULAS x NUM_PASOS <= {limits.max_work}"
        )
    # the ETAPA-6 names, aliases of the API ones (one spelling per parameter in a request)
    for legacy, name in {**LEGACY_NAMES, "seed": "seed"}.items():
        alias = SimParams.model_fields[name].alias or name
        if alias in props:
            props[legacy] = {**props[alias], "description": f"alias de {alias} (tareas de ETAPA 6)"}
    return {
        "type": "object",
        "required": ["benchmark"],
        "additionalProperties": False,
        "properties": {
            "benchmark": {
                "type": "string",
                "enum": list(BENCHMARKS),
                "description": "benchmark.py = python, benchmark_cython.py = cython",
            },
            "params": params,
            "task_id": {
                "type": "string",
                "minLength": 1,
                "maxLength": TASK_ID_MAX,
                "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]+$",
                "description": "identificador para idempotencia (texto imprimible; un entero vale como sus "
                "dígitos): dentro de --replay-window se responde con el resultado ya medido (replayed)",
            },
            "priority": {"description": "se acepta y se ignora (lo envían los scripts de ETAPA 6)"},
            "description": {"description": "se acepta y se ignora (lo envían los scripts de ETAPA 6)"},
            "timeout": {
                "type": "number",
                "exclusiveMinimum": 0,
                "description": "segundos; se ajusta al rango [0.5, --max-timeout del worker] y la "
                "respuesta dice el aplicado (timeout) y el pedido (timeout_requested)",
            },
            "threads": {
                "type": "integer",
                "minimum": 1,
                "description": "hilos para esta simulación (solo cython los aprovecha); el worker los "
                "limita a su max_threads de /status y cuenta cada hilo como una plaza de su "
                "capacidad; la respuesta dice los usados (threads)",
            },
        },
        "example": {"benchmark": "benchmark.py", "params": {"NUM_PARTICULAS": 100, "NUM_PASOS": 500, "SEMILLA": 42}},
    }
