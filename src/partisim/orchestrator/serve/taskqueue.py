"""The durable task queue: one SQLite file (WAL) holding every task and its state.

This module owns the schema and every state change of a task. Each transition is a
single conditional ``UPDATE`` (``WHERE status = ... AND attempts = ...``) so that two
racing outcomes for the same task -- a late answer from a worker that was given up on
and the answer of the retry, say -- can never both be recorded: the first one wins and
the second finds the row no longer in the state it expects.

The states and the task types are in `serve.task`; this module stores them.

A success holds either a verifiable `ExecuteResult` (column ``result``) or what a worker
that is not partisim reported (``foreign_result``). ``extra_runs`` lists the workers
known to have run a task besides the attempt that was recorded (a retry after a read
timeout may run it on two workers): the task's ``duplicates``. ``threads`` is what the
task asked for: the executor gives it that many slots where it runs (capped at what the
worker can use).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from partisim.orchestrator.serve.tally import KEEP_SECONDS, Tally
from partisim.orchestrator.serve.task import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    STATUSES,
    SUCCESS,
    Task,
    TaskSpec,
    TimeStats,
    new_batch_id,
)
from partisim.protocol import BatchInfo, ExecuteResult, ForeignResult, TaskResult

__all__ = ["Selection", "FLAT_BOOLEANS", "TaskQueue"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    batch          TEXT NOT NULL,
    status         TEXT NOT NULL,
    benchmark      TEXT NOT NULL,
    params         TEXT NOT NULL,
    timeout        REAL,
    verify_of      TEXT,
    exclude_worker TEXT,
    avoid_worker   TEXT,
    worker         TEXT,
    worker_url     TEXT,
    attempts       INTEGER NOT NULL DEFAULT 0,
    max_attempts   INTEGER NOT NULL,
    not_before     REAL NOT NULL DEFAULT 0,
    deadline       REAL,
    created_at     REAL NOT NULL,
    started_at     REAL,
    finished_at    REAL,
    result         TEXT,
    error          TEXT,
    foreign_result TEXT,
    extra_runs     TEXT,
    threads        INTEGER NOT NULL DEFAULT 1
);
-- replaced by the indexes below; a database made by an older version still has them
DROP INDEX IF EXISTS tasks_status;
DROP INDEX IF EXISTS tasks_finished;
CREATE INDEX IF NOT EXISTS tasks_status_seq ON tasks (status, seq);
CREATE INDEX IF NOT EXISTS tasks_status_ready ON tasks (status, not_before);
CREATE INDEX IF NOT EXISTS tasks_batch ON tasks (batch, seq);
CREATE INDEX IF NOT EXISTS tasks_batch_status ON tasks (batch, status);
-- time windows (throughput, activity, the latest finished tasks): a range of this index
-- alone, whatever the number of older rows; status is in it so no row is looked up
CREATE INDEX IF NOT EXISTS tasks_finished_status ON tasks (finished_at, status);
CREATE INDEX IF NOT EXISTS tasks_batch_finished ON tasks (batch, finished_at, status);
"""

#: the statuses whose tasks count as activity (throughput, per-worker counts)
_ACTIVITY = (SUCCESS, FAILED)


#: columns added after the first version: a database made by an older one gets them
_ADDED_COLUMNS = {"foreign_result": "TEXT", "extra_runs": "TEXT", "threads": "INTEGER NOT NULL DEFAULT 1"}
#: what a `tasks` table must have to be ours
_CORE_COLUMNS = frozenset(
    {"seq", "id", "batch", "status", "benchmark", "params", "attempts", "max_attempts", "created_at", "result", "error"}
)


def _new_task_id() -> str:
    return "t-" + secrets.token_hex(8)


def _distinct_warnings(concatenated: str | None) -> tuple[str, ...]:
    """``'["a"],[],["b"]'`` (GROUP_CONCAT of JSON lists) -> ``("a", "b")``."""
    if not concatenated:
        return ()
    try:
        lists = json.loads(f"[{concatenated}]")
    except ValueError:
        return ()
    found = [w for item in lists if isinstance(item, list) for w in item if isinstance(w, str)]
    return tuple(dict.fromkeys(found))


