"""The queue at scale, in-process on a real SQLite file: the in-memory tally agrees with
the table after any sequence of transitions and after reopening, the time windows and
the live list read ranges of indexes (EXPLAIN QUERY PLAN), pages and exports return
every row once, and the fast JSON/CSV paths say what the models say."""

from __future__ import annotations

import csv
import io
import json
import random
import sqlite3
import time
from pathlib import Path

import pytest
from helpers.results import execute_result
from queue_support import claim

from partisim.protocol import ForeignResult, TaskView
from partisim.serve.queue.rows import Selection, microseconds_sql, register_functions
from partisim.serve.queue.store import TaskQueue
from partisim.serve.queue.task import STATUSES, TaskSpec, to_microseconds
from partisim.serve.results.rows import to_csv
from partisim.serve.web.export import export_chunks


def spec(seed: int, **extra: object) -> TaskSpec:
    return TaskSpec(benchmark="python", params={"NUM_PARTICULAS": 10, "NUM_PASOS": 1, "SEMILLA": seed}, **extra)


def sql_counts(path: Path) -> tuple[dict[str, int], dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """Counts per status, per batch and per worker straight from the file (another connection)."""
    with sqlite3.connect(path) as db:
        overall = dict.fromkeys(STATUSES, 0)
        batches: dict[str, dict[str, int]] = {}
        for batch, status, n in db.execute("SELECT batch, status, COUNT(*) FROM tasks GROUP BY 1, 2"):
            overall[status] += n
            batches.setdefault(batch, dict.fromkeys(STATUSES, 0))[status] = n
        workers: dict[str, dict[str, int]] = {"success": {}, "failed": {}}
        for worker, status, n in db.execute(
            "SELECT worker, status, COUNT(*) FROM tasks WHERE status IN ('success', 'failed') GROUP BY 1, 2"
        ):
            workers[status][worker] = n
    return overall, batches, workers


def assert_tally_matches(queue: TaskQueue) -> None:
    overall, batches, workers = sql_counts(queue.path)
    assert queue.live_counts() == {**overall, "total": sum(overall.values())}
    for batch, counts in batches.items():
        assert queue.live_counts(batch) == {**counts, "total": sum(counts.values())}
    assert queue.assigned_per_worker("success") == workers["success"]
    assert queue.assigned_per_worker("failed") == workers["failed"]


def test_tally_follows_every_transition_and_is_rebuilt_on_reopen(tmp_path: Path) -> None:
    rng = random.Random(7)
    path = tmp_path / "q.db"
    queue = TaskQueue(path, max_attempts=3)
    ids: list[str] = []
    try:
        for step in range(400):
            op = rng.random()
            if op < 0.15 or not ids:
                ids += queue.enqueue([spec(step)] * rng.randint(1, 4), batch=f"b{rng.randint(1, 3)}")[1]
                continue
            task = queue.get(rng.choice(ids))
            assert task is not None
            worker = f"w{rng.randint(1, 3)}"
            if task.status == "queued" and op < 0.6:
                queue.claim_many([(task.id, worker, "u", time.time() + 60)])
            elif task.status == "running":
                choice = rng.randrange(5)
                if choice == 0:
                    queue.complete(task.id, task.attempts, execute_result("x"), worker=rng.choice([None, "dask-w"]))
                elif choice == 1:
                    queue.fail(task.id, task.attempts, "HTTP 422")
                elif choice == 2:
                    queue.retry(task.id, task.attempts, "sin conexión", not_before=0.0)
                elif choice == 3:
                    queue.release(task.id, task.attempts, not_before=0.0)
                # a late answer of a previous attempt changes nothing
                assert not queue.complete(task.id, task.attempts + 5, execute_result("late"))
            elif op > 0.9:
                queue.cancel(task.id)
            if step % 20 == 0:
                assert_tally_matches(queue)
        assert_tally_matches(queue)
        assert queue.live_counts()["success"] > 0 and queue.live_counts()["failed"] > 0
        finished = queue.finished_recently(60)
        assert finished == queue.finished_since(time.time() - 60) > 0
    finally:
        queue.close()
    again = TaskQueue(path)  # what a restarted serve reads back
    try:
        assert_tally_matches(again)
        assert again.finished_recently(60) == finished
    finally:
        again.close()


def test_claims_rolled_back_leave_the_tally_alone(tmp_path: Path) -> None:
    queue = TaskQueue(tmp_path / "q.db")
    try:
        _, ids = queue.enqueue([spec(1), spec(2)])
        with pytest.raises(sqlite3.Error):
            queue.claim_many([(ids[0], "w1", "u", 1.0), (ids[1], "w1", "u", object())])  # type: ignore[list-item]
        assert queue.live_counts()["running"] == 0
        assert_tally_matches(queue)
    finally:
        queue.close()


def test_activity_from_memory_matches_the_table(tmp_path: Path) -> None:
    queue = TaskQueue(tmp_path / "q.db")
    try:
        _, ids = queue.enqueue([spec(k) for k in range(30)])
        queue.claim_many([(t, "w1", "u", time.time() + 60) for t in ids])
        for k, t in enumerate(ids):
            if k % 3 == 0:
                queue.fail(t, 1, "HTTP 422")
            elif k % 3 == 1:
                queue.complete(t, 1, execute_result("x"))
            else:
                queue.cancel(t)  # cancelled tasks are not activity
        now = int(time.time())
        start = now - 299
        assert sum(queue.activity(start, 10, 30)) == 20
        with sqlite3.connect(queue.path) as db:
            per_second = dict(
                db.execute(
                    "SELECT CAST(finished_at AS INTEGER), COUNT(*) FROM tasks"
                    " WHERE status IN ('success', 'failed') GROUP BY 1"
                ).fetchall()
            )
        expected = [
            sum(n for s, n in per_second.items() if start + 10 * k <= s < start + 10 * (k + 1)) for k in range(30)
        ]
        assert queue.activity(start, 10, 30) == expected
    finally:
        queue.close()


# -- query plans --------------------------------------------------------------------------


def test_windows_live_list_and_pages_read_ranges_of_indexes(tmp_path: Path) -> None:
    """Every statement the live paths run (captured as SQLite runs it) is a SEARCH of an
    index: no scan of the table, and no sort before a LIMIT (grouping the rows found is
    fine: there are only as many as the range holds)."""
    queue = TaskQueue(tmp_path / "q.db")
    try:
        _, ids = queue.enqueue([spec(k) for k in range(5)], batch="b")
        claim(queue, ids[0], "w1", "u", time.time() + 60)
        queue.complete(ids[0], 1, execute_result("x"))
        ran: list[str] = []
        queue._db.set_trace_callback(ran.append)
        queue.reads._db.set_trace_callback(ran.append)
        now = time.time()
        # each call, and the index its statements must search (a time window must use a
        # finished-time index: the status index would visit every success row)
        calls = {
            "finished since": (lambda: queue.finished_since(now - 60), "tasks_finished_status"),
            "finished since, batch": (lambda: queue.finished_since(now - 60, "b"), "tasks_batch_finished"),
            "recent": (lambda: queue.recent(20), None),
            # dispatch order (priority, then submission): a range of one index, no sort
            "ready": (lambda: queue.ready(10), "tasks_status_priority"),
        }
        for k, selection in enumerate(
            (
                Selection(),
                Selection(status="success"),
                Selection(batch="b"),
                Selection(batch="b", status="success", originals=True),
            )
        ):
            calls[f"page {k} up"] = (lambda sel=selection: queue.reads.page(sel, limit=10, after_seq=0), None)
            calls[f"page {k} down"] = (lambda sel=selection: queue.reads.page(sel, limit=10, before_seq=3), None)
        statements: dict[str, list[str]] = {}
        for name, (call, _) in calls.items():
            before = len(ran)
            call()
            statements[name] = ran[before:]
        queue._db.set_trace_callback(None)
        queue.reads._db.set_trace_callback(None)
        assert len(statements["recent"]) == 3 and all(len(v) == 1 for k, v in statements.items() if k != "recent")
        with sqlite3.connect(queue.path) as db:
            register_functions(db)  # the damaged-row check (`rows.DAMAGED_SQL`) calls one
            for name, sqls in statements.items():
                for sql in sqls:
                    plan = db.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
                    steps = [row[3] for row in plan]
                    # the table: searched; besides it only per-row work (a row's own JSON) or
                    # grouping what was found, never a sort before the LIMIT
                    on_table = [step for step in steps if " tasks" in step]
                    assert on_table and all(step.startswith("SEARCH") for step in on_table), (name, sql, steps)
                    # the one sort allowed: of the rows `rows.clean_rows` materialized, a range
                    # already cut by its LIMIT, put back in order at the top level
                    sorts = [row for row in plan if "ORDER BY" in row[3]]
                    paged = any(step.startswith("MATERIALIZE") for step in steps)
                    assert all(paged and row[1] == 0 for row in sorts), (name, sql, steps)
                    index = calls[name][1]
                    assert index is None or f"INDEX {index} (" in on_table[0], (name, steps)
            plans = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + statements["recent"][1])]
        # the latest finished: the end of the finished-time index
        assert any(step.startswith("SEARCH tasks USING INDEX tasks_finished_status") for step in plans)
    finally:
        queue.close()


