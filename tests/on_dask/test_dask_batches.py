"""Small attempts run in the Dask worker's thread, several per Dask task; the others
alone, in a killable child. Which is which, and that a mix of both comes back exactly
once and model-exact."""

from __future__ import annotations

import pytest
from dask_support import HALF_SECOND, by_id, wait_done

from partisim.serve.client import ServerClient
from partisim.serve.executors.dask.remote import INLINE_MAX_S, estimate, inline
from partisim.sim import parse_params, simulate

TINY = {"NUM_PARTICULAS": 10, "NUM_PASOS": 1}


def test_only_work_far_below_its_deadline_runs_inline() -> None:
    tiny = parse_params(TINY)
    assert inline(tiny, 600.0)
    assert not inline(tiny, 0.1)  # a deadline close to the work: the child can enforce it
    assert not inline(parse_params(HALF_SECOND), 600.0)  # ~0.5 s of work
    assert not inline(parse_params({"NUM_PARTICULAS": 300, "NUM_PASOS": 800}), 600.0)
    # the estimate is pessimistic: the python engine's real time stays below it
    for params in (tiny, parse_params({"NUM_PARTICULAS": 40, "NUM_PASOS": 40})):
        assert estimate(params) <= INLINE_MAX_S
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
