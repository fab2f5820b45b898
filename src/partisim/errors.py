"""The one exception hierarchy of partisim.

Every error a user can meet is a `PartisimError` whose message is Spanish and
names what is wrong. HTTP codes are mapped to these classes in one place on each
side: `worker.app` (exception -> status) and `orchestrator.client` (status -> exception).
"""

from __future__ import annotations

__all__ = [
    "PartisimError",
    "ConfigError",
    "ParamsError",
    "WorkerError",
    "WorkerUnavailable",
    "TaskRejected",
    "AuthError",
    "TaskTimedOut",
    "WorkerFailed",
    "OutputError",
]


class PartisimError(Exception):
    """Base class: `str(exc)` is a message fit for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(PartisimError):
    """config_workers.json (or another settings file) is missing or invalid."""


class ParamsError(PartisimError):
    """Simulation parameters or the benchmark name are invalid (HTTP 422)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


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


class TaskTimedOut(WorkerError):
    """The computation exceeded its deadline (HTTP 504 or a read timeout)."""


class WorkerFailed(WorkerError):
    """The worker answered 5xx: the task may succeed on another attempt."""


class OutputError(PartisimError):
    """A file partisim was asked to write (export, report, inbox note) could not be written."""
