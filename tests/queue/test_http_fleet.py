"""Placement of the HTTP fleet executor, in-process: health records set by hand, no
network (the monitor is never started)."""

from __future__ import annotations

import time

from partisim.fleet import OrchestratorSettings, WorkerEntry
from partisim.fleet.health import HealthMonitor, Registry
from partisim.protocol import WorkerStatus
from partisim.serve.executors.http import HttpFleet
from partisim.serve.queue.task import Task


def fleet(
    capacities: dict[str, int | None],
    *,
    max_concurrent: int = 8,
    foreign: frozenset[str] = frozenset(),
    entries: dict[str, dict] | None = None,
    threads: dict[str, dict[str, int]] | None = None,
) -> HttpFleet:
    """Workers with the capacity their /status reports (None: no status yet); ``foreign``
    ones are not partisim; ``entries`` adds configuration fields per worker; ``threads``
    the threads per engine a worker's /status reports (none: it does not say)."""
    extra = entries or {}
    configured = [
        WorkerEntry(id=w, ip=f"127.0.0.{k + 10}", port=8080, **extra.get(w, {})) for k, w in enumerate(capacities)
    ]
    settings = OrchestratorSettings(max_concurrent_tasks=max_concurrent)
    registry = Registry(
        configured, timeout=settings.timeout, failures_before_inactive=settings.failures_before_inactive
    )
    for w, capacity in capacities.items():
        registry.record_success(w, latency_ms=1.0, reported_id=w)
        if capacity is not None:
            software = "" if w in foreign else "partisim"
            per_engine = (threads or {}).get(w, {})
            registry.record_status(
                w,
                WorkerStatus(
                    worker_id=w,
                    capacity=capacity,
                    software=software,
                    engine_threads=per_engine,
                    max_threads=max(per_engine.values(), default=1),
                ),
            )
    return HttpFleet(HealthMonitor(registry, interval=settings.ping_interval), settings)


def task(**kw: object) -> Task:
    fields = dict(
        id="t-1",
        seq=1,
        batch="b",
        status="queued",
        benchmark="python",
        params={},
        timeout=None,
        verify_of=None,
        exclude_worker=None,
        avoid_worker=None,
        worker=None,
        worker_url=None,
        attempts=0,
        max_attempts=3,
        not_before=0.0,
        deadline=None,
        created_at=time.time(),
        started_at=None,
        finished_at=None,
        result=None,
        error=None,
    )
    fields.update(kw)
    return Task(**fields)  # type: ignore[arg-type]


def test_the_worker_with_most_free_slots_gets_the_task() -> None:
    ex = fleet({"a": 2, "b": 4})
    placed = [ex.place(task()) for _ in range(6)]
    assert [p.member for p in placed if p] == ["b", "b", "a", "b", "a", "b"]
    assert ex.place(task()) is None and ex.free_slots() == 0  # 2 + 4 slots, all reserved
    ex.unplace(placed[0])
    assert ex.free_slots() == 1


def test_slots_are_capped_by_max_concurrent_tasks_and_unknown_capacity_is_one() -> None:
    ex = fleet({"a": 16, "b": None}, max_concurrent=3)
    assert {m.id: m.capacity for m in ex.members()} == {"a": 3, "b": 1}


def test_a_verification_run_never_goes_to_the_worker_of_its_original() -> None:
    ex = fleet({"a": 4, "b": 1})
    p = ex.place(task(exclude_worker="a"))
    assert p is not None and p.member == "b"
    assert ex.place(task(exclude_worker="a")) is None  # b is full; a is not an option


def test_a_retry_avoids_the_worker_that_failed_it_while_another_is_alive() -> None:
    ex = fleet({"a": 4, "b": 1})
    assert ex.place(task(avoid_worker="a")).member == "b"  # type: ignore[union-attr]
    assert ex.place(task(avoid_worker="a")) is None  # waits for b rather than going back to a
    lonely = fleet({"a": 4})
    assert lonely.place(task(avoid_worker="a")).member == "a"  # type: ignore[union-attr]


def test_inactive_workers_get_nothing() -> None:
    ex = fleet({"a": 4, "b": 4})
    ex.monitor.registry.record_failure("a", "caído")
    ex.monitor.registry.record_failure("a", "caído")
    ex._health = None
    assert {p.member for p in (ex.place(task()) for _ in range(4)) if p} == {"b"}


def test_the_configured_capacity_is_the_slot_limit() -> None:
    ex = fleet({"a": 16, "b": None}, max_concurrent=3, entries={"a": {"capacity": 5}, "b": {"capacity": 2}})
    assert {m.id: m.capacity for m in ex.members()} == {"a": 5, "b": 2}
    placed = [ex.place(task()) for _ in range(8)]
    assert sum(1 for p in placed if p) == 7


