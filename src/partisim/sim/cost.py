"""What a simulation will cost before it runs: a pessimistic estimate of its seconds of
work, and whether it is *tiny*, so far below its deadline that the executors may skip
the per-task machinery that exists to enforce deadlines.

Tiny attempts are grouped: several in one Dask task run in the Dask worker's thread
(`serve.executors.dask`), several in one ``POST /execute/batch`` to an HTTP worker
(`serve.executors.http`). For a simulation of milliseconds, a Dask task, an HTTP request
or a child hand-off each cost more than the simulation itself.
"""

from __future__ import annotations

from partisim.sim.params import SimParams

__all__ = ["estimate", "tiny", "TINY_MAX_S", "TINY_SHARE"]

#: an attempt is tiny when its estimated work is at most this long and at most
#: `TINY_SHARE` of its timeout
TINY_MAX_S = 0.05
TINY_SHARE = 0.01
#: the estimate: a fixed cost (initial state, checksum) plus per step and per
#: particle-step; pessimistic: the python engine, the slowest, on a slow core, with
#: every particle colliding (tests/on_dask checks it against real runs)
_FIXED_S = 2e-3
_STEP_S = 1e-4
_PARTICLE_STEP_S = 2e-5


def estimate(params: SimParams) -> float:
    """Pessimistic seconds of work of one simulation, whatever its engine."""
    return _FIXED_S + params.steps * _STEP_S + params.particles * params.steps * _PARTICLE_STEP_S


def tiny(params: SimParams, timeout: float) -> bool:
    """Whether an attempt is so far below its deadline that it may be grouped with
    others (and, on Dask, run in the worker's thread instead of a killable child)."""
    work = estimate(params)
    return work <= TINY_MAX_S and work <= timeout * TINY_SHARE
