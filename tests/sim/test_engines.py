"""Bit-identity: every engine gives the same counts and checksum for every valid input."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partisim.sim import ENGINES, SimParams, simulate


def outcomes(params: SimParams) -> dict[str, tuple[int, int, str]]:
    results = {}
    for engine in ENGINES:
        r = simulate(params, engine)
        results[engine] = (r.particle_collisions, r.wall_collisions, r.checksum)
    return results


def assert_identical(params: SimParams) -> tuple[int, int, str]:
    results = outcomes(params)
    reference = results["python"]
    for engine, got in results.items():
        assert got == reference, f"{engine} differs from python for {params!r}: {got} != {reference}"
    return reference


@st.composite
def valid_params(draw, max_particles: int = 400, max_steps: int = 200):
    radius = draw(st.floats(0.5, 12.0))
    width = draw(st.floats(2 * radius * 1.05, 900.0))
    height = draw(st.floats(2 * radius * 1.05, 700.0))
    cap = int(0.85 * width * height / (math.pi * radius**2))
    particles = draw(st.integers(1, max(1, min(max_particles, cap))))
    dt = draw(st.sampled_from([0.01, 0.05, 0.1, 0.5]))
    max_speed = draw(st.floats(0.0, min(60.0, min(width, height) / dt)))
    return SimParams(
        particles=particles,
        steps=draw(st.integers(1, max_steps)),
        seed=draw(st.integers(0, 2**63 - 1)),
        width=width,
        height=height,
        radius=radius,
        dt=dt,
        max_speed=max_speed,
        wall_restitution=draw(st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0))),
        particle_restitution=draw(st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0))),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_params())
def test_engines_bit_identical_on_random_inputs(params: SimParams) -> None:
    """40 random inputs in the fast tier; its slow twin below draws 150."""
    assert_identical(params)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_params())
def test_engines_bit_identical_on_many_random_inputs(params: SimParams) -> None:
    """The fast test's twin with the full count: 150 random inputs (about 6 s idle)."""
    assert_identical(params)


@st.composite
def dense_params(draw):
    particles = draw(st.integers(20, 300))
    radius = draw(st.floats(0.5, 12.0))
    packing = draw(st.floats(0.5, 0.85))
    aspect = draw(st.floats(0.5, 2.0))
    area = particles * math.pi * radius**2 / packing
    width = math.sqrt(area * aspect)
    height = area / width
    dt = draw(st.sampled_from([0.05, 0.1, 0.5]))
    return SimParams(
        particles=particles,
        steps=draw(st.integers(1, 60)),
        seed=draw(st.integers(0, 2**63 - 1)),
        width=width,
        height=height,
        radius=radius,
        dt=dt,
        max_speed=draw(st.floats(0.0, min(40.0, min(width, height) / dt))),
        wall_restitution=draw(st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0))),
        particle_restitution=draw(st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0))),
    )


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dense_params())
def test_engines_bit_identical_on_dense_boxes(params: SimParams) -> None:
    assert params.packing_fraction >= 0.49
    assert_identical(params)


@pytest.mark.parametrize("packing", [0.55, 0.7, 0.85])
def test_dense_box_has_many_simultaneous_contacts(packing: float) -> None:
    # 200 particles of radius 5 in a square box at the given packing fraction.
    side = math.sqrt(200 * math.pi * 25 / packing)
    params = SimParams(particles=200, steps=40, width=side, height=side, seed=7)
    pc, _, _ = assert_identical(params)
    assert pc > 200  # several contacts per particle and step: the hard case


def test_default_parameters_identical() -> None:
    pc, wc, digest = assert_identical(SimParams(steps=300))
    assert pc > 0 and wc > 0 and len(digest) == 64


def test_huge_sparse_box_stays_cheap_and_identical() -> None:
    # 5 particles in a 1e9 x 1e9 box: the grid must not allocate per unit area.
    params = SimParams(particles=5, steps=50, width=1e9, height=1e9, max_speed=1e6, dt=1.0)
    assert_identical(params)