# -- pages and exports ----------------------------------------------------------------------


@pytest.fixture
def filled(tmp_path: Path):
    """43 tasks in two batches: successes (some on 2 threads, some with warnings),
    failures with awkward errors, queued, cancelled, and verification re-runs."""
    queue = TaskQueue(tmp_path / "q.db", max_attempts=2)
    _, first = queue.enqueue([spec(k) for k in range(30)], batch="uno")
    _, second = queue.enqueue([spec(k, threads=1 + k % 2) for k in range(10)], batch="dos")  # some on 2 threads
    _, verify = queue.enqueue([spec(1, verify_of=first[0]), spec(2, verify_of=first[1]), spec(3)], batch="v")
    claimed = first[:25] + second[:5] + verify[:2]
    queue.claim_many([(t, f"w{k % 2}", "u", time.time() + 60) for k, t in enumerate(claimed)])
    for k, t in enumerate(claimed):
        if k % 4 == 3:
            queue.fail(t, 1, 'HTTP 422: "NUM_PARTICULAS", línea 1\nlínea 2, con comas')
        elif k == 5:  # a worker that is not partisim answered: not verifiable
            queue.complete(
                t,
                1,
                ForeignResult(
                    task_id=t,
                    worker_id="legacy",
                    engine="python",
                    simulation_time=0.25,
                    reported={"status": "success", "simulation_time": 0.25},
                ),
            )
        else:
            result = execute_result(f"{k:064x}", simulation_time=0.1 + k / 7)
            threads = queue.get(t).threads  # type: ignore[union-attr]
            update: dict[str, object] = {"threads": threads} if threads > 1 else {}
            if k % 3 == 1:  # coarse-step advice, with a comma and quotes; one text or two
                update["warnings"] = ['paso "grueso", con DT = 0.8', *(["otro aviso; y 2"] if k % 2 else [])]
            queue.complete(t, 1, result.model_copy(update=update) if update else result)
    queue.note_run(first[0], "w9")  # ran on another worker too: one duplicate
    queue.note_run(first[1], "w1")  # the recorded worker itself: no duplicate
    queue.note_run(first[2], "w8")
    queue.note_run(first[2], "w7")  # two more runs
    queue.cancel(first[29])
    yield queue
    queue.close()


