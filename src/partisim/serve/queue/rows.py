"""How a task lives in a row of the ``tasks`` table: the row read back as a `Task`, and
the SQL expressions that read a row without decoding it in Python (a page's JSON, an
export's flat columns). Shared by the store and its read model."""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias

from pydantic import TypeAdapter, ValidationError

from partisim.protocol import ExecuteResult, ForeignResult, QueueStatus
from partisim.serve.queue.task import FAILED, STATUSES, Task, queue_status
from partisim.sim.environment import MachineEnvironment
from partisim.sim.params import PARTICLES_KEY, SEED_KEY, STEPS_KEY, ApiParams

__all__ = [
    "SqlValue",
    "Selection",
    "row_to_task",
    "stored_result",
    "TASK_COLUMNS",
    "distinct_warnings",
    "FLAT_SQL",
    "FLAT_BOOLEANS",
    "VIEW_JSON",
    "microseconds_sql",
    "DAMAGED_SQL",
    "COUNTS_DAMAGED_SQL",
    "safe_json",
    "find_damaged",
    "CLEAN_SQL",
    "clean_rows",
    "register_functions",
    "json_damage",
]

log = logging.getLogger(__name__)

#: a value SQLite takes as a statement argument or gives back in a column
SqlValue: TypeAlias = str | int | float | bytes | None


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


#: the SQL function (`register_functions`) that names what is wrong with a JSON column's
#: stored text once SQLite's own checks passed: a value of the wrong JSON type for its
#: model (``'{"execution_time": "abc"}'``), which SQL alone cannot see
JSON_DAMAGE_FUNCTION = "partisim_json_damage"

_JSON_MODELS: dict[str, Callable[[str], object]] = {
    "params": TypeAdapter(ApiParams).validate_json,
    "result": ExecuteResult.model_validate_json,
    "foreign_result": ForeignResult.model_validate_json,
    "extra_runs": TypeAdapter(list[str]).validate_json,
}


@functools.lru_cache(maxsize=256)  # one row's text is asked for by several expressions
def json_damage(column: str, text: object) -> str | None:
    """Why the stored text of a JSON column is no valid value of its model (in the words
    a user reads), or None when it is one. Never raises: SQLite calls it per row."""
    if text is None or (column == "extra_runs" and text == ""):
        return None
    if not isinstance(text, str):
        return f"{column} no es texto JSON"
    try:
        _JSON_MODELS[column](text)
    except ValidationError as exc:
        errors = exc.errors()
        where = ".".join(str(part) for part in errors[0]["loc"]) if errors and errors[0]["loc"] else ""
        return f"{column} no es válido" + (f" ({where})" if where else "")
    except Exception:
        return f"{column} no es válido"
    return None


def register_functions(db: sqlite3.Connection) -> None:
    """Make the SQL of this module (`DAMAGED_SQL`, `VIEW_JSON`, ...) usable on ``db``."""
    db.create_function(JSON_DAMAGE_FUNCTION, 2, json_damage, deterministic=True)


def _json_problem(column: str) -> str:
    return f"{JSON_DAMAGE_FUNCTION}('{column}', {column})"


_STATUS_LIST = ", ".join(f"'{s}'" for s in STATUSES)
_NUMBER = "typeof({c}) IN ('integer', 'real') AND abs({c}) <= 1.7976931348623157e308"
#: the columns whose SQL type is checked: column -> (kind, nullable, value in its place when wrong)
_TYPED: dict[str, tuple[str, bool, str]] = {
    "id": ("text", False, "hex(id)"),
    "batch": ("text", False, "hex(batch)"),
    "benchmark": ("text", False, "hex(benchmark)"),
    "timeout": ("number", True, "NULL"),
    "verify_of": ("text", True, "NULL"),
    "exclude_worker": ("text", True, "NULL"),
    "avoid_worker": ("text", True, "NULL"),
    "worker": ("text", True, "NULL"),
    "worker_url": ("text", True, "NULL"),
    "attempts": ("integer", False, "0"),
    "max_attempts": ("integer", False, "1"),
    "not_before": ("number", False, "0.0"),
    "deadline": ("number", True, "NULL"),
    "created_at": ("number", False, "0.0"),
    "started_at": ("number", True, "NULL"),
    "finished_at": ("number", True, "NULL"),
    "error": ("text", True, "NULL"),
    "threads": ("integer", False, "1"),
    "priority": ("integer", False, "0"),
    "label": ("text", True, "NULL"),
}
_KIND_WORDS = {"text": "no es texto", "integer": "no es un número entero", "number": "no es un número finito"}


