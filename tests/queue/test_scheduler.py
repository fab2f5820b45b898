"""The scheduler in-process: a real SQLite queue in a temporary file and a fake executor
that records what it is given and answers when the test says so. No subprocess, no
socket: these run in a fraction of a second each."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.results import execute_result
from queue_support import claim

from partisim.errors import PartisimError, TaskRejected, TaskTimedOut, WorkerFailed, WorkerUnavailable
from partisim.protocol import MemberView
from partisim.serve.executors.base import Attempt, Executor, Placement
from partisim.serve.queue.store import TaskQueue
from partisim.serve.queue.task import Task, TaskSpec
from partisim.serve.scheduler import RetryPolicy, Scheduler

SPEC = TaskSpec(benchmark="python", params={"NUM_PARTICULAS": 10, "NUM_PASOS": 1, "SEMILLA": 1})
#: retries are immediate in these tests (backoff times U(0.5, 1) of this)
FAST = RetryPolicy(base=0.001, cap=0.001)


class FakeExecutor(Executor):
    """One member with ``slots`` slots; attempts wait until the test delivers an outcome."""

    kind = "http"

    def __init__(self, slots: int = 2, *, resumable: bool = True) -> None:
        super().__init__()
        self.slots = slots
        self.resumable = resumable
        self.inflight: dict[str, Attempt] = {}
        self.launched: list[Attempt] = []
        self.cancelled: list[str] = []
        self.resumed: list[str] = []
        self.reserved = 0

    def members(self) -> list[MemberView]:
        return [
            MemberView(
                id="fake",
                url="fake://",
                address="fake",
                state="active",
                capacity=self.slots,
                inflight=len(self.inflight) + self.reserved,
                free=self.free_slots(),
            )
        ]

    def free_slots(self) -> int:
        return max(0, self.slots - len(self.inflight) - self.reserved)

    def bound(self, task: Task) -> float:
        return task.timeout or 60.0

    def place(self, task: Task) -> Placement | None:
        if self.free_slots() == 0:
            return None
        self.reserved += 1
        return Placement("fake", "fake://")

    def unplace(self, placement: Placement) -> None:
        self.reserved -= 1

    def launch(self, attempt: Attempt) -> None:
        self.reserved -= 1
        self.inflight[attempt.task_id] = attempt
        self.launched.append(attempt)

    def answer(self, task_id: str, outcome: Any, worker: str | None = None) -> None:
        attempt = self.inflight.pop(task_id)
        self.deliver(attempt, outcome, worker)
        self._wake()

    def cancel(self, task_id: str, member: str | None, address: str | None) -> None:
        self.cancelled.append(task_id)
        self.inflight.pop(task_id, None)

    def resume(self, task: Task) -> bool:
        self.resumed.append(task.id)
        if not self.resumable:
            return False
        self.inflight[task.id] = Attempt(task, task.attempts, Placement("fake", "fake://"), task.deadline or 0.0)
        return True

    def running(self, task_id: str) -> bool:
        return task_id in self.inflight


async def until(predicate: Callable[[], Any], timeout: float = 5.0) -> None:
    """Let the scheduler's loop run until ``predicate()`` holds (polls the event loop)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


def run(
    test: Callable[[TaskQueue, FakeExecutor, Scheduler], Awaitable[None]],
    tmp_path: Path,
    *,
    slots: int = 2,
    max_attempts: int = 3,
    resumable: bool = True,
    queue: TaskQueue | None = None,
) -> TaskQueue:
    queue = queue or TaskQueue(tmp_path / "q.db", max_attempts=max_attempts)
    executor = FakeExecutor(slots, resumable=resumable)

    async def main() -> None:
        scheduler = Scheduler(queue, executor, policy=FAST, tick=0.01)
        await scheduler.start()
        try:
            await test(queue, executor, scheduler)
        finally:
            await scheduler.stop(grace=0)

    asyncio.run(main())
    return queue


def test_places_in_order_up_to_the_free_slots_and_more_as_slots_free(tmp_path: Path) -> None:
    async def test(queue: TaskQueue, ex: FakeExecutor, scheduler: Scheduler) -> None:
        _, ids = queue.enqueue([SPEC] * 5)
        scheduler.wake()
        await until(lambda: len(ex.launched) == 2)
        assert [a.task_id for a in ex.launched] == ids[:2]  # oldest first
        assert queue.counts()["running"] == 2 and queue.counts()["queued"] == 3
        ex.answer(ids[0], execute_result("a"))
        await until(lambda: len(ex.launched) == 3)
        assert ex.launched[2].task_id == ids[2]
        assert queue.get(ids[0]).status == "success"
        assert queue.get(ids[0]).result == execute_result("a")

    run(test, tmp_path)


def test_a_busy_worker_puts_the_task_back_without_counting_the_attempt(tmp_path: Path) -> None:
    async def test(queue: TaskQueue, ex: FakeExecutor, scheduler: Scheduler) -> None:
        _, (tid,) = queue.enqueue([SPEC])
        scheduler.wake()
        await until(lambda: len(ex.launched) == 1)
        ex.answer(tid, TaskRejected("ocupado", 429))
        await until(lambda: len(ex.launched) == 2)  # dispatched again
        assert ex.launched[1].number == 1  # the 429 did not use up an attempt
        ex.answer(tid, execute_result())
        await until(lambda: queue.get(tid).status == "success")
        assert queue.get(tid).attempts == 1

    run(test, tmp_path)


