"""Kinetic theory against real runs of the model (cython engine, fixed seeds)."""

from __future__ import annotations

import math

import pytest

from partisim.sim import SimParams, get_engine, measure_run, predict, simulate
from partisim.sim.measure import temperature_of
from partisim.sim.state import initial_state


def box(particles: int, packing: float, radius: float = 5.0) -> tuple[float, float]:
    """A 4:3 box holding `particles` disks at the given packing fraction."""
    area = particles * math.pi * radius**2 / packing
    height = math.sqrt(area * 3 / 4)
    return area / height, height


@pytest.mark.parametrize(
    ("particles", "packing", "dt", "steps", "seed"),
    [
        (500, 0.02, 0.015, 150_000, 1),  # a = 0.021, about 30 000 collisions measured
        (800, 0.05, 0.01, 80_000, 2),  # a = 0.015, about 45 000 collisions measured
    ],
)
def test_dilute_elastic_rates_match_theory(particles: int, packing: float, dt: float, steps: int, seed: int) -> None:
    width, height = box(particles, packing)
    params = SimParams(
        particles=particles,
        width=width,
        height=height,
        dt=dt,
        steps=steps,
        seed=seed,
        wall_restitution=1.0,
        particle_restitution=1.0,
    )
    m = measure_run(params, "cython")
    p = predict(params, m.temperature)
    assert p.step_ratio <= 0.03
    assert m.temperature_end == pytest.approx(m.temperature_start, rel=1e-9)  # elastic: kT is conserved
    assert m.collision_rate_measured / p.collision_rate_theory == pytest.approx(1.0, abs=0.03)
    assert m.wall_rate_measured / p.wall_rate_theory == pytest.approx(1.0, abs=0.03)


def test_dilute_inelastic_gas_cools_by_haffs_law() -> None:
    # 1000 disks at eta = 0.05, e = 0.9, elastic walls (an inelastic wall would cool the gas too)
    width, height = box(1000, 0.05)
    params = SimParams(
        particles=1000, width=width, height=height, dt=0.01, seed=3, wall_restitution=1.0, particle_restitution=0.9
    )
    state = initial_state(params)
    t0 = temperature_of(state)
    tau = predict(params, t0).haff_tau
    assert tau is not None
    run = get_engine("cython")
    chunk = round(tau / params.dt)  # one tau per chunk
    for k in (1, 2):
        run(params.model_copy(update={"steps": chunk}), state)
        elapsed = k * chunk * params.dt
        haff = t0 / (1 + elapsed / tau) ** 2
        assert temperature_of(state) == pytest.approx(haff, rel=0.10)
    # the gas did cool: by 2 tau, to about a ninth
    assert temperature_of(state) < 0.15 * t0


@pytest.mark.parametrize("engine", ["python", "cython"])
@pytest.mark.parametrize("steps", [7, 40])
def test_measured_run_is_the_plain_run(engine: str, steps: int) -> None:
    # halves and samples advance one state in place: same counts and checksum as `simulate`
    params = SimParams(particles=60, steps=steps, width=200.0, height=150.0, seed=11)
    m = measure_run(params, engine)
    plain = simulate(params, engine)
    assert (m.particle_collisions, m.wall_collisions, m.checksum) == (
        plain.particle_collisions,
        plain.wall_collisions,
        plain.checksum,
    )
    assert m.measured_steps == steps - steps // 2