def all_views(queue: TaskQueue) -> list[TaskView]:
    views = sorted((t.view() for t in queue.tasks(limit=1000)), key=lambda v: v.seq)
    assert [v.duplicates for v in views[:3]] == [1, 0, 2] and not views[5].verifiable  # the cases are there
    assert any(v.threads == 2 and v.result is not None and v.result.threads == 2 for v in views)
    assert any(v.result is not None and len(v.result.warnings) == 2 for v in views)
    assert any(v.result is not None and v.result.threads == 2 and v.result.warnings for v in views)
    return views


def test_pages_return_every_row_once_in_both_directions(filled: TaskQueue) -> None:
    views = all_views(filled)
    assert len(views) == 43
    for selection in (Selection(), Selection(batch="uno"), Selection(status="success"), Selection(originals=True)):
        expected = [
            v
            for v in views
            if (selection.batch in (None, v.batch))
            and (selection.status in (None, v.status))
            and not (selection.originals and v.verify_of)
        ]
        seen, after = [], 0
        while True:
            lines, following = filled.reads.page(selection, limit=4, after_seq=after)
            seen += [TaskView.model_validate_json(line) for line in lines]
            if following is None:
                break
            after = following
        assert seen == expected
        newest, before = [], None
        while True:
            lines, following = filled.reads.page(selection, limit=5, before_seq=before)
            newest += [TaskView.model_validate_json(line).id for line in lines]
            if following is None:
                break
            before = following
        assert newest == [v.id for v in reversed(expected)]


