"""Run one simulation with any engine and measure its stepping loop."""

from __future__ import annotations

import time
from collections.abc import Callable

from partisim.errors import ParamsError
from partisim.sim.engines import ThreadPlan, get_engine, resolve_engine, thread_plan
from partisim.sim.params import SimParams
from partisim.sim.result import SimResult
from partisim.sim.state import State, checksum, initial_state, kinetic_energy

__all__ = ["simulate", "finished_run", "Progress", "CHUNK_SECONDS"]

#: ``progress(steps_done, steps_total, loop_seconds)``: called after each chunk of steps
Progress = Callable[[int, int, float], None]
#: with a progress callback, the steps run in chunks of about this many seconds
CHUNK_SECONDS = 0.25


def simulate(
    params: SimParams, engine: str = "cython", threads: int = 1, *, progress: Progress | None = None
) -> SimResult:
    """Run ``params.steps`` steps of ``engine`` from the initial state, with up to ``threads``
    threads (capped at this machine's cores; the single-threaded engines and small runs use
    one: `thread_plan` decides, and the result says why). Every thread count gives the same
    result.

    With ``progress``, the engine runs in chunks of steps on the same state arrays
    (each chunk continues exactly where the last stopped, as `measure_run` does), so
    the counts and the checksum are those of one uninterrupted run; only the time
    spent in the engine counts as ``simulation_time``, never the callback's."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ParamsError(f"threads (hilos) debe ser un número entero >= 1, se recibió {threads!r}", field="threads")
    name = resolve_engine(engine)
    run = get_engine(name)
    plan = thread_plan(name, threads, params.particles)
    used = plan.used
    state = initial_state(params)
    if progress is None:
        start = time.perf_counter()
        particle_collisions, wall_collisions = run(params, state, threads=used)
        elapsed = time.perf_counter() - start
    else:
        particle_collisions = wall_collisions = 0
        elapsed = 0.0
        done, chunk = 0, 1
        while done < params.steps:
            size = min(chunk, params.steps - done)
            part = params.model_copy(update={"steps": size})
            start = time.perf_counter()
            pc, wc = run(part, state, threads=used)
            elapsed += time.perf_counter() - start
            particle_collisions += pc
            wall_collisions += wc
            done += size
            progress(done, params.steps, elapsed)
            # the next chunk lasts about CHUNK_SECONDS at the speed seen so far
            chunk = max(1, int(CHUNK_SECONDS * done / elapsed)) if elapsed > 0 else chunk * 10
    return finished_run(name, params, state, (particle_collisions, wall_collisions), elapsed, plan)


def finished_run(
    engine: str, params: SimParams, state: State, counts: tuple[int, int], elapsed: float, plan: ThreadPlan
) -> SimResult:
    """The result of a run of ``engine`` that left ``state`` after ``counts`` (particle,
    wall) collisions in ``elapsed`` seconds of the engine, on the threads of ``plan``."""
    return SimResult(
        engine=engine,
        particles=params.particles,
        steps=params.steps,
        seed=params.seed,
        params=params.to_api(),
        particle_collisions=int(counts[0]),
        wall_collisions=int(counts[1]),
        checksum=checksum(state),
        kinetic_energy=kinetic_energy(state),
        simulation_time=elapsed,
        threads=plan.used,
        threads_requested=plan.requested,
        threads_reason=plan.reason,
    )
