"""The OpenAPI document of ``partisim serve``, completed by hand.

The routes read their query parameters and bodies themselves (to answer every mistake
with a Spanish 4xx naming it), so FastAPI cannot see them. This module says what they
accept and what they answer: parameters with their ranges, request bodies, each status
a route may give and the model of each JSON answer. Clients, the docs page and the
property-based tests (schemathesis) read it from ``/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from partisim.protocol import ChartData, ErrorBody, Submitted, Summary, TaskList, TaskView, WorkerList
from partisim.protocol.serve_api import VERIFY_MAX, BatchList, Cancelled, VerifyStarted
from partisim.serve.queue.etapa6 import MAX_LABEL, MAX_PRIORITY
from partisim.serve.queue.specs import MAX_REPEAT, MAX_TASKS, MAX_THREADS
from partisim.serve.queue.task import STATUSES
from partisim.serve.web.api import MAX_WAIT_S, SQLITE_MAX_INT
from partisim.serve.web.export import EXPORT_FORMATS
from partisim.serve.web.frames import FramesView
from partisim.sim.frames import MAX_FRAMES

__all__ = ["document"]

_ERRORS = {
    401: "falta el token o es incorrecto",
    404: "no existe",
    409: "conflicto con el estado de la cola",
    413: "cuerpo demasiado grande",
    422: "petición inválida (el mensaje nombra el campo)",
    429: "demasiados intentos de autenticación fallidos desde esta dirección",
    507: "el disco de la base de datos está lleno: no se guardó nada",
}


def _query(name: str, schema: dict[str, Any], text: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": text}


_SELECTION = [
    _query("status", {"type": "string", "enum": list(STATUSES)}, "solo las tareas en este estado"),
    _query("batch", {"type": "string", "maxLength": 200}, "solo las tareas de este lote"),
    _query("originals", {"type": "boolean"}, "sin las re-ejecuciones de verificación"),
]
_WAIT = _query("wait", {"type": "number", "minimum": 0, "maximum": MAX_WAIT_S}, "segundos de espera larga (long poll)")
_LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": 100_000}, "máximo de elementos")
_CURSOR = {"type": "integer", "minimum": 0, "maximum": SQLITE_MAX_INT}

#: a priority: a whole number, or high/medium/low (`etapa6.parse_priority`)
_PRIORITY = {
    "oneOf": [
        {"type": "integer", "minimum": -MAX_PRIORITY, "maximum": MAX_PRIORITY},
        {"type": "string", "maxLength": 20},
    ]
}
_TASK = {
    "type": "object",
    "properties": {
        "benchmark": {"type": "string"},
        "engine": {"type": "string"},
        "params": {"type": "object"},
        "repeat": {"type": "integer", "minimum": 1, "maximum": MAX_REPEAT},
        "timeout": {"type": "number"},
        "threads": {"type": "integer", "minimum": 1, "maximum": MAX_THREADS},
        "priority": _PRIORITY,
        "label": {"oneOf": [{"type": "string", "minLength": 1, "maxLength": MAX_LABEL}, {"type": "integer"}]},
        "description": {"type": "string"},
    },
    "additionalProperties": False,
}
_TASKS_BODY = {
    "oneOf": [
        _TASK,
        {"type": "array", "items": _TASK, "minItems": 1},
        {
            "type": "object",
            "required": ["tasks"],
            "properties": {
                "tasks": {"type": "array", "items": _TASK, "minItems": 1},
                "batch": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
            },
            "additionalProperties": False,
        },
    ],
    "description": f"una tarea, una lista o {{'tasks': [...], 'batch'?}}; como mucho {MAX_TASKS} tareas",
}
#: a number, or its text with a decimal comma or point ("0,05")
_DECIMAL = {"oneOf": [{"type": "number"}, {"type": "string", "maxLength": 40}]}
_INT_LIST = {"oneOf": [{"type": "string", "maxLength": 200}, {"type": "integer"}]}
_SWEEP_BODY = {
    "type": "object",
    "required": ["engines", "particles", "steps"],
    "properties": {
        "engines": {"type": "string", "maxLength": 100},
        "particles": _INT_LIST,
        "steps": _INT_LIST,
        "seeds": _INT_LIST,
        "repeat": {"oneOf": [{"type": "integer"}, {"type": "string", "maxLength": 20}]},
        "threads": {"oneOf": [{"type": "integer"}, {"type": "string", "maxLength": 20}]},
        "priority": _PRIORITY,
        "dt": _DECIMAL,
        "width": _DECIMAL,
        "height": _DECIMAL,
    },
    "additionalProperties": False,
    "description": f"barrido motores x partículas x pasos x semillas; como mucho {MAX_TASKS} tareas",
}
_VERIFY_BODY = {
    "type": "object",
    "properties": {"batch": {"type": "string"}, "count": {"type": "integer", "minimum": 1, "maximum": VERIFY_MAX}},
    "additionalProperties": False,
}

_FRAMES = _query("frames", {"type": "integer", "minimum": 2, "maximum": MAX_FRAMES}, "fotogramas del visor")
_FRAMES_BODY = {
    "type": "object",
    "properties": {
        "params": {"type": "object"},
        "benchmark": {"type": "string"},
        "frames": {"type": "integer", "minimum": 2, "maximum": MAX_FRAMES},
    },
    "description": "los parámetros de una simulación para el visor (se recalcula en serve)",
}

#: (path, method) -> parameters, request body, success status, success content, error statuses
_ROUTES: dict[tuple[str, str], tuple[list[dict[str, Any]], Any, int, Any, tuple[int, ...]]] = {
    ("/api/tasks", "get"): (
        [*_SELECTION, _LIMIT, _query("after_seq", _CURSOR, "desde esta seq, las más antiguas primero"),
         _query("before_seq", _CURSOR, "antes de esta seq, las más nuevas primero")],
        None, 200, TaskList, (401, 422, 429),
    ),
    ("/api/tasks", "post"): ([], _TASKS_BODY, 201, Submitted, (401, 413, 422, 429, 507)),
    ("/api/export", "get"): (
        [_query("format", {"type": "string", "enum": list(EXPORT_FORMATS)}, "csv (por defecto) o ndjson"),
         *_SELECTION],
        None, 200, EXPORT_FORMATS, (401, 422, 429),
    ),
    ("/api/tasks/{task_id}", "get"): ([_WAIT], None, 200, TaskView, (401, 404, 422, 429)),
    ("/api/tasks/{task_id}", "delete"): ([], None, 200, Cancelled, (401, 404, 409, 429, 507)),
    ("/api/workers", "get"): ([], None, 200, WorkerList, (401, 429)),
    ("/api/summary", "get"): (
        [_query("batch", {"type": "string", "maxLength": 200}, "solo este lote"), _WAIT],
        None, 200, Summary, (401, 422, 429),
    ),
    ("/api/batches", "get"): ([_LIMIT], None, 200, BatchList, (401, 422, 429)),
    ("/api/verify", "post"): ([], _VERIFY_BODY, 201, VerifyStarted, (401, 409, 413, 422, 429, 507)),
    ("/api/health", "get"): ([], None, 200, None, ()),
    ("/api/charts", "get"): (
        [_query("batch", {"type": "string", "maxLength": 200}, "latest, todos o el id de un lote")],
        None, 200, ChartData, (401, 404, 422, 429),
    ),
    ("/api/sweeps", "post"): ([], _SWEEP_BODY, 201, Submitted, (401, 413, 422, 429, 507)),
    ("/api/tasks/{task_id}/frames", "get"): ([_FRAMES], None, 200, FramesView, (401, 404, 422, 429)),
    ("/api/frames", "post"): ([], _FRAMES_BODY, 200, FramesView, (401, 413, 422, 429)),
    ("/metrics", "get"): ([], None, 200, {"text": "text/plain"}, (401, 429)),
}  # fmt: skip


def _ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _content(what: Any, components: dict[str, Any]) -> dict[str, Any]:
    if isinstance(what, dict) and all(isinstance(v, str) for v in what.values()):  # media types
        return {media.split(";")[0]: {"schema": {"type": "string"}} for media in what.values()}
    if isinstance(what, type) and issubclass(what, BaseModel):
        return {"application/json": {"schema": _ref(what, components)}}
    return {"application/json": {"schema": what if what is not None else {}}}


def _complete(schema: dict[str, Any]) -> dict[str, Any]:
    components: dict[str, Any] = schema.setdefault("components", {}).setdefault("schemas", {})
    error = _ref(ErrorBody, components)
    for (path, method), (params, body, ok, content, errors) in _ROUTES.items():
        operation = schema.get("paths", {}).get(path, {}).get(method)
        if operation is None:
            continue
        kept = [p for p in operation.get("parameters", []) if p.get("in") == "path"]
        operation["parameters"] = kept + params
        if body is not None:
            operation["requestBody"] = {"required": False, "content": {"application/json": {"schema": body}}}
        responses: dict[str, Any] = {str(ok): {"description": "correcto", "content": _content(content, components)}}
        for code in errors:
            responses[str(code)] = {"description": _ERRORS[code], "content": {"application/json": {"schema": error}}}
        operation["responses"] = responses
    return schema


def document(app: FastAPI) -> None:
    """Make ``app.openapi()`` (``/openapi.json``) the completed document."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _complete(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
