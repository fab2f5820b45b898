"""The queue's read model: pages of tasks, exports, samples, batches and time statistics,
each a query over the ``tasks`` table on a connection of its own.

The read model never changes a row. Its reads may be long (an export of a 100 000-task
history), so they run in threads on this second connection: the file being in WAL mode,
they never hold up a change made through `TaskQueue`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from partisim.protocol import BatchInfo
from partisim.serve.queue.rows import (
    COUNTS_DAMAGED_SQL,
    DAMAGED_SQL,
    FLAT_SQL,
    TASK_COLUMNS,
    VIEW_JSON,
    Selection,
    SqlValue,
    clean_rows,
    distinct_warnings,
    register_functions,
    row_to_task,
    safe_json,
)
from partisim.serve.queue.task import STATUSES, SUCCESS, Task, TimeStats
from partisim.sim.params import PARTICLES_KEY, SEED_KEY, STEPS_KEY

__all__ = ["TaskReads"]


class TaskReads:
    """Long reads of one queue file (`TaskQueue.reads`); call them from a thread."""

    def __init__(self, path: Path, damaged: Sequence[str] = ()) -> None:
        #: the damaged rows found when the queue opened (`find_damaged`)
        self._damaged = json.dumps(list(damaged))
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30.0)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA busy_timeout=30000")
        register_functions(self._db)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _read(self, sql: str, args: Sequence[SqlValue] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

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
            f"{clean_rows(f'{where} ORDER BY seq {order} LIMIT ?')}"
            f" SELECT seq, {VIEW_JSON} FROM task ORDER BY seq {order}",
            (*args, limit + 1),
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return [r[1] for r in rows], (rows[-1][0] if more else None)

    def extent(self, selection: Selection) -> tuple[int, int]:
        """``(last seq, count)`` of the selection now: an export reads up to that seq, so
        it is a fixed set of rows however long it takes."""
        with self._lock:
            self._db.execute("BEGIN")  # both numbers from one snapshot
            try:
                (upto,) = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM tasks").fetchone()
                where, args = selection.where("seq <= ?")
                (count,) = self._db.execute(f"SELECT COUNT(*) FROM tasks {where}", (*args, upto)).fetchone()
            finally:
                self._db.execute("COMMIT")
        return int(upto), int(count)

    def view_rows(self, selection: Selection, *, after_seq: int, upto: int, limit: int) -> list[tuple[int, str]]:
        """``(seq, view JSON)`` of the selection with ``after_seq < seq <= upto``, oldest first."""
        where, args = selection.where("seq > ?", "seq <= ?")
        rows = self._read(
            f"{clean_rows(f'{where} ORDER BY seq LIMIT ?')} SELECT seq, {VIEW_JSON} FROM task ORDER BY seq",
            (*args, after_seq, upto, limit),
        )
        return [(r[0], r[1]) for r in rows]

    def flat_rows(
        self, columns: Sequence[str], selection: Selection, *, after_seq: int, upto: int, limit: int
    ) -> list[tuple[SqlValue, ...]]:
        """``(seq, *columns)`` rows of the selection (the flat result columns, extracted by
        SQLite from the stored JSON), ``after_seq < seq <= upto``, oldest first."""
        select = ", ".join(FLAT_SQL[c] for c in columns)
        where, args = selection.where("seq > ?", "seq <= ?")
        with self._lock:
            cursor = self._db.cursor()
            cursor.row_factory = None  # plain tuples
            rows: list[tuple[SqlValue, ...]] = cursor.execute(
                f"{clean_rows(f'{where} ORDER BY seq LIMIT ?')} SELECT seq, {select} FROM task ORDER BY seq",
                (*args, after_seq, upto, limit),
            ).fetchall()
            return rows

    def sample(self, selection: Selection, count: int) -> list[Task]:
        """Up to ``count`` tasks of the selection picked at random; every row is a candidate."""
        where, args = selection.where(f"NOT {DAMAGED_SQL}")  # a damaged row is never re-run
        rows = self._read(
            f"{clean_rows(f'{where} ORDER BY random() LIMIT ?')} SELECT {TASK_COLUMNS} FROM task", (*args, count)
        )
        return [row_to_task(r) for r in rows]

    def batches(self, limit: int = 100) -> list[BatchInfo]:
        """Batches, newest first, with their counts per status. Reads every row: on the
        second connection, so a thread calling it never holds up a change."""
        # damaged rows count in no batch: the columns counted are checked on every row, the
        # rest (JSON decoded in Python, costly on every row) was found when the queue opened
        rows = self._read(
            "SELECT batch, status, COUNT(*), MIN(seq), MIN(created_at), MAX(finished_at) FROM tasks"
            f" WHERE NOT {COUNTS_DAMAGED_SQL} AND id NOT IN (SELECT value FROM json_each(?)) GROUP BY batch, status",
            (self._damaged,),
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

    def unverifiable(self, batches: Sequence[str]) -> dict[str, int]:
        """Successful runs of these batches reported by workers that are not partisim, per
        batch (only those with any): the statistics leave them out (no engine, no
        checksum, maybe no simulation time)."""
        out: dict[str, int] = {}
        for start in range(0, len(batches), self._IN_CHUNK):
            chunk = list(batches[start : start + self._IN_CHUNK])
            where, args = Selection(status=SUCCESS, originals=True).where(
                "foreign_result IS NOT NULL", f"NOT {DAMAGED_SQL}", f"batch IN ({', '.join(['?'] * len(chunk))})"
            )
            rows = self._read(f"SELECT batch, COUNT(*) FROM tasks {where} GROUP BY batch", (*args, *chunk))
            out.update((str(b), int(n)) for b, n in rows)
        return out

    #: most batch ids in one ``IN (...)`` (SQLite allows 999 parameters in old builds)
    _IN_CHUNK = 500

    def time_stats(self, batches: Sequence[str] | None = None) -> list[TimeStats]:
        """Successful, non-verification runs grouped by batch x engine x particles x
        steps x other parameters: count, sum and sum of squares of their simulation
        times, sums of their pair collisions and final kinetic energies, and their
        distinct warnings; their minimum, every time (for the median) and the workers.
        The grouping happens in SQLite, so the caller never decodes a result. Runs on
        several threads, in another runner, on another CPU model or on a busy machine
        form groups of their own."""
        sql = (
            f"SELECT batch, benchmark, json_extract(params, '$.{PARTICLES_KEY}'),"
            f" json_extract(params, '$.{STEPS_KEY}'),"
            f" json_remove(params, '$.{PARTICLES_KEY}', '$.{STEPS_KEY}', '$.{SEED_KEY}'), used, runner, cpu, busy,"
            " COUNT(*), SUM(t), SUM(t * t), TOTAL(pc), TOTAL(ke), GROUP_CONCAT(DISTINCT w),"
            " MIN(t), json_group_array(t), json_group_array(DISTINCT worker)"
            " FROM (SELECT batch, benchmark, params, worker, json_extract(r, '$.simulation_time') AS t,"
            "       COALESCE(json_extract(r, '$.threads'), 1) AS used,"
            "       COALESCE(json_extract(r, '$.runner'), '') AS runner,"
            "       COALESCE((SELECT json_extract(data, '$.cpu_model') FROM machines"
            "                 WHERE machines.id = json_extract(r, '$.environment.machine_id')), '') AS cpu,"
            "       COALESCE(json_extract(r, '$.environment.contended'), 0) AS busy,"
            "       json_extract(r, '$.particle_collisions') AS pc,"
            "       json_extract(r, '$.kinetic_energy') AS ke,"
            "       json_extract(r, '$.warnings') AS w"
            "       FROM (SELECT *, SAFE_RESULT AS r FROM tasks)"
            "       WHERE status = ? AND verify_of IS NULL AND NOT DAMAGED{where})"
            " WHERE t IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9"
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
            sql_now = sql.format(where=where).replace("SAFE_RESULT", safe_json("result"))
            rows = self._read(sql_now.replace("NOT DAMAGED", f"NOT {DAMAGED_SQL}"), args)
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
                    distinct_warnings(w),
                    int(used),
                    str(runner),
                    str(cpu),
                    bool(busy),
                    float(low),
                    tuple(float(x) for x in json.loads(times)),
                    tuple(str(x) for x in json.loads(workers) if x is not None),
                )
                for b, e, n, s, rest, used, runner, cpu, busy, c, t, t2, pc, ke, w, low, times, workers in rows
            )
        return out
