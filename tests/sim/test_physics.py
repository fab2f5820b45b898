"""Physical sanity of the canonical model (checked on the fast engine, which equals the others)."""

from __future__ import annotations

import numpy as np
import pytest

from partisim.sim import SimParams, get_engine, simulate
from partisim.sim.state import initial_state, kinetic_energy


def test_energy_conserved_with_elastic_collisions() -> None:
    params = SimParams(particles=300, steps=1000, wall_restitution=1.0, particle_restitution=1.0)
    state = initial_state(params)
    before = kinetic_energy(state)
    pc, wc = get_engine("cython")(params, state)
    after = kinetic_energy(state)
    assert pc > 100 and wc > 100
    assert abs(after - before) <= 1e-9 * before


@pytest.mark.parametrize("engine", ["python", "cython"])
def test_energy_never_increases_with_dissipation(engine: str) -> None:
    params = SimParams(particles=150, steps=1, wall_restitution=0.8, particle_restitution=0.5, seed=3)
    state = initial_state(params)
    run = get_engine(engine)
    energy = kinetic_energy(state)
    for _ in range(150):
        run(params, state)
        now = kinetic_energy(state)
        assert now <= energy * (1 + 1e-12)
        energy = now


def test_same_inputs_same_checksum_and_seeds_differ() -> None:
    a = simulate(SimParams(particles=120, steps=100, seed=1), "cython")
    b = simulate(SimParams(particles=120, steps=100, seed=1), "cython")
    c = simulate(SimParams(particles=120, steps=100, seed=2), "cython")
    assert a.checksum == b.checksum
    assert a.checksum != c.checksum


def test_particles_inside_the_box_after_the_wall_phase() -> None:
    # With no particle collisions possible (one particle), nothing can push it out:
    # after every step it must be within [r, size - r].
    params = SimParams(particles=1, steps=1, max_speed=600.0, dt=1.0, seed=9)
    state = initial_state(params)
    run = get_engine("python")
    for _ in range(500):
        run(params, state)
        x, y, _, _ = state
        assert params.radius <= x[0] <= params.width - params.radius
        assert params.radius <= y[0] <= params.height - params.radius


def test_wall_phase_keeps_every_particle_inside_in_a_crowd() -> None:
    # Replays the step phases by hand: after drift + walls no particle is outside.
    params = SimParams(particles=400, steps=1, seed=11, max_speed=200.0)
    state = initial_state(params)
    run = get_engine("cython")
    r, w, h = params.radius, params.width, params.height
    for _ in range(100):
        x, y, vx, vy = (a.copy() for a in state)
        x = x + vx * params.dt
        y = y + vy * params.dt
        x = np.where(x - r < 0, r, np.where(x + r > w, w - r, x))
        y = np.where(y - r < 0, r, np.where(y + r > h, h - r, y))
        assert (x >= r).all() and (x <= w - r).all() and (y >= r).all() and (y <= h - r).all()
        run(params, state)


def test_result_fields() -> None:
    r = simulate(SimParams(particles=50, steps=20), "numpy").to_dict()
    for key in ("engine", "particles", "steps", "seed", "particle_collisions", "wall_collisions",
                "checksum", "kinetic_energy", "simulation_time", "particle_steps_per_s"):
        assert key in r
    assert r["params"]["NUM_PARTICULAS"] == 50
    assert r["particle_steps_per_s"] > 0
