"""Measure collision rates and temperature on a run, to set against `partisim.sim.theory`.

The first half of the run lets the velocities relax from their uniform start; the
second half is measured. Both halves advance the same state arrays in place, so
the run is exactly the one `simulate` would do: same counts, same checksum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from partisim.errors import ParamsError
from partisim.sim.engines import get_engine, resolve_engine
from partisim.sim.params import SimParams
from partisim.sim.state import State, checksum, initial_state

__all__ = ["Measurement", "measure_run", "temperature_of"]


@dataclass(frozen=True)
class Measurement:
    """Rates over the measured (second) half of a run, and what the whole run produced."""

    engine: str
    steps: int  # the whole run
    measured_steps: int  # the second half
    measured_time: float  # measured_steps * dt
    collision_rate_measured: float  # pair collisions per unit time in the second half
    wall_rate_measured: float  # wall hits per unit time in the second half
    temperature: float  # kT to compare with: (time average of sqrt(kT) over the half)^2
    temperature_start: float  # kT when the measured half starts
    temperature_end: float  # kT at the end of the run
    particle_collisions: int  # whole run, as `partisim run` reports
    wall_collisions: int
    checksum: str  # of the final state, as `partisim run` reports


def temperature_of(state: State) -> float:
    """kT = <v^2>/2 (unit mass, two degrees of freedom)."""
    _, _, vx, vy = state
    return float((np.dot(vx, vx) + np.dot(vy, vy)) / (2.0 * vx.shape[0]))


def _chunks(total: int, parts: int) -> list[int]:
    """`total` steps in `parts` near-equal chunks (sizes differ by at most one), none empty."""
    parts = max(1, min(parts, total))
    base, extra = divmod(total, parts)
    return [base + (1 if k < extra else 0) for k in range(parts)]


def measure_run(params: SimParams, engine: str = "cython", samples: int = 10) -> Measurement:
    """Run `params.steps` steps; measure rates over the second half, sampling kT `samples` + 1 times.

    Collision and wall rates go as sqrt(kT), so the temperature to compare with is the
    square of the time-averaged sqrt(kT) (trapezoids between samples). With both
    restitutions at 1 the energy is conserved and all samples agree.
    """
    if params.steps < 2:
        raise ParamsError("para medir hacen falta al menos 2 pasos (se mide la segunda mitad)", field="steps")
    name = resolve_engine(engine)
    run = get_engine(name)
    state = initial_state(params)
    first = params.steps // 2
    second = params.steps - first
    pc, wc = run(params.model_copy(update={"steps": first}), state)
    temperatures = [temperature_of(state)]
    chunks = _chunks(second, samples)
    pc2 = wc2 = 0
    for size in chunks:
        p, w = run(params.model_copy(update={"steps": size}), state)
        pc2 += p
        wc2 += w
        temperatures.append(temperature_of(state))
    roots = [math.sqrt(t) for t in temperatures]
    mean_root = sum(size * (r0 + r1) / 2.0 for size, (r0, r1) in zip(chunks, pairwise(roots), strict=True)) / second
    measured_time = second * params.dt
    return Measurement(
        engine=name,
        steps=params.steps,
        measured_steps=second,
        measured_time=measured_time,
        collision_rate_measured=pc2 / measured_time,
        wall_rate_measured=wc2 / measured_time,
        temperature=mean_root * mean_root,
        temperature_start=temperatures[0],
        temperature_end=temperatures[-1],
        particle_collisions=int(pc + pc2),
        wall_collisions=int(wc + wc2),
        checksum=checksum(state),
    )
