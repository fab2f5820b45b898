"""Small attempts run in the Dask worker's thread, several per Dask task; the others
alone, in a killable child. Which is which, and that a mix of both comes back exactly
once and model-exact."""

from __future__ import annotations

import pytest
from dask_support import HALF_SECOND, by_id, wait_done

from partisim.serve.client import ServerClient
from partisim.sim import parse_params, simulate
from partisim.sim.cost import TINY_MAX_S, estimate, tiny

TINY = {"NUM_PARTICULAS": 10, "NUM_PASOS": 1}


def test_only_work_far_below_its_deadline_runs_inline() -> None:
    small = parse_params(TINY)
    assert tiny(small, 600.0)
    assert not tiny(small, 0.1)  # a deadline close to the work: the child can enforce it
    assert not tiny(parse_params(HALF_SECOND), 600.0)  # ~0.5 s of work
    assert not tiny(parse_params({"NUM_PARTICULAS": 300, "NUM_PASOS": 800}), 600.0)
    # the estimate is pessimistic: the python engine's real time stays below it
    for params in (small, parse_params({"NUM_PARTICULAS": 40, "NUM_PASOS": 40})):
        assert estimate(params) <= TINY_MAX_S
        assert simulate(params, "python").simulation_time < estimate(params)


@pytest.mark.slow
def test_a_mix_of_inline_and_child_attempts_comes_back_once_and_model_exact(dask_pair, procs) -> None:
    scheduler, workers = dask_pair
    serve = procs.serve(scheduler.address)
    specs = []
    for s in range(48):
        specs.append({"benchmark": ("python", "numpy", "cython")[s % 3], "params": {**TINY, "SEMILLA": s}})
        if s % 12 == 0:
            specs.append({"benchmark": "python", "params": {**HALF_SECOND, "SEMILLA": s}})
    with ServerClient(serve.url) as client:
        answer = client.submit(specs)
        state = wait_done(client, answer.batch, timeout=240)
        tasks = by_id(client, answer.batch)
    assert state.success == len(specs) == 52 and state.failed == 0
    assert sorted(tasks) == sorted(answer.ids)
    assert {t.worker for t in tasks.values()} <= {w.address for w in workers}
    for t in tasks.values():
        assert t.status == "success" and t.attempts == 1 and t.duplicates == 0, t
        assert t.result is not None and t.result.runner == "dask"
        ref = simulate(parse_params(t.params), t.benchmark)
        assert (t.result.checksum, t.result.particle_collisions, t.result.wall_collisions) == (
            ref.checksum,
            ref.particle_collisions,
            ref.wall_collisions,
        )


def _ours_in_dask(dask_scheduler) -> int:  # type: ignore[no-untyped-def]
    """Run on the scheduler: this test's attempts that Dask holds and has not finished."""
    live = {"waiting", "queued", "no-worker", "processing"}
    return sum(1 for key, ts in dask_scheduler.tasks.items() if str(key).startswith("partisim-") and ts.state in live)


@pytest.mark.slow
def test_long_attempts_reach_dask_two_per_thread_so_a_free_worker_takes_the_next(dask_pair, procs) -> None:
    """With 4 per thread, Dask gave each worker its share up front and a sweep of ~1 s
    tasks of unequal length ended on one worker while the other idled (measured: 5 and 3
    of the first 8). At most `CHILD_PREFETCH` per thread are in Dask at once, and both
    workers share the sweep."""
    import sys

    import cloudpickle
    from dask.distributed import Client

    from partisim.serve.executors.dask.cluster import CHILD_PREFETCH

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the scheduler cannot import tests

    scheduler, workers = dask_pair
    serve = procs.serve(scheduler.address)
    specs = [{"benchmark": "python", "params": {**HALF_SECOND, "SEMILLA": s}} for s in range(10)]
    seen = []
    with ServerClient(serve.url) as client, Client(scheduler.address, timeout=30) as dask:
        answer = client.submit(specs)
        while client.summary().success + client.summary().failed < len(specs):
            seen.append(dask.run_on_scheduler(_ours_in_dask))
        tasks = by_id(client, answer.batch)
    assert max(seen) >= 3  # the window was really filled
    assert max(seen) <= CHILD_PREFETCH * len(workers), seen
    ran = [sum(1 for t in tasks.values() if t.worker == w.address) for w in workers]
    assert all(t.status == "success" for t in tasks.values())
    assert min(ran) >= 3, ran