def _row_to_task(row: sqlite3.Row) -> Task:
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
        result=ExecuteResult.model_validate_json(row["result"]) if row["result"] is not None else None,
        error=row["error"],
        foreign_result=(
            ForeignResult.model_validate_json(row["foreign_result"]) if row["foreign_result"] is not None else None
        ),
        extra_runs=tuple(json.loads(row["extra_runs"])) if row["extra_runs"] else (),
        threads=row["threads"],
    )


@dataclass(frozen=True)
class Selection:
    """Which tasks a page or an export reads: filters, and ``originals`` to leave out the
    verification re-runs."""

    status: str | None = None
    batch: str | None = None
    originals: bool = False

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


#: the flat columns of a result row (see `results.flatten`) as SQL over the stored row
_FLAT_SQL = {
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
    # joined as `results.WARNINGS_SEPARATOR` joins them
    "warnings": "(SELECT group_concat(value, ' | ') FROM json_each(result, '$.warnings'))",
}
#: the flat columns that are booleans
FLAT_BOOLEANS = frozenset({"verifiable"})


def _real(expr: str) -> str:
    """A REAL as a JSON number that reads back as the same double (17 digits: SQLite's
    own rendering keeps 15), or null."""
    return f"CASE WHEN ({expr}) IS NULL THEN NULL ELSE json(printf('%!.17g', {expr})) END"


#: ``Task.view()`` as one JSON text, made by SQLite from the stored columns: the params
#: and the result go in as stored (json() keeps their numbers' text), so a page or an
#: export of many rows decodes and validates nothing in Python
_VIEW_JSON = (
    "json_object('id', id, 'seq', seq, 'batch', batch, 'status', status, 'benchmark', benchmark,"
    " 'params', json(params), 'worker', worker, 'attempts', attempts, 'max_attempts', max_attempts,"
    f" 'timings', json_object('created_at', {_real('created_at')}, 'started_at', {_real('started_at')},"
    f" 'finished_at', {_real('finished_at')}, 'queue_s', {_real('round(started_at - created_at, 6)')},"
    f" 'run_s', {_real('round(finished_at - started_at, 6)')}),"
    " 'result', json(result), 'error', error, 'verify_of', verify_of,"
    " 'verifiable', json(CASE WHEN foreign_result IS NULL THEN 'true' ELSE 'false' END),"
    f" 'foreign_result', json(foreign_result), 'duplicates', {_DUPLICATES}, 'threads', threads)"
)


