"""Run one simulation with any engine and measure its stepping loop."""

from __future__ import annotations

import time

from partisim.sim.engines import get_engine, resolve_engine
from partisim.sim.params import SimParams
from partisim.sim.result import SimResult
from partisim.sim.state import checksum, initial_state, kinetic_energy

__all__ = ["simulate"]


def simulate(params: SimParams, engine: str = "cython") -> SimResult:
    name = resolve_engine(engine)
    run = get_engine(name)
    state = initial_state(params)
    start = time.perf_counter()
    particle_collisions, wall_collisions = run(params, state)
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
    )
