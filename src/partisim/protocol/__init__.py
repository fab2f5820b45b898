"""Typed models of everything that crosses the wire.

Two APIs: the worker's (``/ping``, ``/status``, ``/execute``, ``/tasks``...) and the one
of ``partisim serve`` (``/api/tasks``, ``/api/summary``...). The worker builds its
answers from these models and every client decodes into them, so code past the HTTP
layer reads attributes, never ``.get()`` chains. Field names are the contract the
users' own scripts read: never rename one.

Decoding is lenient about *extra* fields (a newer worker may add some) and strict about
the ones we use. Floats are finite: a model never holds NaN or Infinity, so every JSON
made from one is strict JSON.
"""

from partisim.protocol.base import (
    FINAL_STATES,
    PENDING_STATES,
    SOFTWARE,
    TASK_ID_MAX,
    WIRE_NAMES,
    Finite,
    QueueStatus,
    TaskStatus,
    task_id_problem,
    wire_name,
)
from partisim.protocol.charts import ChartBatch, ChartData, ChartPhysics, ChartPoint, ChartSeries, ChartSpeedup
from partisim.protocol.queue_api import (
    BatchInfo,
    MemberView,
    Submitted,
    Summary,
    TaskList,
    TaskTimings,
    TaskView,
    WorkerList,
)
from partisim.protocol.worker_api import (
    BATCH_MAX,
    BatchAnswer,
    CurrentTasks,
    ErrorBody,
    ExecuteBatchReply,
    ExecuteBatchRequest,
    ExecuteRequest,
    ExecuteResult,
    ForeignResult,
    HealthReport,
    History,
    HistoryStatistics,
    PingReply,
    TaskResult,
    TaskState,
    WorkerStatus,
)

__all__ = [
    "Finite",
    "TaskStatus",
    "QueueStatus",
    "PENDING_STATES",
    "FINAL_STATES",
    "PingReply",
    "HealthReport",
    "WorkerStatus",
    "ExecuteRequest",
    "ExecuteBatchRequest",
    "ExecuteBatchReply",
    "BatchAnswer",
    "BATCH_MAX",
    "ExecuteResult",
    "ForeignResult",
    "TaskResult",
    "WIRE_NAMES",
    "wire_name",
    "SOFTWARE",
    "TaskState",
    "History",
    "HistoryStatistics",
    "CurrentTasks",
    "ErrorBody",
    "TASK_ID_MAX",
    "task_id_problem",
    "TaskTimings",
    "TaskView",
    "TaskList",
    "Submitted",
    "Summary",
    "BatchInfo",
    "MemberView",
    "WorkerList",
    "ChartPoint",
    "ChartSeries",
    "ChartSpeedup",
    "ChartBatch",
    "ChartPhysics",
    "ChartData",
]