class TaskQueue:
    """A task queue in one SQLite file.

    Thread-safe: one connection behind a lock for every change and the short reads the
    asyncio code of ``serve`` makes directly; a second connection behind its own lock
    for the long reads (pages, exports), which run in threads and, the file being in WAL
    mode, never hold up a change.

    The counts per status, per batch and per worker are kept in memory (`Tally`), in
    step with every transition this object makes, and read from the table when it opens.
    """

    def __init__(self, path: str | Path, *, max_attempts: int = 4, verify: bool = False) -> None:
        """Open (or create) the queue in ``path``. ``verify``: check the file's integrity
        first (``PRAGMA quick_check``) and refuse a damaged one with `sqlite3.DatabaseError`
        before anything is written to it."""
        self.path = Path(path)
        self.max_attempts = max(1, int(max_attempts))
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30.0)
        try:
            self._open(verify)
        except BaseException:
            self._db.close()
            raise

    def _open(self, verify: bool) -> None:
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA busy_timeout=30000")
        if verify:
            self._verify()
        self._check_table()  # before anything is written to the file
        # WAL + synchronous=NORMAL: a killed process loses nothing that was committed;
        # only an OS crash could lose the last transactions.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._lock:
            self._migrate()
            self._db.executescript(_SCHEMA)
            self.tally = self._read_tally()
        self._read_lock = threading.Lock()
        self._reader = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30.0)
        self._reader.row_factory = sqlite3.Row
        self._reader.execute("PRAGMA busy_timeout=30000")

    def _read_tally(self) -> Tally:
        """The in-memory counts, from the table (each query walks one index)."""
        tally = Tally(STATUSES, _ACTIVITY)
        for batch, status, n in self._db.execute("SELECT batch, status, COUNT(*) FROM tasks GROUP BY batch, status"):
            tally.add(batch, status, n)
        for worker, status, n in self._db.execute(
            "SELECT worker, status, COUNT(*) FROM tasks WHERE status IN (?, ?) AND worker IS NOT NULL"
            " GROUP BY worker, status",
            _ACTIVITY,
        ):
            tally.count_worker(worker, status, n)
        since = int(time.time()) - KEEP_SECONDS
        for second, n in self._db.execute(
            "SELECT CAST(finished_at AS INTEGER), COUNT(*) FROM tasks INDEXED BY tasks_finished_status"
            " WHERE finished_at >= ? AND status IN (?, ?) GROUP BY 1 ORDER BY 1",
            (since, *_ACTIVITY),
        ):
            tally.count_finished(int(second), n)
        return tally

    def _verify(self) -> None:
        """A damaged file fails here, not in the middle of serving."""
        problems = [str(r[0]) for r in self._db.execute("PRAGMA quick_check(3)").fetchall()]
        if problems != ["ok"]:
            lines = [x.strip() for p in problems for x in p.splitlines() if x.strip() and not x.startswith("***")]
            raise sqlite3.DatabaseError("; ".join(lines)[:300] or "comprobación de integridad fallida")

    def _columns(self) -> set[str]:
        return {str(r[1]) for r in self._db.execute("PRAGMA table_info(tasks)").fetchall()}

    def _check_table(self) -> None:
        """A `tasks` table of some other program is not ours to change."""
        columns = self._columns()
        missing = _CORE_COLUMNS - columns
        if columns and missing:
            raise sqlite3.DatabaseError(
                f"su tabla tasks no es de partisim (le faltan las columnas {', '.join(sorted(missing))})"
            )

    def _migrate(self) -> None:
        """Columns added since the first version (a table made by an older partisim)."""
        columns = self._columns()
        if not columns:
            return  # a new database: the schema makes the table whole
        for name, kind in _ADDED_COLUMNS.items():
            if name not in columns:
                self._db.execute(f"ALTER TABLE tasks ADD COLUMN {name} {kind}")

    # -- plumbing -------------------------------------------------------------------

    def close(self) -> None:
        with self._read_lock:
            self._reader.close()
        with self._lock:
            self._db.close()

    def __enter__(self) -> TaskQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _transition(
        self, sql: str, args: Sequence[Any], before: str, after: str, finished_at: float | None = None
    ) -> bool:
        """Run one conditional ``UPDATE ... RETURNING batch, worker``; when it moved the
        row, move it in the tally too (same lock: the two never disagree)."""
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()  # fetchall: steps the statement to its end
            if not rows:
                return False
            self.tally.move(rows[0][0], before, after, worker=rows[0][1], finished_at=finished_at)
            return True

    def _select(self, sql: str, args: Sequence[Any] = ()) -> list[Task]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_row_to_task(r) for r in rows]

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """A long read on the second connection (call it from a thread)."""
        with self._read_lock:
            return self._reader.execute(sql, args).fetchall()

    # -- adding work ------------------------------------------------------------------

    def enqueue(self, specs: Iterable[TaskSpec], batch: str | None = None) -> tuple[str, list[str]]:
        """Add tasks in one transaction; returns ``(batch, ids)`` in submission order."""
        batch = batch or new_batch_id()
        now = time.time()
        ids: list[str] = []
        rows = []
        for spec in specs:
            task_id = _new_task_id()
            ids.append(task_id)
            rows.append(
                (
                    task_id,
                    batch,
                    QUEUED,
                    spec.benchmark,
                    json.dumps(spec.params, sort_keys=True),
                    spec.timeout,
                    spec.verify_of,
                    spec.exclude_worker,
                    self.max_attempts,
                    now,
                    spec.threads,
                )
            )
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO tasks (id, batch, status, benchmark, params, timeout,"
                    " verify_of, exclude_worker, max_attempts, created_at, threads)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if rows:
                self.tally.add(batch, QUEUED, len(rows))
        return batch, ids

    # -- reading ----------------------------------------------------------------------

    def get(self, task_id: str) -> Task | None:
        found = self._select("SELECT * FROM tasks WHERE id = ?", (task_id,))
        return found[0] if found else None

    def tasks(self, *, status: str | None = None, batch: str | None = None, limit: int = 1000) -> list[Task]:
        """Tasks, newest first, optionally filtered by status and batch."""
        where, args = self._filters(status=status, batch=batch)
        return self._select(f"SELECT * FROM tasks {where} ORDER BY seq DESC LIMIT ?", (*args, int(limit)))

    def ready(self, limit: int, now: float | None = None, offset: int = 0) -> list[Task]:
        """Queued tasks whose backoff has elapsed, oldest first (a page of them)."""
        now = time.time() if now is None else now
        return self._select(
            # walk (status, seq) in order; the planner would otherwise sort every queued row
            "SELECT * FROM tasks INDEXED BY tasks_status_seq WHERE status = ? AND not_before <= ?"
            " ORDER BY seq LIMIT ? OFFSET ?",
            (QUEUED, now, int(limit), int(offset)),
        )

    def next_ready_at(self, after: float | None = None) -> float | None:
        """When the earliest queued task becomes dispatchable (of those not ready by
        ``after``, if given), or None if there is none."""
        with self._lock:
            row = self._db.execute(
                "SELECT MIN(not_before) FROM tasks WHERE status = ? AND not_before > ?",
                (QUEUED, float("-inf") if after is None else after),
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def running(self) -> list[Task]:
        return self._select("SELECT * FROM tasks WHERE status = ? ORDER BY seq", (RUNNING,))

    def counts(self, batch: str | None = None) -> dict[str, int]:
        """Number of tasks per status (every status present), plus ``total``, counted in
        the table (`live_counts` answers the same from memory)."""
        where, args = self._filters(batch=batch)
        with self._lock:
            rows = self._db.execute(f"SELECT status, COUNT(*) FROM tasks {where} GROUP BY status", args).fetchall()
        counts = {s: 0 for s in STATUSES}
        for status, n in rows:
            counts[status] = n
        counts["total"] = sum(counts[s] for s in STATUSES)
        return counts

    def live_counts(self, batch: str | None = None) -> dict[str, int]:
        """`counts` from memory (O(1)): what this object wrote, on top of what the table
        held when it opened."""
        with self._lock:
            return self.tally.counts(batch)

    @property
    def revision(self) -> int:
        """Bumped by every change this object makes: equal numbers, nothing to look at again."""
        return self.tally.revision

    def finished_recently(self, seconds: int, now: float | None = None) -> int:
        """Tasks finished (success or failed) in the last ``seconds`` whole seconds, the
        current one included (from memory)."""
        with self._lock:
            return self.tally.finished_in_last(seconds, time.time() if now is None else now)

    def activity(self, start: int, width: int, buckets: int) -> list[int]:
        """`finished_histogram` from memory, to the second: ``buckets`` runs of ``width``
        seconds from second ``start`` (within the last `KEEP_SECONDS`)."""
        with self._lock:
            return self.tally.histogram(start, width, buckets)

    def has_pending(self, batch: str | None = None) -> bool:
        """Whether any task (of ``batch``) is still queued or running (from memory: a
        long poll asks this after every finished task)."""
        counts = self.live_counts(batch)
        return counts[QUEUED] + counts[RUNNING] > 0

    def finished_since(self, since: float, batch: str | None = None) -> int:
        """Tasks finished (success or failed) at or after ``since``: a range of the
        finished-time index, whatever the number of older rows."""
        if batch is None:
            sql = (
                "SELECT COUNT(*) FROM tasks INDEXED BY tasks_finished_status"
                " WHERE finished_at >= ? AND status IN (?, ?)"
            )
            args: tuple[Any, ...] = (since, *_ACTIVITY)
        else:
            sql = (
                "SELECT COUNT(*) FROM tasks INDEXED BY tasks_batch_finished"
                " WHERE batch = ? AND finished_at >= ? AND status IN (?, ?)"
            )
            args = (batch, since, *_ACTIVITY)
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return int(row[0])

    def assigned_per_worker(self, status: str = SUCCESS) -> dict[str, int]:
        """Tasks in ``status`` per worker (by default: who did the work); success and
        failed come from memory."""
        if status in _ACTIVITY:
            with self._lock:
                return self.tally.worker_counts(status)
        with self._lock:
            rows = self._db.execute(
                "SELECT worker, COUNT(*) FROM tasks WHERE status = ? GROUP BY worker",
                (status,),
            ).fetchall()
        return {w: n for w, n in rows if w is not None}

    def finished_histogram(self, start: float, width: float, buckets: int) -> list[int]:
        """Tasks finished (success or failed) in each of ``buckets`` windows of ``width``
        seconds from ``start``: one query over a range of the finished-time index."""
        counts = [0] * buckets
        with self._lock:
            rows = self._db.execute(
                "SELECT CAST((finished_at - ?) / ? AS INTEGER), COUNT(*) FROM tasks"
                " INDEXED BY tasks_finished_status"
                " WHERE finished_at >= ? AND finished_at < ? AND status IN (?, ?) GROUP BY 1",
                (start, width, start, start + width * buckets, *_ACTIVITY),
            ).fetchall()
        for k, n in rows:
            if 0 <= k < buckets:
                counts[k] += n
        return counts

    def recent(self, limit: int) -> list[Task]:
        """What a live view lists: the running tasks, then the latest finished ones, then
        (if there is room) the next queued ones. Each part walks an index from its end and
        stops after ``limit`` rows."""
        found = self._select(
            "SELECT * FROM tasks INDEXED BY tasks_status_seq WHERE status = ? ORDER BY seq DESC LIMIT ?",
            (RUNNING, limit),
        )
        if len(found) < limit:
            found += self._select(
                "SELECT * FROM tasks INDEXED BY tasks_finished_status WHERE finished_at IS NOT NULL"
                " ORDER BY finished_at DESC LIMIT ?",
                (limit - len(found),),
            )
        if len(found) < limit:
            found += self._select(
                "SELECT * FROM tasks INDEXED BY tasks_status_seq WHERE status = ? ORDER BY seq LIMIT ?",
                (QUEUED, limit - len(found)),
            )
        return found

    # -- long reads: pages and exports (second connection; call them from a thread) --

    def page(
        self, selection: Selection, *, limit: int, after_seq: int | None = None, before_seq: int | None = None
    ) -> tuple[list[str], int | None]:
        """One page of tasks as JSON texts (`Task.view`), and the cursor of the next page (None
        when this is the last). With ``after_seq``: oldest first from there; otherwise
        newest first, below ``before_seq`` if given. Each page is a range of an index."""
        if after_seq is not None:
            where, args = selection.where("seq > ?")
            args, order = (*args, after_seq), "ASC"
        elif before_seq is not None:
            where, args = selection.where("seq < ?")
            args, order = (*args, before_seq), "DESC"
        else:
            (where, args), order = selection.where(), "DESC"
        rows = self._read(
            f"SELECT seq, {_VIEW_JSON} FROM tasks {where} ORDER BY seq {order} LIMIT ?", (*args, limit + 1)
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return [r[1] for r in rows], (rows[-1][0] if more else None)

    def extent(self, selection: Selection) -> tuple[int, int]:
        """``(last seq, count)`` of the selection now: an export reads up to that seq, so
        it is a fixed set of rows however long it takes."""
        with self._read_lock:
            self._reader.execute("BEGIN")  # both numbers from one snapshot
            try:
                (upto,) = self._reader.execute("SELECT COALESCE(MAX(seq), 0) FROM tasks").fetchone()
                where, args = selection.where("seq <= ?")
                (count,) = self._reader.execute(f"SELECT COUNT(*) FROM tasks {where}", (*args, upto)).fetchone()
            finally:
                self._reader.execute("COMMIT")
        return int(upto), int(count)

    def view_rows(self, selection: Selection, *, after_seq: int, upto: int, limit: int) -> list[tuple[int, str]]:
        """``(seq, view JSON)`` of the selection with ``after_seq < seq <= upto``, oldest first."""
        where, args = selection.where("seq > ?", "seq <= ?")
        rows = self._read(
            f"SELECT seq, {_VIEW_JSON} FROM tasks {where} ORDER BY seq LIMIT ?", (*args, after_seq, upto, limit)
        )
        return [(r[0], r[1]) for r in rows]

    def flat_rows(
        self, columns: Sequence[str], selection: Selection, *, after_seq: int, upto: int, limit: int
    ) -> list[tuple[Any, ...]]:
        """``(seq, *columns)`` rows of the selection (the flat result columns, extracted by
        SQLite from the stored JSON), ``after_seq < seq <= upto``, oldest first."""
        select = ", ".join(_FLAT_SQL[c] for c in columns)
        where, args = selection.where("seq > ?", "seq <= ?")
        with self._read_lock:
            cursor = self._reader.cursor()
            cursor.row_factory = None  # plain tuples
            rows: list[tuple[Any, ...]] = cursor.execute(
                f"SELECT seq, {select} FROM tasks {where} ORDER BY seq LIMIT ?", (*args, after_seq, upto, limit)
            ).fetchall()
            return rows

    def sample(self, selection: Selection, count: int) -> list[Task]:
        """Up to ``count`` tasks of the selection picked at random; every row is a candidate."""
        where, args = selection.where()
        rows = self._read(f"SELECT * FROM tasks {where} ORDER BY random() LIMIT ?", (*args, count))
        return [_row_to_task(r) for r in rows]

    def batches(self, limit: int = 100) -> list[BatchInfo]:
        """Batches, newest first, with their counts per status. Reads every row: on the
        second connection, so a thread calling it never holds up a change."""
        rows = self._read(
            "SELECT batch, status, COUNT(*), MIN(seq), MIN(created_at), MAX(finished_at)"
            " FROM tasks GROUP BY batch, status"
        )
        found: dict[str, dict[str, Any]] = {}
        for batch, status, n, first_seq, created, finished in rows:
            item = found.setdefault(
                batch,
                {
                    "batch": batch,
                    "first_seq": first_seq,
                    "created_at": created,
                    "finished_at": finished,
                    **{s: 0 for s in STATUSES},
                },
            )
            item[status] = n
            item["first_seq"] = min(item["first_seq"], first_seq)
            item["created_at"] = min(item["created_at"], created)
            if finished is not None:
                item["finished_at"] = max(item["finished_at"] or 0.0, finished)
        ordered = sorted(found.values(), key=lambda b: b["first_seq"], reverse=True)[:limit]
        return [BatchInfo(total=sum(item[s] for s in STATUSES), **item) for item in ordered]

    #: most batch ids in one ``IN (...)`` (SQLite allows 999 parameters in old builds)
    _IN_CHUNK = 500

    def time_stats(self, batches: Sequence[str] | None = None) -> list[TimeStats]:
        """Successful, non-verification runs grouped by batch x engine x particles x
        steps x other parameters: count, sum and sum of squares of their simulation
        times, sums of their pair collisions and final kinetic energies, and their
        distinct warnings. The grouping happens in SQLite, so the caller never decodes
        a result. Runs on several threads form groups of their own (``threads``)."""
        sql = (
            "SELECT batch, benchmark, json_extract(params, '$.NUM_PARTICULAS'),"
            " json_extract(params, '$.NUM_PASOS'),"
            " json_remove(params, '$.NUM_PARTICULAS', '$.NUM_PASOS', '$.SEMILLA'), used,"
            " COUNT(*), SUM(t), SUM(t * t), TOTAL(pc), TOTAL(ke), GROUP_CONCAT(DISTINCT w)"
            " FROM (SELECT batch, benchmark, params, json_extract(result, '$.simulation_time') AS t,"
            "       COALESCE(json_extract(result, '$.threads'), 1) AS used,"
            "       json_extract(result, '$.particle_collisions') AS pc,"
            "       json_extract(result, '$.kinetic_energy') AS ke,"
            "       json_extract(result, '$.warnings') AS w"
            "       FROM tasks WHERE status = ? AND verify_of IS NULL{where})"
            " WHERE t IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6"
        )
        chunks: list[list[str] | None] = (
            [None]
            if batches is None
            else [list(batches[i : i + self._IN_CHUNK]) for i in range(0, len(batches), self._IN_CHUNK)]
        )
        out: list[TimeStats] = []
        for chunk in chunks:
            where, args = "", [SUCCESS]
            if chunk is not None:
                where = f" AND batch IN ({', '.join(['?'] * len(chunk))})"
                args.extend(chunk)
            with self._lock:
                rows = self._db.execute(sql.format(where=where), args).fetchall()
            out.extend(
                TimeStats(
                    b,
                    e,
                    int(n),
                    int(s),
                    rest,
                    int(c),
                    float(t),
                    float(t2),
                    int(pc),
                    float(ke),
                    _distinct_warnings(w),
                    int(used),
                )
                for b, e, n, s, rest, used, c, t, t2, pc, ke, w in rows
            )
        return out

    def batch_exists(self, batch: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM tasks WHERE batch = ? LIMIT 1", (batch,)).fetchone()
        return row is not None

    @staticmethod
    def _filters(
        *, status: str | None = None, batch: str | None = None, also: tuple[Any, ...] = ()
    ) -> tuple[str, tuple[Any, ...]]:
        """``(WHERE clause, args)`` for the given filters; ``also`` is one more condition
        and its arguments, ``(sql, *args)``."""
        clauses: list[str] = []
        args: list[Any] = []
        if status is not None:
            clauses.append("status = ?")
            args.append(status)
        if batch is not None:
            clauses.append("batch = ?")
            args.append(batch)
        if also:
            clauses.append(also[0])
            args.extend(also[1:])
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", tuple(args)

    # -- transitions ------------------------------------------------------------------

    _CLAIM = (
        "UPDATE tasks SET status = ?, worker = ?, worker_url = ?, deadline = ?,"
        " attempts = attempts + 1, started_at = ?"
        " WHERE id = ? AND status = ? RETURNING attempts, batch"
    )

    def claim(self, task_id: str, worker: str, worker_url: str, deadline: float) -> int | None:
        """queued -> running on ``worker``; returns the attempt number, or None if lost."""
        return self.claim_many([(task_id, worker, worker_url, deadline)])[0]

    def claim_many(self, claims: Sequence[tuple[str, str, str, float]]) -> list[int | None]:
        """``claim`` for several ``(task_id, worker, worker_url, deadline)`` in one
        transaction (one commit instead of one per task); the same conditional UPDATE
        per task, so each result is its attempt number or None if that one was lost."""
        if not claims:
            return []
        now = time.time()
        out: list[int | None] = []
        moved: list[str] = []
        with self._lock:
            if len(claims) > 1:
                self._db.execute("BEGIN IMMEDIATE")
            try:
                for task_id, worker, worker_url, deadline in claims:
                    row = self._db.execute(
                        self._CLAIM, (RUNNING, worker, worker_url, deadline, now, task_id, QUEUED)
                    ).fetchall()  # fetchall: steps the statement to its end
                    out.append(int(row[0][0]) if row else None)
                    if row:
                        moved.append(row[0][1])
                if len(claims) > 1:
                    self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            for batch in moved:  # committed: now the tally
                self.tally.move(batch, QUEUED, RUNNING)
        return out

    _COMPLETE = (
        "UPDATE tasks SET status = ?, result = ?, foreign_result = ?, error = NULL, finished_at = ?,"
        " deadline = NULL, worker = COALESCE(?, worker) WHERE id = ? AND status = ? AND attempts = ?"
        " RETURNING batch, worker"
    )

    def complete(self, task_id: str, attempt: int, result: TaskResult, worker: str | None = None) -> bool:
        """running (this attempt) -> success with ``result``. False if it was not ours.

        ``worker``: who really ran it, when the executor placed it itself (Dask). A
        `ForeignResult` (a worker that is not partisim) is kept apart from verifiable ones."""
        return self.complete_many([(task_id, attempt, result, worker)])[0]

    def complete_many(self, items: Sequence[tuple[str, int, TaskResult, str | None]]) -> list[bool]:
        """``complete`` for several ``(task_id, attempt, result, worker)`` in one
        transaction (one commit instead of one per result); each answer as ``complete``'s.
        The tally follows once the transaction is committed."""
        if not items:
            return []
        now = time.time()
        rows = []
        for task_id, attempt, result, worker in items:
            verified = result.model_dump_json() if isinstance(result, ExecuteResult) else None
            foreign = result.model_dump_json() if isinstance(result, ForeignResult) else None
            rows.append((SUCCESS, verified, foreign, now, worker, task_id, RUNNING, attempt))
        out: list[bool] = []
        moved: list[tuple[str, str | None]] = []
        with self._lock:
            if len(rows) > 1:
                self._db.execute("BEGIN IMMEDIATE")
            try:
                for row in rows:
                    found = self._db.execute(self._COMPLETE, row).fetchall()  # fetchall: steps to the end
                    out.append(bool(found))
                    if found:
                        moved.append((found[0][0], found[0][1]))
                if len(rows) > 1:
                    self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            for batch, worker_name in moved:  # committed: now the tally
                self.tally.move(batch, RUNNING, SUCCESS, worker=worker_name, finished_at=now)
        return out

    def note_run(self, task_id: str, worker: str) -> Task | None:
        """``worker`` ran ``task_id`` to the end although its answer was not (or not
        yet) the recorded one; returns the task as it is now (None if unknown)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT extra_runs FROM tasks WHERE id = ?", (task_id,)).fetchone()
                if row is not None:
                    runs = json.loads(row[0]) if row[0] else []
                    if worker not in runs:
                        runs.append(worker)
                        self._db.execute("UPDATE tasks SET extra_runs = ? WHERE id = ?", (json.dumps(runs), task_id))
                        self.tally.revision += 1  # a live view shows duplicates
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        return self.get(task_id) if row is not None else None

    def fail(self, task_id: str, attempt: int, error: str, worker: str | None = None) -> bool:
        """running (this attempt) -> failed with its last error (``worker``: as in `complete`)."""
        now = time.time()
        return self._transition(
            "UPDATE tasks SET status = ?, error = ?, finished_at = ?, deadline = NULL,"
            " worker = COALESCE(?, worker) WHERE id = ? AND status = ? AND attempts = ? RETURNING batch, worker",
            (FAILED, error, now, worker, task_id, RUNNING, attempt),
            RUNNING,
            FAILED,
            now,
        )

    def retry(self, task_id: str, attempt: int, error: str, not_before: float, worker: str | None = None) -> bool:
        """running (this attempt) -> queued again after ``not_before``, avoiding its worker.

        The worker (``worker`` when the executor learned who really ran it) moves to
        ``avoid_worker``: a queued task shows no worker, and the next claim prefers another one."""
        return self._transition(
            "UPDATE tasks SET status = ?, error = ?, not_before = ?, avoid_worker = COALESCE(?, worker),"
            " worker = NULL, worker_url = NULL, started_at = NULL, deadline = NULL"
            " WHERE id = ? AND status = ? AND attempts = ? RETURNING batch, avoid_worker",
            (QUEUED, error, not_before, worker, task_id, RUNNING, attempt),
            RUNNING,
            QUEUED,
        )

    def release(self, task_id: str, attempt: int, not_before: float) -> bool:
        """running (this attempt) -> queued without counting the attempt (worker busy)."""
        return self._transition(
            "UPDATE tasks SET status = ?, attempts = attempts - 1, not_before = ?,"
            " deadline = NULL, worker = NULL, worker_url = NULL, started_at = NULL"
            " WHERE id = ? AND status = ? AND attempts = ? RETURNING batch, worker",
            (QUEUED, not_before, task_id, RUNNING, attempt),
            RUNNING,
            QUEUED,
        )

    def cancel(self, task_id: str) -> Task | None:
        """queued|running -> cancelled. Returns the task as it was before, or None."""
        before = self.get(task_id)
        if before is None or before.is_final:
            return None
        ok = self._transition(
            "UPDATE tasks SET status = ?, finished_at = ?, deadline = NULL"
            " WHERE id = ? AND status = ? AND attempts = ? RETURNING batch, worker",
            (CANCELLED, time.time(), task_id, before.status, before.attempts),
            before.status,
            CANCELLED,
        )
        return before if ok else None
