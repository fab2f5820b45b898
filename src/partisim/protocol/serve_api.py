"""More models of the API of ``partisim serve``: the replies that were raw dicts
(cancel, batches, verify, health) and the body of ``POST /api/verify``.

The older models of that API (tasks, summary, workers, charts) are in `partisim.protocol`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from partisim.protocol.base import QueueStatus, Wire
from partisim.protocol.queue_api import BatchInfo

__all__ = ["Cancelled", "BatchList", "VerifyRequest", "VerifyPair", "VerifyStarted", "ServeHealth", "VERIFY_MAX"]

#: the most originals one ``POST /api/verify`` re-runs
VERIFY_MAX = 1000


class Cancelled(Wire):
    """``DELETE /api/tasks/{id}``: the task is cancelled; ``previous`` was its state."""

    id: str
    status: Literal["cancelled"] = "cancelled"
    previous: QueueStatus


class BatchList(Wire):
    """``GET /api/batches``: the newest first; ``more``: older ones were left out by ``limit``."""

    batches: list[BatchInfo]
    more: bool


class VerifyRequest(Wire):
    """The body of ``POST /api/verify``: re-run ``count`` successful originals, drawn
    from ``batch`` (or the whole queue), each on another worker than its original's."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    batch: str | None = None
    count: int = Field(default=1, ge=1, le=VERIFY_MAX)


class VerifyPair(Wire):
    original: str
    verify: str


class VerifyStarted(Wire):
    """``POST /api/verify`` -> 201: the verification batch and which task checks which."""

    batch: str
    pairs: list[VerifyPair]
    count: int


class ServeHealth(Wire):
    """``GET /api/health`` (an anonymous caller gets only ``status``)."""

    status: Literal["ok"] = "ok"
    version: str
    final_statuses: list[QueueStatus]
