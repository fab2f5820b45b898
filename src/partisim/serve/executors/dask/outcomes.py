"""What a Dask attempt's report (or Dask's own error) means for the queue: the typed
outcome the executor seam delivers (`base.Outcome`)."""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import ValidationError

from partisim.errors import PartisimError, TaskNotStarted, TaskRejected, TaskTimedOut, WorkerFailed, WorkerUnavailable
from partisim.protocol import ExecuteResult
from partisim.serve.executors.base import Attempt, Outcome
from partisim.serve.executors.dask.remote import AttemptReport
from partisim.serve.queue.specs import step_warnings
from partisim.serve.queue.task import TaskSpec

__all__ = ["outcome_of", "error_of"]


def _iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def outcome_of(attempt: Attempt, report: AttemptReport) -> Outcome:
    """The outcome of ``attempt`` from the report of the worker that ran it."""
    where = report.worker
    if report.status == "success" and report.result is not None:
        try:
            return ExecuteResult.model_validate(
                {
                    **report.result.to_dict(),
                    "task_id": attempt.task_id,
                    "worker_id": where,
                    "benchmark": attempt.task.benchmark,
                    "execution_time": report.elapsed,
                    "runner": "dask",
                    "threads_requested": attempt.task.threads if attempt.task.threads > 1 else None,
                    "timestamp": _iso(),
                    # what an HTTP worker says of these parameters, said here (cached per box and step)
                    "warnings": step_warnings([TaskSpec(attempt.task.benchmark, attempt.task.params)]),
                }
            )
        except ValidationError as exc:
            bad = ", ".join(str(e["loc"][0]) for e in exc.errors() if e.get("loc"))
            return TaskRejected(
                f"la simulación dio valores no finitos o incompletos ({bad}); "
                "reduzca VELOCIDAD_INICIAL_MAX, DT o el tamaño del mundo",
                422,
            )
    if report.status == "refused":
        return TaskNotStarted(report.message)
    if report.status == "timeout":
        return TaskTimedOut(f"{where}: {report.message}", 504)
    if report.status == "invalid":
        return TaskRejected(report.message, 422)
    if report.status == "cancelled":  # not by us (we stop following what we cancel)
        return WorkerUnavailable(f"{where}: {report.message}")
    return WorkerFailed(f"{where}: {report.message}", 500)


def error_of(exc: BaseException) -> PartisimError:
    """The outcome of an attempt whose Dask task failed without a report."""
    if isinstance(exc, PartisimError):
        return exc
    if isinstance(exc, ImportError):
        return TaskNotStarted(f"un worker Dask no pudo cargar la tarea: {exc}")
    if type(exc).__name__ == "KilledWorker":
        return WorkerFailed(f"Dask: la tarea estaba en workers que se perdieron ({exc})", 500)
    return WorkerFailed(f"Dask: {type(exc).__name__}: {exc}", 500)
