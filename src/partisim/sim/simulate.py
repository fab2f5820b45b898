"""Run one simulation with any engine and measure its stepping loop."""

from __future__ import annotations

import time

from partisim.errors import ParamsError
from partisim.sim.engines import engine_threads, get_engine, resolve_engine
from partisim.sim.params import SimParams
from partisim.sim.result import SimResult
from partisim.sim.state import checksum, initial_state, kinetic_energy

__all__ = ["simulate"]


def simulate(params: SimParams, engine: str = "cython", threads: int = 1) -> SimResult:
    """Run `params` on `engine` with up to `threads` threads (capped at this machine's cores;
    the single-threaded engines use one). Every thread count gives the same result."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ParamsError(f"threads (hilos) debe ser un número entero >= 1, se recibió {threads!r}",
                          field="threads")
    name = resolve_engine(engine)
    run = get_engine(name)
    used = engine_threads(name, threads)
    state = initial_state(params)
    start = time.perf_counter()
    particle_collisions, wall_collisions = run(params, state, threads=used)
    elapsed = time.perf_counter() - start
    return SimResult(
        engine=name,
        particles=params.particles,
        steps=params.steps,
        seed=params.seed,
        params=params.to_api(),
        particle_collisions=int(particle_collisions),
        wall_collisions=int(wall_collisions),
        checksum=checksum(state),
        kinetic_energy=kinetic_energy(state),
        simulation_time=elapsed,
        threads=used,
    )