def _type_ok(column: str) -> str:
    kind, nullable, _ = _TYPED[column]
    test = _NUMBER.format(c=column) if kind == "number" else f"typeof({column}) = '{kind}'"
    return f"({column} IS NULL OR ({test}))" if nullable else f"({test})"


#: the JSON columns: column -> (JSON type it must hold, nullable, value in its place when wrong)
_JSON_COLUMNS = {
    "params": ("object", False, "'{}'"),
    "result": ("object", True, "NULL"),
    "foreign_result": ("object", True, "NULL"),
    "extra_runs": ("array", True, "NULL"),
}


def _json_present(column: str) -> str:
    """The JSON column holds something to read (not NULL; extra_runs: not empty either)."""
    return f"{column} IS NOT NULL" + (f" AND {column} != ''" if column == "extra_runs" else "")


def _json_checks(column: str) -> list[tuple[str, str]]:
    """What can be wrong with a JSON column, each condition with why (see `_DAMAGES`)."""
    kind = _JSON_COLUMNS[column][0]
    words = "un objeto JSON" if kind == "object" else "una lista JSON"
    present = _json_present(column)
    return [
        (
            f"{present} AND (typeof({column}) != 'text' OR NOT json_valid({column}))",
            f"'fila dañada: {column} no es JSON válido'",
        ),
        # json_type raises on malformed text: never given any, whatever order SQLite tests in
        (
            f"{present} AND json_type(CASE WHEN json_valid({column}) THEN {column} END) != '{kind}'",
            f"'fila dañada: {column} no es {words}'",
        ),
        (f"{present} AND {_json_problem(column)} IS NOT NULL", f"'fila dañada: ' || {_json_problem(column)}"),
    ]


def _json_ok(column: str) -> str:
    return "NOT (" + " OR ".join(f"({condition})" for condition, _ in _json_checks(column)) + ")"


#: what makes a row SQLite accepts no valid task, each condition with why, in the words a
#: user reads (SQL text, quoted): an unknown status, a column of the wrong type (text
#: where a number belongs), malformed JSON, JSON of the wrong shape for its model. The
#: one definition of a damaged row: every read (the pages and exports SQLite writes, the
#: tasks Python decodes, the counts, the charts) goes by it.
_DAMAGES = (
    (f"status IS NULL OR status NOT IN ({_STATUS_LIST})", "'fila dañada: estado desconocido ' || quote(status)"),
    *(
        (f"NOT {_type_ok(column)}", f"'fila dañada: {column} {_KIND_WORDS[kind]} (' || typeof({column}) || ')'")
        for column, (kind, _, _) in _TYPED.items()
    ),
    *(check for column in _JSON_COLUMNS for check in _json_checks(column)),
)
#: a row SQLite accepts but that is no valid task (see `_DAMAGES`)
DAMAGED_SQL = "(" + " OR ".join(f"({condition})" for condition, _ in _DAMAGES) + ")"
#: the part of `DAMAGED_SQL` that a count per batch and status needs, in SQL alone (no JSON
#: decoded): what `TaskReads.batches` checks on every row, the rest being known from the
#: walk at start-up (`find_damaged`)
COUNTS_DAMAGED_SQL = (
    f"(status IS NULL OR status NOT IN ({_STATUS_LIST})"
    + "".join(f" OR NOT {_type_ok(c)}" for c in ("batch", "created_at", "finished_at"))
    + ")"
)
#: why a row is damaged (NULL when it is not), in the words a user reads
_DAMAGE_SQL = "CASE" + "".join(f" WHEN {condition} THEN {why}" for condition, why in _DAMAGES) + " END"

#: each column as a task shows it: its stored value, or when that is of the wrong type
#: the neutral value in its place (NULL, or a default where the schema has no null), so
#: a damaged row still makes a valid `TaskView`
CLEAN_SQL: dict[str, str] = {
    "seq": "seq",
    "status": f"CASE WHEN {DAMAGED_SQL} THEN 'failed' ELSE status END",
    **{c: f"CASE WHEN {_type_ok(c)} THEN {c} ELSE {fallback} END" for c, (_, _, fallback) in _TYPED.items()},
    **{c: f"CASE WHEN {_json_ok(c)} THEN {c} ELSE {fallback} END" for c, (_, _, fallback) in _JSON_COLUMNS.items()},
}


