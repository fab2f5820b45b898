"""The cython engine on several threads: the same counts and checksum as the Python engine, bit for bit."""

from __future__ import annotations

import math
import multiprocessing
import queue

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partisim.errors import ParamsError
from partisim.sim import SimParams, engine_threads, simulate
from partisim.sim.engines import MIN_PARTICLES_FOR_THREADS, _cython, numpy_, python
from partisim.sim.partition import grid_shape
from partisim.sim.state import checksum, initial_state

THREADS = (1, 2, 3, 4)


def outcome(run, params: SimParams, state, **kwargs) -> tuple[int, int, str]:
    state = tuple(a.copy() for a in state)
    pc, wc = run(params, state, **kwargs)
    return pc, wc, checksum(state)


def assert_threads_match_python(params: SimParams, state=None) -> tuple[int, int, str]:
    """Python engine once, then the cython engine on 1..4 threads (more threads than cores is fine)."""
    state = initial_state(params) if state is None else state
    reference = outcome(python.run, params, state)
    for threads in THREADS:
        got = outcome(_cython.run, params, state, threads=threads)
        assert got == reference, f"{threads} threads differ from python for {params!r}: {got} != {reference}"
    return reference


def restitution():
    return st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0))


@st.composite
def any_params(draw):
    radius = draw(st.floats(0.5, 10.0))
    width = draw(st.floats(2 * radius * 1.05, 900.0))
    height = draw(st.floats(2 * radius * 1.05, 700.0))
    cap = int(0.8 * width * height / (math.pi * radius**2))
    dt = draw(st.sampled_from([0.05, 0.1, 0.5, 1.0]))
    return SimParams(
        particles=draw(st.integers(1, max(1, min(120, cap)))),
        steps=draw(st.integers(1, 60)),
        seed=draw(st.integers(0, 2**63 - 1)),
        width=width,
        height=height,
        radius=radius,
        dt=dt,
        max_speed=draw(st.floats(0.0, min(80.0, min(width, height) / dt))),
        wall_restitution=draw(restitution()),
        particle_restitution=draw(restitution()),
    )


@st.composite
def dense_params(draw):
    particles = draw(st.integers(20, 200))
    radius = draw(st.floats(0.5, 10.0))
    packing = draw(st.floats(0.5, 0.8))
    aspect = draw(st.one_of(st.floats(0.5, 2.0), st.sampled_from([0.05, 20.0])))  # and long thin boxes
    area = particles * math.pi * radius**2 / packing
    width = max(math.sqrt(area * aspect), 2.2 * radius)
    height = area / width
    dt = draw(st.sampled_from([0.05, 0.1, 0.5]))
    return SimParams(
        particles=particles,
        steps=draw(st.integers(1, 40)),
        seed=draw(st.integers(0, 2**63 - 1)),
        width=width,
        height=height,
        radius=radius,
        dt=dt,
        max_speed=draw(st.floats(0.0, min(40.0, min(width, height) / dt))),
        wall_restitution=draw(restitution()),
        particle_restitution=draw(restitution()),
    )


@st.composite
def tiny_params(draw):
    """Few particles in boxes a few diameters wide: fewer cell rows than threads."""
    radius = draw(st.floats(0.5, 5.0))
    width = draw(st.floats(2 * radius * 1.02, 8 * radius))
    height = draw(st.floats(2 * radius * 1.02, 8 * radius))
    cap = int(0.8 * width * height / (math.pi * radius**2))
    dt = draw(st.sampled_from([0.1, 0.5]))
    return SimParams(
        particles=draw(st.integers(1, max(1, min(12, cap)))),
        steps=draw(st.integers(1, 30)),
        seed=draw(st.integers(0, 2**63 - 1)),
        width=width,
        height=height,
        radius=radius,
        dt=dt,
        max_speed=draw(st.floats(0.0, min(width, height) / dt)),
        wall_restitution=draw(restitution()),
        particle_restitution=draw(restitution()),
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_params())
def test_threads_identical_on_random_inputs(params: SimParams) -> None:
    assert_threads_match_python(params)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dense_params())
def test_threads_identical_on_dense_boxes(params: SimParams) -> None:
    assert params.packing_fraction >= 0.49
    assert_threads_match_python(params)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_params())
