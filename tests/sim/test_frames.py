"""Frames recorded from the real engines (`partisim.sim.frames`): the recorded run is
the plain run, bit for bit, and the bounds on frames and bytes hold."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partisim.errors import ParamsError
from partisim.sim import get_engine, parse_params, simulate
from partisim.sim.frames import BYTES_PER_POINT, QUANT, frame_interval, record_frames, sample_stride
from partisim.sim.state import initial_state

# dense enough that pairs collide within a few dozen steps
PARAMS = {"NUM_PARTICULAS": 90, "NUM_PASOS": 37, "SEMILLA": 11, "ANCHO_MUNDO": 200.0, "ALTO_MUNDO": 150.0, "DT": 0.2}


def _quantised(x: np.ndarray, y: np.ndarray, width: float, height: float) -> np.ndarray:
    return np.column_stack((np.rint(x / width * QUANT), np.rint(y / height * QUANT))).astype(np.uint16)


@pytest.mark.parametrize("engine", ["python", "numpy", "cython"])
def test_recorded_run_is_the_plain_run(engine: str) -> None:
    params = parse_params(PARAMS)
    rec = record_frames(params, engine, max_frames=8)
    plain = simulate(params, engine)
    assert rec.result.checksum == plain.checksum
    assert (rec.result.particle_collisions, rec.result.wall_collisions) == (
        plain.particle_collisions,
        plain.wall_collisions,
    )
    assert plain.particle_collisions > 0 and plain.wall_collisions > 0, "the input should exercise both counters"
    # k = ceil(37 / 7) = 6: frames at 0, 6, ..., 36 and the final step 37
    assert rec.interval == 6
    assert rec.steps == [0, 6, 12, 18, 24, 30, 36, 37]
    assert rec.frames == 8 == rec.positions.shape[0]
    assert rec.particle_collisions[0] == rec.wall_collisions[0] == 0
    assert rec.particle_collisions[-1] == plain.particle_collisions
    assert rec.wall_collisions[-1] == plain.wall_collisions
    assert rec.particle_collisions == sorted(rec.particle_collisions)
    assert rec.wall_collisions == sorted(rec.wall_collisions)
    assert not rec.sampled and rec.drawn == 90 and rec.stride == 1

    # first frame: the initial state; a middle frame and the last: the state of a plain
    # run of that many steps
    start = initial_state(params)
    assert np.array_equal(rec.positions[0], _quantised(start[0], start[1], params.width, params.height))
    for frame in (3, 7):
        state = initial_state(params)
        get_engine(engine)(params.model_copy(update={"steps": rec.steps[frame]}), state)
        expected = _quantised(state[0], state[1], params.width, params.height)
        assert np.array_equal(rec.positions[frame], expected), f"frame {frame}"


def test_counters_per_frame_are_those_of_shorter_runs() -> None:
    params = parse_params(PARAMS)
    rec = record_frames(params, "cython", max_frames=5)
    for frame, step in enumerate(rec.steps[1:], start=1):
        short = simulate(params.model_copy(update={"steps": step}), "cython")
        assert (rec.particle_collisions[frame], rec.wall_collisions[frame]) == (
            short.particle_collisions,
            short.wall_collisions,
        )


@settings(max_examples=200, deadline=None)
@given(steps=st.integers(1, 10_000_000), max_frames=st.integers(2, 2000))
def test_interval_keeps_frames_within_budget(steps: int, max_frames: int) -> None:
    k = frame_interval(steps, max_frames)
    frames = math.ceil(steps / k) + 1
    assert frames <= max_frames
    # the smallest such k: one step less would need too many frames
    if k > 1:
        assert math.ceil(steps / (k - 1)) + 1 > max_frames


@settings(max_examples=200, deadline=None)
@given(
    particles=st.integers(1, 1_000_000),
    frames=st.integers(2, 2000),
    limit=st.integers(1, 10_000),
    budget=st.integers(1_000, 50_000_000),
)
def test_sample_stride_bounds_particles_and_bytes(particles: int, frames: int, limit: int, budget: int) -> None:
    stride = sample_stride(particles, frames, limit, budget)
    drawn = len(range(0, particles, stride))
    assert 1 <= drawn <= particles
    assert drawn <= limit
    assert drawn == 1 or frames * drawn * BYTES_PER_POINT <= budget


def test_large_runs_are_sampled() -> None:
    params = parse_params({"NUM_PARTICULAS": 3000, "NUM_PASOS": 4, "SEMILLA": 3})
    rec = record_frames(params, "cython", max_frames=5, draw_limit=500)
    assert rec.sampled and rec.stride == 6 and rec.drawn == 500
    assert rec.result.checksum == simulate(params, "cython").checksum
    # every 6th particle, by index
    start = initial_state(params)
    expected = _quantised(start[0][::6], start[1][::6], params.width, params.height)
    assert np.array_equal(rec.positions[0], expected)
    small = record_frames(params, "cython", max_frames=5, max_bytes=5 * 100 * BYTES_PER_POINT)
    assert small.drawn <= 100 and small.positions.nbytes <= 5 * 100 * BYTES_PER_POINT


@pytest.mark.parametrize("bad", [1, 0, 2001, True])
def test_frames_out_of_range_are_refused(bad: int) -> None:
    with pytest.raises(ParamsError) as err:
        record_frames(parse_params({"NUM_PARTICULAS": 5, "NUM_PASOS": 5}), "numpy", max_frames=bad)
    assert err.value.field == "frames" and "frames" in err.value.message


def test_recorded_run_uses_and_explains_its_threads_as_the_plain_run() -> None:
    """90 particles asking for two threads: one, because the work is small (`thread_plan`),
    and the recording's result says so as `simulate`'s does."""
    params = parse_params(PARAMS)
    rec = record_frames(params, "cython", 2, max_frames=5)
    plain = simulate(params, "cython", 2)
    shown = (rec.result.threads, rec.result.threads_requested, rec.result.threads_reason)
    assert shown == (plain.threads, plain.threads_requested, plain.threads_reason) == (1, 2, "small_work")