@pytest.mark.parametrize(
    "error", [WorkerFailed("HTTP 500", 500), WorkerUnavailable("rechazada"), TaskTimedOut("sin respuesta")]
)
def test_faults_are_retried_then_fail_with_the_last_error(tmp_path: Path, error: PartisimError) -> None:
    async def test(queue: TaskQueue, ex: FakeExecutor, scheduler: Scheduler) -> None:
        _, (tid,) = queue.enqueue([SPEC])
        scheduler.wake()
        for attempt in (1, 2, 3):
            await until(lambda n=attempt: len(ex.launched) == n)
            assert ex.launched[-1].number == attempt
            if attempt < 3:
                ex.answer(tid, error)
                # back in the queue, away from the worker that failed it
                await until(lambda: queue.get(tid).status in ("queued", "running"))
        ex.answer(tid, error)
        await until(lambda: queue.get(tid).status == "failed")
        task = queue.get(tid)
        assert task.attempts == 3
        assert f"sin intentos (3/3); último error: {error}" == task.error

    run(test, tmp_path, max_attempts=3)


def test_a_retry_waits_for_its_backoff(tmp_path: Path) -> None:
    queue = TaskQueue(tmp_path / "q.db", max_attempts=3)
    executor = FakeExecutor()

    async def main() -> None:
        scheduler = Scheduler(queue, executor, policy=RetryPolicy(base=0.4, cap=0.4), tick=0.01)
        await scheduler.start()
        try:
            _, (tid,) = queue.enqueue([SPEC])
            scheduler.wake()
            await until(lambda: len(executor.launched) == 1)
            failed_at = time.monotonic()
            executor.answer(tid, WorkerFailed("HTTP 503", 503))
            await until(lambda: queue.get(tid).status == "queued")
            task = queue.get(tid)
            assert task.avoid_worker == "fake" and task.worker is None
            await until(lambda: len(executor.launched) == 2)
            assert time.monotonic() - failed_at >= 0.2 - 0.01  # U(0.5, 1) x 0.4 s
        finally:
            await scheduler.stop(grace=0)

    asyncio.run(main())


def test_a_4xx_fails_at_once(tmp_path: Path) -> None:
    async def test(queue: TaskQueue, ex: FakeExecutor, scheduler: Scheduler) -> None:
        _, (tid,) = queue.enqueue([SPEC])
        scheduler.wake()
        await until(lambda: len(ex.launched) == 1)
        ex.answer(tid, TaskRejected("NUM_PASOS: debe ser >= 1", 422))
        await until(lambda: queue.get(tid).status == "failed")
        await asyncio.sleep(0.05)
        assert len(ex.launched) == 1 and queue.get(tid).attempts == 1
        assert queue.get(tid).error == "NUM_PASOS: debe ser >= 1"

    run(test, tmp_path)


def _left_running(tmp_path: Path, deadline: float) -> tuple[TaskQueue, str]:
    """A queue as a killed serve leaves it: one task claimed, running, nobody following it."""
    queue = TaskQueue(tmp_path / "q.db", max_attempts=3)
    _, (tid,) = queue.enqueue([SPEC])
    assert claim(queue, tid, "fake", "fake://", deadline) == 1
    return queue, tid


def test_reconcile_resumes_tasks_left_running(tmp_path: Path) -> None:
    queue, tid = _left_running(tmp_path, time.time() + 60)

    async def test(queue: TaskQueue, ex: FakeExecutor, scheduler: Scheduler) -> None:
        assert ex.resumed == [tid] and ex.running(tid)
        ex.answer(tid, execute_result("late"))
        await until(lambda: queue.get(tid).status == "success")
        assert queue.get(tid).attempts == 1

    run(test, tmp_path, queue=queue)


def test_reconcile_puts_back_what_the_executor_cannot_follow(tmp_path: Path) -> None:
    queue, tid = _left_running(tmp_path, time.time() + 60)

    async def test(queue: TaskQueue, ex: FakeExecutor, scheduler: Scheduler) -> None:
        assert ex.resumed == [tid]
        await until(lambda: len(ex.launched) == 1)  # back in the queue, dispatched afresh
        assert ex.launched[0].number == 1  # the lost attempt was not counted

    run(test, tmp_path, queue=queue, resumable=False)


def test_cancel_stops_the_running_attempt_and_drops_its_late_answer(tmp_path: Path) -> None:
    async def test(queue: TaskQueue, ex: FakeExecutor, scheduler: Scheduler) -> None:
        _, (tid, other) = queue.enqueue([SPEC, SPEC])
        scheduler.wake()
        await until(lambda: len(ex.launched) == 2)
        attempt = ex.inflight[tid]
        before = scheduler.cancel(tid)
        assert before is not None and before.status == "running"
        assert ex.cancelled == [tid] and queue.get(tid).status == "cancelled"
        ex.deliver(attempt, execute_result("late"))  # an answer after the cancel
        assert queue.get(tid).status == "cancelled" and queue.get(tid).result is None
        assert scheduler.cancel(tid) is None  # already final
        assert queue.get(other).status == "running"

    run(test, tmp_path)


def test_the_watchdog_fails_overdue_tasks_nobody_follows(tmp_path: Path) -> None:
    queue, tid = _left_running(tmp_path, time.time() - 1)  # its deadline has passed

    async def test(queue: TaskQueue, ex: FakeExecutor, scheduler: Scheduler) -> None:
        ex.inflight.clear()  # resumed, then lost: nobody follows it any more
        scheduler._last_watchdog = 0.0
        scheduler.wake()
        # a timeout is worth a retry: back to the queue with the error, then run again
        await until(lambda: len(ex.launched) == 1)
        assert ex.launched[0].number == 2
        assert "superó su plazo" in (queue.get(tid).error or "")

    run(test, tmp_path, queue=queue)