def test_threads_identical_on_tiny_boxes(params: SimParams) -> None:
    ncx, ncy, *_ = _cython._engine_grid(params.width, params.height, 2 * params.radius, params.particles)
    assert min(ncx, ncy) <= 4  # strips are whole rows: some threads get none
    assert_threads_match_python(params)


def chain(n: int, along_x: bool, radius: float = 5.0) -> tuple[SimParams, tuple[np.ndarray, ...]]:
    """n particles in a row spanning the box, each overlapping the next (spacing 0.8 diameters)
    and closing in on it, so one step resolves a chain of separations from one end to the other."""
    d = 2 * radius
    length = radius * 2 + (n - 1) * 0.8 * d + 1.0
    across = 6 * d
    k = np.arange(n, dtype=np.float64)
    along = radius + 0.5 + k * 0.8 * d
    side = across / 2 + 0.3 * np.sin(k)  # not quite straight: the normals vary
    speed = np.where(k % 2 == 0, 3.0, -3.0) * (1 + 0.01 * k)
    still = 0.1 * np.cos(k)
    if along_x:
        params = SimParams(
            particles=n,
            steps=8,
            width=length,
            height=across,
            radius=radius,
            dt=0.1,
            max_speed=5.0,
            wall_restitution=0.9,
            particle_restitution=0.7,
        )
        state = (along, side, speed, still)
    else:
        params = SimParams(
            particles=n,
            steps=8,
            width=across,
            height=length,
            radius=radius,
            dt=0.1,
            max_speed=5.0,
            wall_restitution=0.9,
            particle_restitution=0.7,
        )
        state = (side, along, still, speed)
    return params, tuple(np.ascontiguousarray(a) for a in state)


@pytest.mark.parametrize("along_x", [False, True], ids=["column", "row"])
def test_chain_of_separations_across_strips(along_x: bool) -> None:
    params, state = chain(60, along_x)
    ncx, ncy, *_ = _cython._engine_grid(params.width, params.height, 2 * params.radius, params.particles)
    assert max(ncx, ncy) >= 4 * max(THREADS)  # the chain crosses every strip boundary
    assert (ncx > ncy) == along_x  # strips cut the chain, whichever way it runs
    # in the first step every neighbour pair is a candidate: one component spanning the box
    x, y = state[0], state[1]
    pi, pj = _cython.candidate_pairs(
        x, y, tuple(grid_shape(params.width, params.height, params.radius, 60)), (2 * params.radius) ** 2, threads=4
    )
    assert {(i, i + 1) for i in range(59)} <= set(zip(pi.tolist(), pj.tolist(), strict=True))
    pc, _, _ = assert_threads_match_python(params, state)
    assert pc > 60  # many collisions, most of them in the chain


def test_chain_one_step_every_split() -> None:
    # the same chain, one step, on every thread count up to 8 (strips of one or two rows)
    params, state = chain(40, along_x=False)
    params = params.model_copy(update={"steps": 1})
    reference = outcome(python.run, params, state)
    assert reference[0] >= 20
    for threads in range(1, 9):
        assert outcome(_cython.run, params, state, threads=threads) == reference


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 300),
    width=st.floats(30.0, 2000.0),
    height=st.floats(30.0, 2000.0),
    radius=st.floats(0.5, 14.0),
    seed=st.integers(0, 2**32),
    threads=st.sampled_from(THREADS),
)
def test_parallel_broad_phase_matches_numpy(n, width, height, radius, seed, threads) -> None:
    rng = np.random.default_rng(seed)
    x = radius + rng.random(n) * (width - 2 * radius)
    y = radius + rng.random(n) * (height - 2 * radius)
    grid = grid_shape(width, height, radius, n)
    d2 = (2.0 * radius) ** 2
    ni, nj = numpy_.candidate_pairs(x, y, grid, d2)
    ci, cj = _cython.candidate_pairs(x, y, tuple(grid), d2, threads=threads)
    assert ci.tolist() == ni.tolist() and cj.tolist() == nj.tolist()


def test_fast_particles_force_rebuilds() -> None:
    # speeds close to the box size per step: the list is rebuilt nearly every step
    params = SimParams(
        particles=120,
        steps=60,
        width=300.0,
        height=200.0,
        radius=3.0,
        dt=1.0,
        max_speed=150.0,
        wall_restitution=1.0,
        particle_restitution=1.0,
        seed=11,
    )
    pc, wc, _ = assert_threads_match_python(params)
    assert pc > 0 and wc > 0


