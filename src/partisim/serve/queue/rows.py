"""How a task lives in a row of the ``tasks`` table: the row read back as a `Task`, and
the SQL expressions that read a row without decoding it in Python (a page's JSON, an
export's flat columns). Shared by the store and its read model."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from partisim.protocol import ExecuteResult, ForeignResult
from partisim.serve.queue.task import Task
from partisim.sim.environment import MachineEnvironment

__all__ = [
    "Selection",
    "row_to_task",
    "stored_result",
    "TASK_COLUMNS",
    "distinct_warnings",
    "FLAT_SQL",
    "FLAT_BOOLEANS",
    "VIEW_JSON",
]


def stored_result(result: ExecuteResult) -> tuple[ExecuteResult, MachineEnvironment | None]:
    """The result as the ``tasks`` row keeps it, and the static part of its environment,
    which the ``machines`` table keeps once per worker (``machine_id`` references it)."""
    env = result.environment
    if env is None or env.machine is None:
        return result, None
    return result.model_copy(update={"environment": env.model_copy(update={"machine": None})}), env.machine


def distinct_warnings(concatenated: str | None) -> tuple[str, ...]:
    """``'["a"],[],["b"]'`` (GROUP_CONCAT of JSON lists) -> ``("a", "b")``."""
    if not concatenated:
        return ()
    try:
        lists = json.loads(f"[{concatenated}]")
    except ValueError:
        return ()
    found = [w for item in lists if isinstance(item, list) for w in item if isinstance(w, str)]
    return tuple(dict.fromkeys(found))


#: what `row_to_task` reads: the row, and the static part of its result's environment
TASK_COLUMNS = (
    "*, (SELECT data FROM machines WHERE machines.id = json_extract(result, '$.environment.machine_id')) AS machine"
)


def _result(row: sqlite3.Row) -> ExecuteResult | None:
    if row["result"] is None:
        return None
    result = ExecuteResult.model_validate_json(row["result"])
    env = result.environment
    if env is None or row["machine"] is None:
        return result
    machine = MachineEnvironment.model_validate_json(row["machine"])
    return result.model_copy(update={"environment": env.model_copy(update={"machine": machine})})


def row_to_task(row: sqlite3.Row) -> Task:
    return Task(
        id=row["id"],
        seq=row["seq"],
        batch=row["batch"],
        status=row["status"],
        benchmark=row["benchmark"],
        params=json.loads(row["params"]),
        timeout=row["timeout"],
        verify_of=row["verify_of"],
        exclude_worker=row["exclude_worker"],
        avoid_worker=row["avoid_worker"],
        worker=row["worker"],
        worker_url=row["worker_url"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        not_before=row["not_before"],
        deadline=row["deadline"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        result=_result(row),
        error=row["error"],
        foreign_result=(
            ForeignResult.model_validate_json(row["foreign_result"]) if row["foreign_result"] is not None else None
        ),
        extra_runs=tuple(json.loads(row["extra_runs"])) if row["extra_runs"] else (),
        threads=row["threads"],
        priority=row["priority"],
        label=row["label"],
    )


@dataclass(frozen=True)
class Selection:
    """Which tasks a page or an export reads: filters, and ``originals`` to leave out the
    verification re-runs."""

    status: str | None = None
    batch: str | None = None
    originals: bool = False
    label: str | None = None

    def where(self, *also: str) -> tuple[str, tuple[Any, ...]]:
        """``(WHERE clause, args)``; ``also`` are more conditions without arguments."""
        clauses: list[str] = []
        args: list[Any] = []
        if self.status is not None:
            clauses.append("status = ?")
            args.append(self.status)
        if self.batch is not None:
            clauses.append("batch = ?")
            args.append(self.batch)
        if self.label is not None:
            clauses.append("label = ?")
            args.append(self.label)
        if self.originals:
            clauses.append("verify_of IS NULL")
        clauses.extend(also)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", tuple(args)


#: ``Task.duplicates`` in SQL: the workers in ``extra_runs`` plus the recorded one (of a
#: success), less one
_DUPLICATES = (
    "max(0, (SELECT COUNT(DISTINCT value) FROM json_each(extra_runs))"
    " + (status = 'success' AND worker IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM json_each(extra_runs) WHERE value = worker)) - 1)"
)


def _outcome(field: str) -> str:
    """A field of the result, verifiable or else foreign (`results.flatten` reads either)."""
    return f"COALESCE(json_extract(result, '$.{field}'), json_extract(foreign_result, '$.{field}'))"


#: a result's JSON with its environment's static part put back from ``machines``
_RESULT_JSON = (
    "CASE WHEN json_extract(result, '$.environment.machine_id') IS NULL THEN result"
    " ELSE json_set(result, '$.environment.machine', (SELECT json(data) FROM machines"
    " WHERE machines.id = json_extract(result, '$.environment.machine_id'))) END"
)


def _machine(field: str) -> str:
    """A field of the static part of a result's environment."""
    return (
        f"(SELECT json_extract(data, '$.{field}') FROM machines"
        " WHERE machines.id = json_extract(result, '$.environment.machine_id'))"
    )