def test_task_json_made_by_sqlite_is_the_view_of_the_model(filled: TaskQueue) -> None:
    lines, _ = filled.reads.page(Selection(), limit=100, after_seq=0)
    for line, view in zip(lines, all_views(filled), strict=True):
        assert json.loads(line) == json.loads(view.model_dump_json())


def test_microseconds_agree_between_sqlite_and_python_on_ties_and_random_times() -> None:
    """CI once saw SQLite's round(x, 6) give 0.0028770000000000002 where Python gave
    0.002877; timestamps near 1.8e9 differ by multiples of 2**-22, so exact halves such
    as 0.0078125 s also occur, which the two round(x, 6) break in opposite directions."""
    rng = random.Random(7)
    base = 1_796_614_064.0
    pairs = [(base, base + 0.0078125), (base, base - 0.0078125), (base, base), (0.0, 2.5e-6), (0.0, -2.5e-6)]
    pairs += [(base, base + 0.002877), (base + 0.25, base + 0.25 + 9e-05)]
    for _ in range(3000):
        start = base + rng.random() * 1000
        span = rng.choice([1e-4, 1e-2, 1.0, 3600.0]) * rng.random()
        pairs.append((start, start + span))
        pairs.append((start, start + round(span * 2**22) / 2**22))  # whole ulps of the start
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (a REAL, b REAL)")
    db.executemany("INSERT INTO t VALUES (?, ?)", pairs)
    texts = [row[0] for row in db.execute(f"SELECT {microseconds_sql('b - a')} FROM t ORDER BY rowid")]
    assert len(texts) == len(pairs)
    for (a, b), text in zip(pairs, texts, strict=True):
        assert json.loads(text) == to_microseconds(b - a), (a, b, text)
    assert json.loads(texts[0]) == 0.007813 and json.loads(texts[1]) == -0.007813
    assert db.execute(f"SELECT {microseconds_sql('NULL - 1.0')}").fetchone()[0] is None


def test_csv_export_is_to_csv_and_ndjson_has_every_task(filled: TaskQueue) -> None:
    views = all_views(filled)
    for page_size in (3, 43, 1000):
        upto, total = filled.reads.extent(Selection())
        assert total == 43
        text = "".join(export_chunks(filled, "csv", Selection(), upto=upto, page_size=page_size))
        assert text == to_csv(views)
        assert len(list(csv.reader(io.StringIO(text)))) == 44
        lines = "".join(export_chunks(filled, "ndjson", Selection(), upto=upto, page_size=page_size)).splitlines()
        assert [TaskView.model_validate_json(line) for line in lines] == views
    # rows added after the export started are not in it (a fixed set, whatever its length)
    upto, total = filled.reads.extent(Selection(batch="dos"))
    filled.enqueue([spec(99)], batch="dos")
    text = "".join(export_chunks(filled, "csv", Selection(batch="dos"), upto=upto, page_size=2))
    assert total == 10 and len(list(csv.reader(io.StringIO(text)))) == 11


def test_sample_draws_among_all_successful_originals(filled: TaskQueue) -> None:
    selection = Selection(status="success", originals=True)
    seen: set[str] = set()
    for _ in range(150):
        picked = filled.reads.sample(selection, 3)
        assert len(picked) == 3 and all(t.status == "success" and t.verify_of is None for t in picked)
        seen |= {t.id for t in picked}
    originals = {v.id for v in all_views(filled) if v.status == "success" and not v.verify_of}
    assert seen == originals  # 150 draws of 3 among 23: every one of them comes up
    assert filled.reads.sample(Selection(status="success", batch="nada"), 3) == []