def test_algorithms_restrict_the_engines_a_worker_gets() -> None:
    ex = fleet(
        {"a": 4, "b": 4},
        entries={"a": {"algorithms": ["python", "numpy"]}, "b": {"algorithms": ["benchmark_cython.py"]}},
    )
    assert {ex.place(task(benchmark="cython")).member for _ in range(3)} == {"b"}  # type: ignore[union-attr]
    assert {ex.place(task(benchmark="numpy")).member for _ in range(4)} == {"a"}  # type: ignore[union-attr]
    assert ex.place(task(benchmark="numpy")) is None  # a is full; b may not run numpy
    assert ex.place(task(benchmark="python")) is None  # b does not run python either


def test_a_worker_that_is_not_partisim_gets_only_engines_with_a_script_name() -> None:
    ex = fleet({"legacy": 4}, foreign=frozenset({"legacy"}))
    assert ex.place(task(benchmark="numpy")) is None  # it would run benchmark.py instead
    assert ex.place(task(benchmark="cython")).member == "legacy"  # type: ignore[union-attr]
    assert ex.place(task(benchmark="python")).member == "legacy"  # type: ignore[union-attr]


# -- tasks of several threads --------------------------------------------------------

TWO_CORES = {"python": 1, "numpy": 1, "cython": 2}


def test_a_task_takes_its_threads_in_slots_capped_by_what_the_worker_can_use() -> None:
    ex = fleet({"a": 4, "old": 4, "legacy": 4}, foreign=frozenset({"legacy"}), threads={"a": TWO_CORES})
    health = {h.id: h for h in ex.health()}
    assert ex.slots_for(health["a"], task(benchmark="cython", threads=8)) == 2  # two cores there
    assert ex.slots_for(health["a"], task(benchmark="python", threads=8)) == 1  # python: one thread
    assert ex.slots_for(health["a"], task(benchmark="cython")) == 1
    assert ex.slots_for(health["old"], task(benchmark="cython", threads=8)) == 1  # says nothing of threads
    assert ex.slots_for(health["legacy"], task(benchmark="cython", threads=8)) == 1  # not partisim
    wide = fleet({"a": 3}, threads={"a": {"cython": 16}})
    assert wide.slots_for(wide.health()[0], task(benchmark="cython", threads=8)) == 3  # its slots here


def test_slots_of_a_placed_task_count_until_it_is_given_back() -> None:
    ex = fleet({"a": 2}, threads={"a": TWO_CORES})
    big = ex.place(task(id="big", benchmark="cython", threads=2))
    assert big is not None and (big.member, big.slots) == ("a", 2)
    assert ex.free_slots() == 0 and ex.members()[0].inflight == 2
    assert ex.place(task(id="small", benchmark="cython")) is None
    ex.unplace(big)
    assert ex.free_slots() == 2


def test_a_waiting_big_task_holds_its_worker_until_the_next_round() -> None:
    """With one of two slots busy, a 2-thread task cannot start; the 1-thread tasks behind
    it must not take the free slot (each round the big task is offered first)."""
    ex = fleet({"a": 2}, threads={"a": TWO_CORES})
    ex.round_start()
    first = ex.place(task(id="first", benchmark="cython"))
    assert first is not None and first.member == "a"
    ex.round_start()
    assert ex.free_slots() == 1
    assert ex.place(task(id="big", benchmark="cython", threads=2)) is None
    assert ex.free_slots() == 0  # a's free slot is held for the big task
    assert ex.place(task(id="later", benchmark="python")) is None
    assert ex.members()[0].free == 1  # held, not used
    ex.round_start()  # nothing freed yet: the next round holds it again
    assert ex.place(task(id="big", benchmark="cython", threads=2)) is None
    assert ex.place(task(id="later", benchmark="python")) is None
    ex.unplace(first)
    ex.round_start()
    placed = ex.place(task(id="big", benchmark="cython", threads=2))
    assert placed is not None and (placed.member, placed.slots) == ("a", 2)


def test_a_held_worker_does_not_stop_small_tasks_elsewhere() -> None:
    ex = fleet({"a": 2, "b": 2}, threads={"a": TWO_CORES, "b": {"python": 1, "cython": 1}})
    ex.round_start()
    assert ex.place(task(id="x", benchmark="cython")).member == "a"  # type: ignore[union-attr]
    assert ex.place(task(id="y", benchmark="cython")).member == "b"  # type: ignore[union-attr]
    ex.round_start()
    assert ex.place(task(id="big", benchmark="cython", threads=2)).member == "b"  # type: ignore[union-attr]
    # b can give only one thread: the big task ran there on one; a keeps taking small tasks
    assert ex.place(task(id="z", benchmark="cython")).member == "a"  # type: ignore[union-attr]
