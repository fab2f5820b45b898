"""Frames of a run: positions every k steps, recorded from a real engine.

The engine runs in chunks of k steps on the same state arrays (every engine advances
a state in place and continues exactly where it stopped, as `simulate` does with a
progress callback), so the last frame is the final state of a run with the same counts
and checksum as one uninterrupted run. Between chunks the positions are copied out,
quantised to 16 bits of the box (x / width and y / height on 0..65535): 4 bytes a
drawn particle a frame. The engines themselves are untouched.

Bounds: at most ``max_frames`` frames (the first at step 0, the last at the final
step), and at most ``max_bytes`` of positions. Above ``draw_limit`` particles, or when
the byte budget asks for it, only a sample is drawn: every m-th particle by index
(the initial positions are independent and uniform, so any fixed subset is a fair
sample); the counters always count every particle.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from partisim.errors import ParamsError
from partisim.sim.engines import get_engine, resolve_engine, thread_plan
from partisim.sim.params import SimParams
from partisim.sim.result import SimResult
from partisim.sim.run import finished_run
from partisim.sim.state import initial_state

__all__ = [
    "Recording",
    "record_frames",
    "frame_interval",
    "sample_stride",
    "DEFAULT_FRAMES",
    "MAX_FRAMES",
    "DRAW_LIMIT",
    "MAX_BYTES",
    "QUANT",
]

#: frames of a recording when nobody asks for another number
DEFAULT_FRAMES = 200
#: most frames anybody may ask for
MAX_FRAMES = 2000
#: above this many particles only a sample is drawn
DRAW_LIMIT = 5000
#: most bytes of quantised positions a recording holds
MAX_BYTES = 8_000_000
#: the largest quantised coordinate (0 is the lower wall, QUANT the upper one)
QUANT = 65535
#: bytes of one drawn particle in one frame (x and y as uint16)
BYTES_PER_POINT = 4


@dataclass(frozen=True)
class Recording:
    """Frames of one run and its result.

    ``positions[f, k]`` = (x, y) of drawn particle k at frame f, quantised (`QUANT`);
    ``steps[f]`` the step of frame f; ``particle_collisions[f]`` and
    ``wall_collisions[f]`` the counts up to that step. Drawn particles are the indices
    0, stride, 2*stride, ... (``stride`` 1: all of them)."""

    params: SimParams
    engine: str
    interval: int
    stride: int
    steps: list[int]
    particle_collisions: list[int]
    wall_collisions: list[int]
    positions: np.ndarray  # (frames, drawn, 2) uint16
    result: SimResult

    @property
    def frames(self) -> int:
        return len(self.steps)

    @property
    def drawn(self) -> int:
        return int(self.positions.shape[1])

    @property
    def sampled(self) -> bool:
        return self.drawn < self.params.particles

    def positions_in_box(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """x and y of the drawn particles at ``frame``, in the box's units."""
        q = self.positions[frame].astype(np.float64) / QUANT
        return q[:, 0] * self.params.width, q[:, 1] * self.params.height


def frame_interval(steps: int, max_frames: int) -> int:
    """k, the steps between frames: the smallest that keeps step 0, every k-th step and
    the final step within ``max_frames`` frames."""
    if max_frames < 2:
        raise ParamsError("frames debe ser al menos 2 (el estado inicial y el final)", field="frames")
    return max(1, math.ceil(steps / (max_frames - 1)))


def sample_stride(particles: int, frames: int, draw_limit: int = DRAW_LIMIT, max_bytes: int = MAX_BYTES) -> int:
    """m, so that drawing every m-th particle keeps within ``draw_limit`` particles and
    ``max_bytes`` of positions over ``frames`` frames."""
    by_bytes = max(1, max_bytes // (frames * BYTES_PER_POINT))
    drawn = max(1, min(particles, draw_limit, by_bytes))
    return math.ceil(particles / drawn)


def _quantise(x: np.ndarray, y: np.ndarray, size: tuple[float, float], stride: int) -> np.ndarray:
    width, height = size
    out = np.empty((len(range(0, x.shape[0], stride)), 2), dtype=np.uint16)
    out[:, 0] = np.rint(np.clip(x[::stride] / width, 0.0, 1.0) * QUANT)
    out[:, 1] = np.rint(np.clip(y[::stride] / height, 0.0, 1.0) * QUANT)
    return out


def record_frames(
    params: SimParams,
    engine: str = "cython",
    threads: int = 1,
    *,
    max_frames: int = DEFAULT_FRAMES,
    draw_limit: int = DRAW_LIMIT,
    max_bytes: int = MAX_BYTES,
) -> Recording:
    """Run ``params`` with ``engine`` in chunks of k steps and keep a frame after each.

    The counts and checksum of ``result`` are those of `simulate` on the same input;
    ``simulation_time`` counts the engine's time only, not the copying of frames."""
    if isinstance(max_frames, bool) or not isinstance(max_frames, int) or not 2 <= max_frames <= MAX_FRAMES:
        raise ParamsError(f"frames debe ser un entero entre 2 y {MAX_FRAMES}", field="frames")
    name = resolve_engine(engine)
    run = get_engine(name)
    plan = thread_plan(name, threads, params.particles)
    used = plan.used
    k = frame_interval(params.steps, max_frames)
    frames = math.ceil(params.steps / k) + 1
    stride = sample_stride(params.particles, frames, draw_limit, max_bytes)
    size = (params.width, params.height)
    state = initial_state(params)
    drawn = _quantise(state[0], state[1], size, stride)
    positions = np.empty((frames, drawn.shape[0], 2), dtype=np.uint16)
    positions[0] = drawn
    steps, pcs, wcs = [0], [0], [0]
    chunk = params.model_copy(update={"steps": k})
    done = pc = wc = 0
    elapsed = 0.0
    while done < params.steps:
        size_k = min(k, params.steps - done)
        part = chunk if size_k == k else params.model_copy(update={"steps": size_k})
        start = time.perf_counter()
        p, w = run(part, state, threads=used)
        elapsed += time.perf_counter() - start
        done += size_k
        pc += int(p)
        wc += int(w)
        positions[len(steps)] = _quantise(state[0], state[1], size, stride)
        steps.append(done)
        pcs.append(pc)
        wcs.append(wc)
    result = finished_run(name, params, state, (pc, wc), elapsed, plan)
    return Recording(
        params=params,
        engine=name,
        interval=k,
        stride=stride,
        steps=steps,
        particle_collisions=pcs,
        wall_collisions=wcs,
        positions=positions,
        result=result,
    )
