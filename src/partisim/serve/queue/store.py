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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from partisim.protocol import ExecuteResult, ForeignResult, QueueStatus, TaskResult
from partisim.serve.queue.disk import quick_check, refuse_foreign, storage_full_as
from partisim.serve.queue.reads import TaskReads
from partisim.serve.queue.rows import (
    DAMAGED_SQL,
    TASK_COLUMNS,
    Selection,
    SqlValue,
    clean_rows,
    find_damaged,
    register_functions,
    row_to_task,
    stored_result,
)
from partisim.serve.queue.tally import KEEP_SECONDS, Tally
from partisim.serve.queue.task import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    STATUSES,
    SUCCESS,
    Task,
    TaskSpec,
    new_batch_id,
)

__all__ = ["TaskQueue"]

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
    threads        INTEGER NOT NULL DEFAULT 1,
    priority       INTEGER NOT NULL DEFAULT 0,
    label          TEXT
);
-- replaced by the indexes below; a database made by an older version still has them
DROP INDEX IF EXISTS tasks_status;
DROP INDEX IF EXISTS tasks_finished;
CREATE INDEX IF NOT EXISTS tasks_status_seq ON tasks (status, seq);
CREATE INDEX IF NOT EXISTS tasks_status_ready ON tasks (status, not_before);
-- dispatch order: priority (higher first), then submission order; a range of this index
CREATE INDEX IF NOT EXISTS tasks_status_priority ON tasks (status, priority DESC, seq);
CREATE INDEX IF NOT EXISTS tasks_label ON tasks (label) WHERE label IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_batch ON tasks (batch, seq);
CREATE INDEX IF NOT EXISTS tasks_batch_status ON tasks (batch, status);
-- time windows (throughput, activity, the latest finished tasks): a range of this index
-- alone, whatever the number of older rows; status is in it so no row is looked up
CREATE INDEX IF NOT EXISTS tasks_finished_status ON tasks (finished_at, status);
CREATE INDEX IF NOT EXISTS tasks_batch_finished ON tasks (batch, finished_at, status);
-- the static part of results' environments, once per worker (`queue.rows.stored_result`)
CREATE TABLE IF NOT EXISTS machines (id TEXT PRIMARY KEY, data TEXT NOT NULL);
"""

#: the statuses whose tasks count as activity (throughput, per-worker counts)
_ACTIVITY = (SUCCESS, FAILED)


#: columns added after the first version: a database made by an older one gets them
_ADDED_COLUMNS = {
    "foreign_result": "TEXT",
    "extra_runs": "TEXT",
    "threads": "INTEGER NOT NULL DEFAULT 1",
    "priority": "INTEGER NOT NULL DEFAULT 0",
    "label": "TEXT",
}
#: what a `tasks` table must have to be ours
_CORE_COLUMNS = frozenset(
    {"seq", "id", "batch", "status", "benchmark", "params", "attempts", "max_attempts", "created_at", "result", "error"}
)


def _new_task_id() -> str:
    return "t-" + secrets.token_hex(8)


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
        register_functions(self._db)
        if verify:
            quick_check(self._db)  # a damaged file fails here, not in the middle of serving
        self._check_table()  # before anything is written to the file
        # WAL + synchronous=NORMAL: a killed process loses nothing that was committed;
        # only an OS crash could lose the last transactions.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._lock:
            self._migrate()
            self._db.executescript(_SCHEMA)
            self.tally = self._read_tally()
            #: rows SQLite accepts that are no valid task (unknown status, malformed JSON)
            self.damaged = find_damaged(self._db, self.path)
        #: the read model: pages, exports, batches, statistics (a connection of its own)
        self.reads = TaskReads(self.path, self.damaged)

    def _read_tally(self) -> Tally:
        """The in-memory counts, from the table (each query walks one index)."""
        tally = Tally(STATUSES, _ACTIVITY)
        for batch, status, n in self._db.execute("SELECT batch, status, COUNT(*) FROM tasks GROUP BY batch, status"):
            if status in STATUSES:  # a damaged row's unknown status counts nowhere (`damaged`)
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

    def _columns(self) -> set[str]:
        return {str(r[1]) for r in self._db.execute("PRAGMA table_info(tasks)").fetchall()}

    def _check_table(self) -> None:
        """A database of another program (no `tasks` table, or not ours) is refused untouched."""
        columns = self._columns()
        missing = _CORE_COLUMNS - columns
        if columns and missing:
            raise sqlite3.DatabaseError(
                f"su tabla tasks no es de partisim (le faltan las columnas {', '.join(sorted(missing))})"
            )
        if not columns:
            refuse_foreign(self._db)

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
        self.reads.close()
        with self._lock:
            self._db.close()

    def __enter__(self) -> TaskQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self, *, when: bool = True) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error; hold ``self._lock``.
        ``when=False`` runs the body as it is (one statement is its own transaction)."""
        if not when:
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            with suppress(sqlite3.OperationalError):  # SQLite may have rolled back by itself (a full disk)
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
            raise

    def _transition(
        self, sql: str, args: Sequence[SqlValue], before: str, after: str, finished_at: float | None = None
    ) -> bool:
        """Run one conditional ``UPDATE ... RETURNING batch, worker``; when it moved the
        row, move it in the tally too (same lock: the two never disagree)."""
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()  # fetchall: steps the statement to its end
            if not rows:
                return False
            self.tally.move(rows[0][0], before, after, worker=rows[0][1], finished_at=finished_at)
            return True

    def _select(self, rest: str, args: Sequence[SqlValue] = (), order: str = "seq") -> list[Task]:
        """The tasks of ``FROM tasks {rest}`` (`rows.clean_rows`), in ``order``."""
        sql = f"{clean_rows(rest)} SELECT {TASK_COLUMNS} FROM task ORDER BY {order}"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [row_to_task(r) for r in rows]

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
                    spec.priority,
                    spec.label,
                )
            )
        with self._lock, storage_full_as(self.path):
            with self._transaction():
                self._db.executemany(
                    "INSERT INTO tasks (id, batch, status, benchmark, params, timeout,"
                    " verify_of, exclude_worker, max_attempts, created_at, threads, priority, label)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            if rows:
                self.tally.add(batch, QUEUED, len(rows))
        return batch, ids

    # -- reading ----------------------------------------------------------------------

    def get(self, task_id: str) -> Task | None:
        found = self._select("WHERE id = ?", (task_id,))
        return found[0] if found else None

    def tasks(self, *, status: QueueStatus | None = None, batch: str | None = None, limit: int = 1000) -> list[Task]:
        """Tasks, newest first, optionally filtered by status and batch."""
        where, args = Selection(status=status, batch=batch).where()
        return self._select(f"{where} ORDER BY seq DESC LIMIT ?", (*args, int(limit)), "seq DESC")

    def ready(self, limit: int, now: float | None = None, offset: int = 0) -> list[Task]:
        """Queued tasks whose backoff has elapsed, highest priority first and oldest first
        within a priority (a page of them)."""
        now = time.time() if now is None else now
        return self._select(
            # walk (status, priority, seq) in order; the planner would otherwise sort every queued row
            "INDEXED BY tasks_status_priority WHERE status = ? AND not_before <= ?"
            f" AND NOT {DAMAGED_SQL} ORDER BY priority DESC, seq LIMIT ? OFFSET ?",  # a damaged row never runs
            (QUEUED, now, int(limit), int(offset)),
            "priority DESC, seq",
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
        return self._select("WHERE status = ?", (RUNNING,))

    def counts(self, batch: str | None = None) -> dict[str, int]:
        """Number of tasks per status (every status present), plus ``total``, counted in
        the table (`live_counts` answers the same from memory)."""
        where, args = Selection(batch=batch).where()
        with self._lock:
            rows = self._db.execute(f"SELECT status, COUNT(*) FROM tasks {where} GROUP BY status", args).fetchall()
        counts: dict[str, int] = {s: 0 for s in STATUSES}
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
        """Tasks finished (success or failed) in each of ``buckets`` runs of ``width``
        seconds from second ``start`` (from memory, within the last `KEEP_SECONDS`)."""
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

    def recent(self, limit: int) -> list[Task]:
        """What a live view lists: the running tasks, then the latest finished ones, then
        (if there is room) the next queued ones. Each part walks an index from its end and
        stops after ``limit`` rows."""
        found = self._select(
            "INDEXED BY tasks_status_seq WHERE status = ? ORDER BY seq DESC LIMIT ?", (RUNNING, limit), "seq DESC"
        )
        if len(found) < limit:
            found += self._select(
                "INDEXED BY tasks_finished_status WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT ?",
                (limit - len(found),),
                "finished_at DESC",
            )
        if len(found) < limit:
            found += self._select(
                "INDEXED BY tasks_status_seq WHERE status = ? ORDER BY seq LIMIT ?", (QUEUED, limit - len(found))
            )
        return found

    def batch_exists(self, batch: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM tasks WHERE batch = ? LIMIT 1", (batch,)).fetchone()
        return row is not None

    # -- transitions ------------------------------------------------------------------

    _CLAIM = (
        "UPDATE tasks SET status = ?, worker = ?, worker_url = ?, deadline = ?,"
        " attempts = attempts + 1, started_at = ?"
        " WHERE id = ? AND status = ? RETURNING attempts, batch"
    )

    def claim_many(self, claims: Sequence[tuple[str, str, str, float]]) -> list[int | None]:
        """queued -> running for several ``(task_id, worker, worker_url, deadline)`` in one
        transaction (one commit instead of one per task); a conditional UPDATE per task,
        so each result is its attempt number, or None if that one was lost (cancelled
        or claimed meanwhile)."""
        if not claims:
            return []
        now = time.time()
        out: list[int | None] = []
        moved: list[str] = []
        with self._lock:
            with self._transaction(when=len(claims) > 1):
                for task_id, worker, worker_url, deadline in claims:
                    row = self._db.execute(
                        self._CLAIM, (RUNNING, worker, worker_url, deadline, now, task_id, QUEUED)
                    ).fetchall()  # fetchall: steps the statement to its end
                    out.append(int(row[0][0]) if row else None)
                    if row:
                        moved.append(row[0][1])
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
        machines = {}
        for task_id, attempt, outcome, worker in items:
            result: TaskResult = outcome
            if isinstance(outcome, ExecuteResult):
                result, machine = stored_result(outcome)
                if machine is not None:
                    machines[machine.machine_id] = machine.model_dump_json()
            verified = result.model_dump_json() if isinstance(result, ExecuteResult) else None
            foreign = result.model_dump_json() if isinstance(result, ForeignResult) else None
            rows.append((SUCCESS, verified, foreign, now, worker, task_id, RUNNING, attempt))
        out: list[bool] = []
        moved: list[tuple[str, str | None]] = []
        with self._lock:
            with self._transaction(when=len(rows) > 1 or bool(machines)):
                self._db.executemany("INSERT OR IGNORE INTO machines (id, data) VALUES (?, ?)", machines.items())
                for row in rows:
                    found = self._db.execute(self._COMPLETE, row).fetchall()  # fetchall: steps to the end
                    out.append(bool(found))
                    if found:
                        moved.append((found[0][0], found[0][1]))
            for batch, worker_name in moved:  # committed: now the tally
                self.tally.move(batch, RUNNING, SUCCESS, worker=worker_name, finished_at=now)
        return out

    def note_run(self, task_id: str, worker: str) -> Task | None:
        """``worker`` ran ``task_id`` to the end although its answer was not (or not
        yet) the recorded one; returns the task as it is now (None if unknown)."""
        with self._lock, self._transaction():
            row = self._db.execute("SELECT extra_runs FROM tasks WHERE id = ?", (task_id,)).fetchone()
            if row is not None:
                runs = json.loads(row[0]) if row[0] else []
                if worker not in runs:
                    runs.append(worker)
                    self._db.execute("UPDATE tasks SET extra_runs = ? WHERE id = ?", (json.dumps(runs), task_id))
                    self.tally.revision += 1  # a live view shows duplicates
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

    def fail_queued(self, task_id: str, error: str) -> bool:
        """queued -> failed without an attempt: no worker could ever run it."""
        now = time.time()
        return self._transition(
            "UPDATE tasks SET status = ?, error = ?, finished_at = ? WHERE id = ? AND status = ?"
            " RETURNING batch, worker",
            (FAILED, error, now, task_id, QUEUED),
            QUEUED,
            FAILED,
            now,
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
