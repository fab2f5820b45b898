"""The rule of threads a task gets on a worker (`serve.executors.threads`), without a loop
or a process: what serve places by and what it writes into the result."""

from __future__ import annotations

from helpers.results import execute_result

from partisim.protocol import WorkerStatus
from partisim.serve.executors.threads import Grant, as_asked, grant


def _status(capacity: int, cython: int, *, software: str = "partisim") -> WorkerStatus:
    return WorkerStatus(
        worker_id="w",
        software=software,
        capacity=capacity,
        engine_threads={"python": 1, "numpy": 1, "cython": cython},
    )


def test_grant_caps_and_says_why() -> None:
    two = _status(capacity=2, cython=2)
    assert grant(1, "cython", two, 2) == Grant(1, "requested")
    assert grant(2, "cython", two, 2) == Grant(2, "requested")
    assert grant(2, "python", two, 2) == Grant(1, "single_threaded_engine")
    assert grant(2, "cython", _status(capacity=1, cython=1), 1) == Grant(1, "worker_capacity")
    # fewer slots in the configuration than the worker's capacity: still a matter of capacity
    assert grant(2, "cython", two, 1) == Grant(1, "worker_capacity")
    assert grant(4, "cython", _status(capacity=4, cython=2), 4) == Grant(2, "machine_cores")
    assert grant(2, "cython", None, 2).threads == 1  # no /status yet
    assert grant(2, "cython", _status(2, 2, software=""), 2).threads == 1  # not partisim


def test_as_asked_puts_back_what_the_task_asked_for() -> None:
    ran = execute_result(task_id="t", engine="python").model_copy(
        update={"threads": 1, "threads_requested": 1, "threads_reason": "requested"}
    )
    told = as_asked(ran, asked=2, sent=1, reason="single_threaded_engine")
    assert (told.threads, told.threads_requested, told.threads_reason) == (1, 2, "single_threaded_engine")
    assert as_asked(ran, asked=1, sent=1, reason="x") is ran  # nothing capped
    own = ran.model_copy(update={"threads_reason": "busy_machine"})
    assert as_asked(own, asked=2, sent=1, reason="worker_capacity").threads_reason == "busy_machine"
