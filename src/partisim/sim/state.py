"""Initial state and the observables computed from a final state (docs/modelo.md).

The state is four float64 arrays x, y, vx, vy; every engine starts from the
arrays built here and hands back arrays that the functions below digest, so
the checksum and the energy are computed the same way for every engine.
"""

from __future__ import annotations

import hashlib

import numpy as np

from partisim.sim.params import SimParams

__all__ = ["State", "initial_state", "checksum", "kinetic_energy"]

State = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def initial_state(p: SimParams) -> State:
    """Positions uniform inside the walls, velocities uniform in [-max, max)."""
    rng = np.random.default_rng(p.seed)
    n, r = p.particles, p.radius
    u = rng.random((n, 2))
    x = r + u[:, 0] * (p.width - 2 * r)
    y = r + u[:, 1] * (p.height - 2 * r)
    w = rng.random((n, 2))
    vx = (w[:, 0] - 0.5) * (2 * p.max_speed)
    vy = (w[:, 1] - 0.5) * (2 * p.max_speed)
    return (np.ascontiguousarray(x), np.ascontiguousarray(y), np.ascontiguousarray(vx), np.ascontiguousarray(vy))


def checksum(state: State) -> str:
    """sha256 of the (n, 4) little-endian float64 array [x, y, vx, vy], C order."""
    table = np.column_stack(state).astype("<f8", copy=False)
    return hashlib.sha256(np.ascontiguousarray(table).tobytes()).hexdigest()


def kinetic_energy(state: State) -> float:
    """0.5 * sum(v^2) with unit mass."""
    _, _, vx, vy = state
    return float(0.5 * (np.dot(vx, vx) + np.dot(vy, vy)))
