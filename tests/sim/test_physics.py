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


def test_wall_phase_puts_a_crowd_back_inside_the_box() -> None:
    # The reference engine's wall phase on 2 000 drifted particles, many of them outside.
    from partisim.sim.engines.python import walls

    rng = np.random.default_rng(5)
    r, w, h, ew = 5.0, 800.0, 600.0, 0.8
    x = (rng.random(2000) * 1000 - 100).tolist()
    y = (rng.random(2000) * 800 - 100).tolist()
    vx = (rng.random(2000) - 0.5).tolist()
    vy = (rng.random(2000) - 0.5).tolist()
    outside = [(xi - r < 0 or xi + r > w or yi - r < 0 or yi + r > h) for xi, yi in zip(x, y, strict=True)]
    before_vx = list(vx)
    touched = walls(x, y, vx, vy, r, w, h, ew)
    assert touched == sum(outside) > 500
    assert all(r <= xi <= w - r for xi in x) and all(r <= yi <= h - r for yi in y)
    # a particle sent back from a side wall moves away from it, slower by ew
    for xi, v0, v1 in zip(x, before_vx, vx, strict=True):
        if xi == r or xi == w - r:
            assert v1 == -(ew * v0)


def test_result_fields() -> None:
    r = simulate(SimParams(particles=50, steps=20), "numpy").to_dict()
    for key in (
        "engine",
        "particles",
        "steps",
        "seed",
        "particle_collisions",
        "wall_collisions",
        "checksum",
        "kinetic_energy",
        "simulation_time",
        "particle_steps_per_s",
    ):
        assert key in r
    assert r["params"]["NUM_PARTICULAS"] == 50
    assert r["particle_steps_per_s"] > 0