def safe_json(column: str) -> str:
    """The column as stored when it is valid JSON, else NULL: one malformed row must not
    make a query over many fail (SQLite's JSON functions raise on malformed text). For a
    query over the stored rows that leaves the damaged ones out (``NOT DAMAGED_SQL``)."""
    return f"(CASE WHEN json_valid({column}) THEN {column} END)"


def _cleaned(column: str) -> str:
    """The column of `clean_rows`'s ``task``: as stored in an intact row, else `CLEAN_SQL`."""
    if column == "seq":
        return "seq"
    if column == "status":
        return "CASE WHEN damage IS NULL THEN status ELSE 'failed' END"
    return f"CASE WHEN damage IS NULL THEN {column} ELSE ({CLEAN_SQL[column]}) END"


def clean_rows(rest: str) -> str:
    """A ``WITH`` clause naming ``task``: the rows of ``FROM tasks {rest}`` (a WHERE, an
    ORDER BY, a LIMIT), each column as `CLEAN_SQL` makes it, plus ``damage``, why the row
    is damaged (NULL: intact). What `TASK_COLUMNS`, `VIEW_JSON` and `FLAT_SQL` read.
    The damage is worked out once per row (a materialized table of the selected rows
    only), and an intact row's columns are taken as they are."""
    columns = ", ".join(f"{_cleaned(column)} AS {column}" for column in CLEAN_SQL)
    return (
        f"WITH stored AS MATERIALIZED (SELECT *, {_DAMAGE_SQL} AS damage FROM tasks {rest}),"
        f" task AS (SELECT {columns}, damage FROM stored)"
    )


# the expressions below read `clean_rows`'s ``task``: its JSON columns hold valid JSON
_RESULT, _FOREIGN, _PARAMS = "result", "foreign_result", "params"
#: the ``machines`` row of a result's environment (``machine_id``), as the end of a subquery
_ITS_MACHINE = f"FROM machines WHERE machines.id = json_extract({_RESULT}, '$.environment.machine_id')"


def find_damaged(db: sqlite3.Connection, path: object) -> list[str]:
    """The ids of the damaged rows (one walk of the table, when the queue opens), reported in the log."""
    ids = [str(r[0]) for r in db.execute(f"SELECT id FROM tasks WHERE {DAMAGED_SQL} ORDER BY seq")]
    if ids:
        shown = ", ".join(ids[:10]) + (f" y {len(ids) - 10} más" if len(ids) > 10 else "")
        log.warning(
            "la base de datos %s tiene %d filas dañadas (estado desconocido, una columna de otro tipo o JSON"
            " mal formado): %s; se muestran como dañadas y no se ejecutan; el resto de la cola sigue en servicio",
            path,
            len(ids),
            shown,
        )
    return ids


#: what `row_to_task` reads from `clean_rows`'s ``task``: the row (and its damage), and
#: the static part of its result's environment
TASK_COLUMNS = f"*, (SELECT data {_ITS_MACHINE}) AS machine"


def _result(row: sqlite3.Row) -> ExecuteResult | None:
    if row["result"] is None:
        return None
    result = ExecuteResult.model_validate_json(row["result"])
    env = result.environment
    if env is None or row["machine"] is None:
        return result
    machine = MachineEnvironment.model_validate_json(row["machine"])
    return result.model_copy(update={"environment": env.model_copy(update={"machine": machine})})


@dataclass
class _Decoded:
    """The JSON columns of a task row, decoded (defaults where a column is empty or damaged)."""

    params: ApiParams = field(default_factory=dict)
    result: ExecuteResult | None = None
    foreign_result: ForeignResult | None = None
    extra_runs: tuple[str, ...] = ()


