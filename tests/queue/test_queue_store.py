"""The SQLite queue on a real file: transitions, races, persistence."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from helpers.results import execute_result
from queue_support import claim

from partisim.serve.queue.store import TaskQueue
from partisim.serve.queue.task import TaskSpec

SPEC = TaskSpec(benchmark="python", params={"NUM_PARTICULAS": 10, "NUM_PASOS": 1, "SEMILLA": 1})


@pytest.fixture
def queue(tmp_path):
    q = TaskQueue(tmp_path / "q.db", max_attempts=3)
    yield q
    q.close()


def test_file_is_in_wal_mode(tmp_path, queue):
    with sqlite3.connect(tmp_path / "q.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_lifecycle_queued_running_success(queue):
    batch, ids = queue.enqueue([SPEC, SPEC], batch="b1")
    assert batch == "b1" and len(ids) == 2 and ids[0] != ids[1]
    assert queue.counts("b1") == {"queued": 2, "running": 0, "success": 0, "failed": 0, "cancelled": 0, "total": 2}
    attempt = claim(queue, ids[0], "w1", "http://127.0.0.1:1", time.time() + 60)
    assert attempt == 1
    assert claim(queue, ids[0], "w2", "http://127.0.0.1:2", time.time() + 60) is None  # already running
    task = queue.get(ids[0])
    assert (task.status, task.worker, task.attempts) == ("running", "w1", 1)
    assert queue.complete(ids[0], 1, execute_result("abc"))
    assert not queue.complete(ids[0], 1, execute_result("other"))  # never two results
    done = queue.get(ids[0])
    assert done.status == "success" and done.result == execute_result("abc")
    assert done.view().timings.run_s >= 0


def test_stale_attempt_cannot_finish_a_retried_task(queue):
    _, (tid,) = queue.enqueue([SPEC])
    assert claim(queue, tid, "w1", "u1", time.time() + 60) == 1
    assert queue.retry(tid, 1, "conexión rechazada", not_before=0.0)
    task = queue.get(tid)
    assert task.status == "queued" and task.avoid_worker == "w1" and task.error == "conexión rechazada"
    assert task.worker is None and task.worker_url is None and task.started_at is None
    assert claim(queue, tid, "w2", "u2", time.time() + 60) == 2
    assert not queue.complete(tid, 1, execute_result("late"))  # the first attempt's late answer
    assert queue.complete(tid, 2, execute_result("good"))
    assert queue.get(tid).result == execute_result("good")


def test_release_does_not_count_the_attempt_and_backoff_hides_task(queue):
    _, (tid,) = queue.enqueue([SPEC])
    claim(queue, tid, "w1", "u1", time.time() + 60)
    assert queue.release(tid, 1, not_before=time.time() + 100)
    task = queue.get(tid)
    assert task.status == "queued" and task.attempts == 0 and task.worker is None
    assert queue.ready(10) == []
    assert queue.next_ready_at() > time.time() + 50
    assert [t.id for t in queue.ready(10, now=time.time() + 200)] == [tid]


def test_fail_and_cancel(queue):
    _, (a, b, c) = queue.enqueue([SPEC, SPEC, SPEC])
    claim(queue, a, "w1", "u1", time.time() + 60)
    assert queue.fail(a, 1, "HTTP 422: NUM_PARTICULAS")
    assert queue.get(a).status == "failed" and queue.get(a).error.startswith("HTTP 422")
    assert queue.cancel(a) is None  # final: nothing to cancel
    before = queue.cancel(b)
    assert before is not None and before.status == "queued"
    claim(queue, c, "w1", "u1", time.time() + 60)
    assert queue.cancel(c).status == "running"
    assert not queue.complete(c, 1, execute_result("x"))  # the answer after a cancel is dropped
    assert queue.counts() == {"queued": 0, "running": 0, "success": 0, "failed": 1, "cancelled": 2, "total": 3}


def test_list_filters_newest_first_and_limit(queue):
    queue.enqueue([SPEC] * 3, batch="old")
    _, new_ids = queue.enqueue([SPEC] * 2, batch="new")
    assert [t.id for t in queue.tasks(batch="new")] == list(reversed(new_ids))
    assert len(queue.tasks(limit=4)) == 4
    assert queue.tasks(status="success") == []
    batches = queue.reads.batches()
    assert [b.batch for b in batches] == ["new", "old"]
    assert batches[1].queued == 3 and batches[1].total == 3


def test_state_survives_reopen(tmp_path):
    path = tmp_path / "persist.db"
    q = TaskQueue(path)
    _, (tid,) = q.enqueue([SPEC], batch="keep")
    claim(q, tid, "w1", "http://127.0.0.93:8080", time.time() + 60)
    q.close()
    again = TaskQueue(path)
    try:
        task = again.get(tid)
        assert (task.status, task.worker_url, task.batch) == ("running", "http://127.0.0.93:8080", "keep")
        assert [t.id for t in again.running()] == [tid]
    finally:
        again.close()


def test_racing_outcomes_from_two_connections_record_one_result(tmp_path):
    """Two TaskQueue objects on one file (as two processes would be): one complete() wins."""
    path = tmp_path / "race.db"
    first, second = TaskQueue(path), TaskQueue(path)
    try:
        _, ids = first.enqueue([SPEC] * 50)
        for tid in ids:
            assert claim(first, tid, "w1", "u", time.time() + 60) == 1
        wins: list[bool] = []
        lock = threading.Lock()

        def finish(q: TaskQueue, tag: str) -> None:
            for tid in ids:
                ok = q.complete(tid, 1, execute_result(tag))
                with lock:
                    wins.append(ok)

        threads = [threading.Thread(target=finish, args=(q, tag)) for q, tag in ((first, "a"), (second, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert wins.count(True) == 50 and wins.count(False) == 50
        assert first.counts()["success"] == 50
    finally:
        first.close()
        second.close()


def test_next_ready_at_after_skips_tasks_already_ready(queue):
    _, (ready, later) = queue.enqueue([SPEC, SPEC])
    for tid, not_before in ((ready, 0.0), (later, time.time() + 100)):
        claim(queue, tid, "w1", "u1", time.time() + 60)
        assert queue.release(tid, 1, not_before=not_before)
    now = time.time()
    assert queue.next_ready_at() == 0.0  # the earliest of all
    # the scheduler asks only about backoffs that end after its round: no busy loop
    assert queue.next_ready_at(after=now) > now + 50


def test_activity_counts_success_and_failed_per_window(queue):
    _, (a, b, c, d) = queue.enqueue([SPEC, SPEC, SPEC, SPEC])
    for tid in (a, b, c, d):
        claim(queue, tid, "w1", "u1", time.time() + 60)
    queue.complete(a, 1, execute_result("x"))
    queue.fail(b, 1, "HTTP 422")
    queue.cancel(c)  # cancelled tasks are not activity
    now = int(time.time())
    assert queue.activity(now - 29, 10, 3) == [0, 0, 2]
    assert queue.activity(now - 299, 10, 3) == [0, 0, 0]
    assert queue.assigned_per_worker("failed") == {"w1": 1}


def test_duplicates_count_runs_beyond_one_per_worker(queue):
    (task_id,) = queue.enqueue([SPEC])[1]
    claim(queue, task_id, "w1", "http://127.0.0.1:1", time.time() + 60)
    queue.retry(task_id, 1, "sin respuesta", time.time())  # given up on w1...
    assert queue.note_run(task_id, "w1").duplicates == 0  # ...which ran it: still the only run
    claim(queue, task_id, "w2", "http://127.0.0.1:2", time.time() + 60)
    assert queue.get(task_id).duplicates == 0  # w2 is running it: nothing recorded yet
    assert queue.complete(task_id, 2, execute_result("abc", worker_id="w2"))
    assert queue.get(task_id).duplicates == 1  # w1's run and w2's recorded one
    assert queue.note_run(task_id, "w1").duplicates == 1  # told twice: one worker, one run
    assert queue.note_run(task_id, "w2").duplicates == 1  # the recorded run itself is no extra one
    view = queue.get(task_id).view()
    assert view.duplicates == 1 and view.verifiable
    assert queue.note_run("t-unknown", "w1") is None


def test_a_foreign_result_is_kept_apart_and_marked_unverifiable(queue):
    from partisim.protocol import ForeignResult

    (task_id,) = queue.enqueue([SPEC])[1]
    claim(queue, task_id, "legacy", "http://127.0.0.1:1", time.time() + 60)
    answer = {
        "status": "success",
        "worker_id": "legacy",
        "benchmark": "benchmark_cython.py",
        "execution_time": 0.2,
        "particle_collisions": None,
        "wall_collisions": "n/a",
        "output": "texto",
        "extra": float("nan"),
    }
    foreign = ForeignResult.from_answer(answer, task_id=task_id, engine="cython", worker_id="legacy")
    assert foreign.particle_collisions is None and foreign.wall_collisions is None
    assert foreign.reported["extra"] is None and foreign.reported["output"] == "texto"  # strict JSON
    assert queue.complete(task_id, 1, foreign)
    task = queue.get(task_id)
    assert task.status == "success" and task.result is None and task.foreign_result == foreign
    view = task.view()
    assert not view.verifiable and view.foreign_result.engine == "cython"
    assert "NaN" not in view.model_dump_json()


def test_runs_on_several_threads_are_grouped_apart_in_sql_and_in_python(queue):
    """The chart means never mix one-thread and two-thread times of one configuration."""
    from partisim.serve.results.statistics import group_times, pool

    specs = [
        TaskSpec("cython", {"NUM_PARTICULAS": 10, "NUM_PASOS": 5, "SEMILLA": s}, threads=t)
        for s, t in ((1, 1), (2, 1), (3, 2))
    ]
    _, ids = queue.enqueue(specs, batch="b")
    for task_id, (used, seconds) in zip(ids, ((1, 1.0), (1, 3.0), (2, 10.0)), strict=True):
        claim(queue, task_id, "w1", "http://127.0.0.1:1", time.time() + 60)
        result = execute_result(task_id=task_id, engine="cython", simulation_time=seconds)
        assert queue.complete(task_id, 1, result.model_copy(update={"threads": used, "threads_requested": used}))
    for groups in (pool(queue.reads.time_stats(["b"])).groups, group_times(t.view() for t in queue.tasks(batch="b"))):
        by_params = {g.params: (g.n, g.mean) for g in groups}
        # every configuration names its threads and runner (and CPU model: unknown here)
        how = (("cpu", ""), ("runner", "process"))
        assert by_params == {(*how, ("threads", 1)): (2, 2.0), (*how, ("threads", 2)): (1, 10.0)}
    assert [t.threads for t in sorted(queue.tasks(batch="b"), key=lambda t: t.seq)] == [1, 1, 2]


def test_the_fisica_line_pools_runs_on_several_threads_with_their_single_thread_ones(queue):
    """Threads change the time, not the physics: `time_stats` puts ``"threads"`` among a
    two-thread group's parameters, and the Física line must still count that group."""
    from partisim.serve.results.physics import physics_line
    from partisim.sim import SimParams
    from partisim.sim.rate_check import RunTotals, check_rate

    elastic = {
        "NUM_PARTICULAS": 100,
        "NUM_PASOS": 1000,
        "COEF_RESTITUCION_PARED": 1.0,
        "COEF_RESTITUCION_PARTICULA": 1.0,
    }
    energy = 40_000 / 3  # 100 disks at kT = vmax^2/3 (tests/sim/test_rate_check.py)
    specs = [TaskSpec("cython", {**elastic, "SEMILLA": s}, threads=t) for s, t in ((1, 1), (2, 1), (3, 2))]
    _, ids = queue.enqueue(specs, batch="b")
    for task_id, used in zip(ids, (1, 1, 2), strict=True):
        claim(queue, task_id, "w1", "http://127.0.0.1:1", time.time() + 60)
        result = execute_result(task_id=task_id, engine="cython", particles=100, steps=1000)
        assert queue.complete(
            task_id,
            1,
            result.model_copy(update={"threads": used, "particle_collisions": 430, "kinetic_energy": energy}),
        )
    stats = queue.reads.time_stats(["b"])
    assert sorted(st.n for st in stats) == [1, 2]  # the times stay apart ...
    line = physics_line(stats)  # ... the collisions do not
    assert line is not None and line.shown
    assert (line.tasks, line.collisions, line.left_out) == (3, 1290, 0)
    params = SimParams(particles=100, steps=1000, wall_restitution=1.0, particle_restitution=1.0)
    alone = check_rate([RunTotals(params, 3, 1290, 3 * energy)])
    assert alone is not None and line.ratio == pytest.approx(alone.ratio, rel=1e-12)
