"""How the worker answers: the one mapping from a partisim exception to an HTTP code
and body status (`http_error`), error bodies, and models as strict JSON."""

from __future__ import annotations

from typing import TypedDict

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel

from partisim.errors import AuthError, ParamsError, PartisimError, TaskRejected, TaskTimedOut, WorkerUnavailable
from partisim.protocol import ErrorBody
from partisim.worker.middleware import json_bytes
from partisim.worker.service import WorkerService
from partisim.worker.tasks import TaskRecord, iso

__all__ = [
    "http_error",
    "record_code",
    "error_body",
    "error_response",
    "count_refusal",
    "model_response",
    "service_of",
    "replay_fields",
    "replay_headers",
    "REPLAY_HEADER",
    "REJECTED_WORDS",
]

#: the body status of a refused request, by HTTP code
REJECTED_WORDS = {
    400: "invalid",
    404: "not_found",
    405: "not_allowed",
    409: "conflict",
    413: "invalid",
    422: "invalid",
    429: "busy",
}
#: the codes of a request turned down, counted in /metrics
_COUNTED = frozenset({400, 401, 409, 422, 429, 503})


def http_error(exc: PartisimError) -> tuple[int, str]:
    """The one mapping from a partisim exception to (HTTP code, body status)."""
    if isinstance(exc, ParamsError):
        return 422, "invalid"
    if isinstance(exc, AuthError):
        return 401, "unauthorized"
    if isinstance(exc, TaskRejected):
        code = exc.status_code if exc.status_code and 400 <= exc.status_code < 500 else 400
        return code, REJECTED_WORDS.get(code, "rejected")
    if isinstance(exc, WorkerUnavailable):
        return 503, "unavailable"
    if isinstance(exc, TaskTimedOut):
        return 504, "timeout"
    return 500, "error"  # WorkerFailed and anything unforeseen


#: the header of an answer given from a finished task's record (its value: when that
#: run finished, ISO 8601)
REPLAY_HEADER = "X-Partisim-Replayed"


class ReplayFields(TypedDict):
    """What marks an answer as a replay (fields of `ExecuteResult` and `TaskState`)."""

    replayed: bool
    first_run_at: str | None


def replay_fields(rec: TaskRecord) -> ReplayFields:
    """What marks an answer as a replay: ``replayed`` and the first run's time."""
    return {"replayed": True, "first_run_at": iso(rec.finished_at) if rec.finished_at else None}


def replay_headers(rec: TaskRecord, created: bool) -> dict[str, str]:
    """The replay header when this request was answered from a finished record (a
    request that joins a task still running gets that run's own answer, unmarked)."""
    if created or not rec.finished or rec.finished_at is None:
        return {}
    return {REPLAY_HEADER: iso(rec.finished_at)}


def record_code(rec: TaskRecord) -> int | None:
    """The HTTP code of a task's outcome (None while it has none)."""
    if rec.status == "success":
        return 200
    return http_error(rec.error)[0] if rec.error else None


def error_body(body: ErrorBody, status_code: int, headers: dict[str, str] | None = None) -> Response:
    """An error body as strict JSON (what a client sent is echoed safely, even a lone surrogate)."""
    data = body.model_dump(exclude_none=True)
    return Response(json_bytes(data), status_code=status_code, headers=headers, media_type="application/json")


def count_refusal(service: WorkerService, code: int) -> None:
    """Count a request (or a task of a batch) turned down, in /metrics, by the one rule."""
    if code in _COUNTED:
        service.metrics.request_refused(code)


def error_response(
    exc: PartisimError,
    service: WorkerService | None,
    task_id: str | None = None,
    *,
    refused: bool = True,
    status: str | None = None,
) -> Response:
    """The answer for an error; `refused`: the request itself was turned down (counted in /metrics)."""
    code, word = http_error(exc)
    headers = {}
    if code == 429 and service is not None and service.manager is not None:
        headers["Retry-After"] = str(service.manager.retry_after())
    if code == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if refused and service is not None:
        count_refusal(service, code)
    return error_body(ErrorBody(status=status or word, error=exc.message, task_id=task_id or None), code, headers)


def model_response(
    model: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None, *, only: set[str] | None = None
) -> Response:
    """A model as strict JSON (its floats are finite by type), serialised by pydantic;
    `only`: just these fields (what an anonymous caller may see)."""
    return Response(
        model.model_dump_json(include=only), status_code=status_code, headers=headers, media_type="application/json"
    )


def service_of(request: Request) -> WorkerService:
    """The worker service of the app that received ``request``."""
    service: WorkerService = request.app.state.service
    return service