def _decoded(row: sqlite3.Row, problems: list[str]) -> _Decoded:
    """The JSON columns of a row, decoded; what cannot be is left out and named in ``problems``
    (`TASK_COLUMNS` already left out what `DAMAGED_SQL` finds wrong)."""
    out = _Decoded()
    # each reader makes the value of the `_Decoded` field of its column's name
    readers: dict[str, Callable[[str], object]] = {
        "params": lambda text: dict(json.loads(text)),
        "result": lambda _text: _result(row),
        "foreign_result": ForeignResult.model_validate_json,
        "extra_runs": lambda text: tuple(str(w) for w in json.loads(text)),
    }
    for name, read in readers.items():
        text = row[name]
        if text is None or (name == "extra_runs" and not text):
            continue
        try:
            setattr(out, name, read(text))
        except (ValueError, TypeError, RecursionError):
            problems.append(f"{name} no es válido")
    return out


def row_to_task(row: sqlite3.Row) -> Task:
    """The row (read with `TASK_COLUMNS`) as a `Task`; a damaged one (see `DAMAGED_SQL`)
    comes back failed, its wrong columns in neutral values, with ``damaged`` saying why,
    so it is shown and never run."""
    problems: list[str] = []
    if row["damage"] is not None:
        problems.append(str(row["damage"]).removeprefix("fila dañada: "))
    status = row["status"]
    if status not in STATUSES:
        problems.append(f"estado desconocido {str(status)[:40]!r}")
    decoded = _decoded(row, problems)
    damaged = "fila dañada: " + "; ".join(dict.fromkeys(problems)) if problems else None
    return Task(
        id=row["id"],
        seq=row["seq"],
        batch=row["batch"],
        status=FAILED if damaged else queue_status(status),
        benchmark=row["benchmark"],
        params=decoded.params,
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
        result=decoded.result,
        error=damaged or row["error"],
        foreign_result=decoded.foreign_result,
        extra_runs=decoded.extra_runs,
        threads=row["threads"],
        damaged=damaged,
        priority=row["priority"],
        label=row["label"],
    )


@dataclass(frozen=True)
class Selection:
    """Which tasks a page or an export reads: filters, and ``originals`` to leave out the
    verification re-runs."""

    status: QueueStatus | None = None
    batch: str | None = None
    originals: bool = False
    label: str | None = None

    def where(self, *also: str) -> tuple[str, tuple[SqlValue, ...]]:
        """``(WHERE clause, args)``; ``also`` are more conditions without arguments."""
        clauses: list[str] = []
        args: list[SqlValue] = []
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
    " + (status = 'success' AND worker IS NOT NULL AND NOT EXISTS (SELECT 1 FROM"
    " json_each(extra_runs) WHERE value = worker)) - 1)"
)


def _outcome(field: str) -> str:
    """A field of the result, verifiable or else foreign (`results.flatten` reads either)."""
    return f"COALESCE(json_extract({_RESULT}, '$.{field}'), json_extract({_FOREIGN}, '$.{field}'))"


#: a result's JSON with its environment's static part put back from ``machines`` (NULL
#: when the stored text is not JSON: a damaged row)
_RESULT_JSON = (
    f"CASE WHEN json_extract({_RESULT}, '$.environment.machine_id') IS NULL THEN {_RESULT}"
    f" ELSE json_set({_RESULT}, '$.environment.machine', (SELECT json(data) {_ITS_MACHINE})) END"
)


def _machine(field: str) -> str:
    """A field of the static part of a result's environment."""
    return f"(SELECT json_extract(data, '$.{field}') {_ITS_MACHINE})"