def test_cluster_in_a_huge_box() -> None:
    # cells are thousands of diameters wide (capped at a few per particle), and all the
    # particles sit in one corner: a list with the widest skin would hold every pair, so the
    # engine narrows the skin; the result must not change
    n, radius = 400, 2.0
    rng = np.random.default_rng(3)
    x = radius + rng.random(n) * 300.0
    y = radius + rng.random(n) * 300.0
    vx = (rng.random(n) - 0.5) * 10.0
    vy = (rng.random(n) - 0.5) * 10.0
    params = SimParams(
        particles=n,
        steps=8,
        width=1e5,
        height=1e5,
        radius=radius,
        dt=0.5,
        max_speed=5.0,
        wall_restitution=0.0,
        particle_restitution=0.5,
    )
    pc, wc, _ = assert_threads_match_python(params, (x, y, vx, vy))
    assert pc > 0 and wc > 0


def test_simulate_reports_threads_used_and_why() -> None:
    params = SimParams(particles=300, steps=30, seed=5)
    reference = simulate(params, "python", threads=4)
    assert reference.threads == 1 and reference.to_dict()["threads"] == 1
    assert reference.threads_reason == "single_threaded_engine" and reference.threads_requested == 4
    assert simulate(params, "numpy", threads=3).threads == 1
    for threads in (1, 2, 64):
        # below MIN_PARTICLES_FOR_THREADS a second thread costs more than it saves: one thread
        result = simulate(params, "cython", threads=threads)
        assert result.threads == 1 and result.threads_requested == threads
        assert result.threads_reason == ("requested" if threads == 1 else "small_work")
        assert result.to_dict()["threads_reason"] == result.threads_reason
        assert (result.particle_collisions, result.wall_collisions, result.checksum) == (
            reference.particle_collisions,
            reference.wall_collisions,
            reference.checksum,
        )


def test_a_run_big_enough_uses_its_threads_and_says_so() -> None:
    side = math.sqrt(MIN_PARTICLES_FOR_THREADS / 100) * 800.0
    params = SimParams(particles=MIN_PARTICLES_FOR_THREADS, steps=2, width=side, height=side, seed=3)
    cores = _cython.max_threads()
    one = simulate(params, "cython", threads=1)
    for threads in (2, 64):
        result = simulate(params, "cython", threads=threads)
        if result.threads_reason == "busy_machine":
            # other threads held the cores when it started (a shared machine): fewer threads
            assert 1 <= result.threads < min(threads, cores)
        elif _cython.openmp_available():
            assert result.threads == engine_threads("cython", threads) == min(threads, cores)
            assert result.threads_reason == ("requested" if cores >= threads else "machine_cores")
        else:
            assert (result.threads, result.threads_reason) == (1, "no_openmp")
        assert result.checksum == one.checksum


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True, None])
def test_simulate_refuses_bad_thread_counts(bad) -> None:
    with pytest.raises(ParamsError) as info:
        simulate(SimParams(particles=10, steps=2), "cython", threads=bad)
    assert info.value.field == "threads" and "hilos" in info.value.message


def _simulate_in_child(params: SimParams, results) -> None:
    result = simulate(params, "cython", threads=2)
    results.put((result.threads, result.checksum, result.threads_reason))


def test_forked_child_after_threads_does_not_hang() -> None:
    # GNU OpenMP's thread pool does not survive a fork: a child of a process that ran several
    # threads must run on one (same results) instead of waiting forever
    side = math.sqrt(MIN_PARTICLES_FOR_THREADS / 100) * 800.0  # big enough for threads
    params = SimParams(particles=MIN_PARTICLES_FOR_THREADS, steps=3, width=side, height=side, seed=9)
    parent = simulate(params, "cython", threads=2)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_simulate_in_child, args=(params, results))
    child.start()
    try:
        threads, digest, reason = results.get(timeout=60)
    except queue.Empty:
        pytest.fail("the forked child hung in the cython engine")
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0 and digest == parent.checksum
    if parent.threads > 1:
        assert threads == 1 and reason == "forked_process"


def test_openmp_reporting_is_consistent() -> None:
    assert _cython.max_threads() >= 1
    if _cython.openmp_available():
        assert _cython.threads_used(3) == 3
    else:
        assert _cython.max_threads() == 1 and _cython.threads_used(3) == 1
    with pytest.raises(ValueError):
        _cython.threads_used(0)