#: the flat columns of a result row (see `results.flatten`) as SQL over the stored row
FLAT_SQL = {
    "id": "id",
    "batch": "batch",
    "status": "status",
    "engine": f"COALESCE({_outcome('engine')}, benchmark)",
    "particles": "json_extract(params, '$.NUM_PARTICULAS')",
    "steps": "json_extract(params, '$.NUM_PASOS')",
    "seed": "json_extract(params, '$.SEMILLA')",
    "worker": "worker",
    "attempts": "attempts",
    "simulation_time": _outcome("simulation_time"),
    "execution_time": _outcome("execution_time"),
    "particle_collisions": _outcome("particle_collisions"),
    "wall_collisions": _outcome("wall_collisions"),
    "kinetic_energy": _outcome("kinetic_energy"),
    "checksum": "json_extract(result, '$.checksum')",
    "error": "CASE WHEN status != 'success' THEN error END",
    "verify_of": "verify_of",
    "verifiable": "foreign_result IS NULL",  # 1/0: `flat_rows` callers turn it into a bool
    "duplicates": _DUPLICATES,
    "threads": "json_extract(result, '$.threads')",  # used (a verifiable result's)
    "threads_requested": "COALESCE(json_extract(result, '$.threads_requested'), threads)",
    "threads_reason": "json_extract(result, '$.threads_reason')",
    # 1/0, or empty for a result without environment
    "contended": "json_extract(result, '$.environment.contended')",
    "contended_by": "(SELECT group_concat(value, ' ') FROM json_each(result, '$.environment.contended_by'))",
    "load_start": "json_extract(result, '$.environment.load_start')",
    "load_end": "json_extract(result, '$.environment.load_end')",
    "runner": "json_extract(result, '$.runner')",
    "machine_id": "json_extract(result, '$.environment.machine_id')",
    "cpu_model": _machine("cpu_model"),
    # joined as `results.WARNINGS_SEPARATOR` joins them
    "warnings": "(SELECT group_concat(value, ' | ') FROM json_each(result, '$.warnings'))",
}
#: the flat columns that are booleans
FLAT_BOOLEANS = frozenset({"verifiable", "contended"})


def _real(expr: str) -> str:
    """A REAL as a JSON number that reads back as the same double (17 digits: SQLite's
    own rendering keeps 15), or null."""
    return f"CASE WHEN ({expr}) IS NULL THEN NULL ELSE json(printf('%!.17g', {expr})) END"


#: ``Task.view()`` as one JSON text, made by SQLite from the stored columns: the params
#: and the result go in as stored (json() keeps their numbers' text), so a page or an
#: export of many rows decodes and validates nothing in Python
VIEW_JSON = (
    "json_object('id', id, 'seq', seq, 'batch', batch, 'status', status, 'benchmark', benchmark,"
    " 'params', json(params), 'worker', worker, 'attempts', attempts, 'max_attempts', max_attempts,"
    f" 'timings', json_object('created_at', {_real('created_at')}, 'started_at', {_real('started_at')},"
    f" 'finished_at', {_real('finished_at')}, 'queue_s', {_real('round(started_at - created_at, 6)')},"
    f" 'run_s', {_real('round(finished_at - started_at, 6)')}),"
    f" 'result', json({_RESULT_JSON}), 'error', error, 'verify_of', verify_of,"
    " 'verifiable', json(CASE WHEN foreign_result IS NULL THEN 'true' ELSE 'false' END),"
    f" 'foreign_result', json(foreign_result), 'duplicates', {_DUPLICATES}, 'threads', threads,"
    " 'priority', priority, 'label', label)"
)