#: the flat columns of a result row (see `results.flatten`) as SQL over the stored row
FLAT_SQL = {
    "id": "id",
    "batch": "batch",
    "status": "status",
    "engine": f"COALESCE({_outcome('engine')}, benchmark)",
    "particles": f"json_extract({_PARAMS}, '$.{PARTICLES_KEY}')",
    "steps": f"json_extract({_PARAMS}, '$.{STEPS_KEY}')",
    "seed": f"json_extract({_PARAMS}, '$.{SEED_KEY}')",
    "worker": "worker",
    "attempts": "attempts",
    "simulation_time": _outcome("simulation_time"),
    "execution_time": _outcome("execution_time"),
    "particle_collisions": _outcome("particle_collisions"),
    "wall_collisions": _outcome("wall_collisions"),
    "kinetic_energy": _outcome("kinetic_energy"),
    "checksum": f"json_extract({_RESULT}, '$.checksum')",
    "error": "COALESCE(damage, CASE WHEN status != 'success' THEN error END)",
    "verify_of": "verify_of",
    "verifiable": f"{_FOREIGN} IS NULL",  # 1/0: `flat_rows` callers turn it into a bool
    "duplicates": _DUPLICATES,
    "threads": f"json_extract({_RESULT}, '$.threads')",  # used (a verifiable result's)
    "threads_requested": f"COALESCE(json_extract({_RESULT}, '$.threads_requested'), threads)",
    "threads_reason": f"json_extract({_RESULT}, '$.threads_reason')",
    # 1/0, or empty for a result without environment
    "contended": f"json_extract({_RESULT}, '$.environment.contended')",
    "contended_by": f"(SELECT group_concat(value, ' ') FROM json_each({_RESULT}, '$.environment.contended_by'))",
    "load_start": f"json_extract({_RESULT}, '$.environment.load_start')",
    "load_end": f"json_extract({_RESULT}, '$.environment.load_end')",
    "runner": f"json_extract({_RESULT}, '$.runner')",
    "machine_id": f"json_extract({_RESULT}, '$.environment.machine_id')",
    "cpu_model": _machine("cpu_model"),
    "logical_cpus": _machine("logical_cpus"),
    "usable_cpus": _machine("usable_cpus"),
    "memory_bytes": _machine("memory_bytes"),
    "python": _machine("python"),
    "partisim": _machine("partisim"),
    "model": _machine("model"),
    "compiler": _machine("engine_build.compiler"),
    "flags": _machine("engine_build.flags"),
    "openmp": _machine("engine_build.openmp"),
    "wait_policy": _machine("engine_build.wait_policy"),
    "docker_image_id": _machine("docker_image_id"),
    "other_tasks": f"json_extract({_RESULT}, '$.environment.other_tasks')",
    "worker_threads_max": f"json_extract({_RESULT}, '$.environment.worker_threads_max')",
    # joined as `results.WARNINGS_SEPARATOR` joins them
    "warnings": f"(SELECT group_concat(value, ' | ') FROM json_each({_RESULT}, '$.warnings'))",
}
#: the flat columns that are booleans
FLAT_BOOLEANS = frozenset({"verifiable", "contended", "openmp"})


def _real(expr: str) -> str:
    """A REAL as a JSON number that reads back as the same double (17 digits: SQLite's
    own rendering keeps 15), or null."""
    return f"CASE WHEN ({expr}) IS NULL THEN NULL ELSE json(printf('%!.17g', {expr})) END"


def microseconds_sql(expr: str) -> str:
    """``task.to_microseconds(expr)`` as a JSON number, or null: round(x) with no digits
    is ``(int)(x + 0.5)`` in SQLite, the same double operations as the Python side, and
    the whole number of microseconds is written as text, never read back as a double."""
    whole = f"CAST(round(({expr}) * 1000000.0) AS INTEGER)"
    return (
        f"CASE WHEN ({expr}) IS NULL THEN NULL ELSE json(printf('%s%d.%06d',"
        f" CASE WHEN {whole} < 0 THEN '-' ELSE '' END, abs({whole}) / 1000000, abs({whole}) % 1000000)) END"
    )


#: ``Task.view()`` as one JSON text, made by SQLite from the stored columns: the params
#: and the result go in as stored (json() keeps their numbers' text), so a page or an
#: export of many rows decodes and validates nothing in Python
VIEW_JSON = (
    "json_object('id', id, 'seq', seq, 'batch', batch, 'status', status, 'benchmark', benchmark,"
    " 'params', json(params), 'worker', worker, 'attempts', attempts, 'max_attempts', max_attempts,"
    f" 'timings', json_object('created_at', {_real('created_at')}, 'started_at', {_real('started_at')},"
    f" 'finished_at', {_real('finished_at')}, 'queue_s', {microseconds_sql('started_at - created_at')},"
    f" 'run_s', {microseconds_sql('finished_at - started_at')}),"
    f" 'result', json({_RESULT_JSON}), 'error', COALESCE(damage, error), 'verify_of', verify_of,"
    " 'verifiable', json(CASE WHEN foreign_result IS NULL THEN 'true' ELSE 'false' END),"
    f" 'foreign_result', json(foreign_result), 'duplicates', {_DUPLICATES}, 'threads', threads,"
    " 'priority', priority, 'label', label, 'damaged', damage)"
)
