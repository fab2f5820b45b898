"""Pure-Python engine: plain lists and floats, a grid broad phase (O(n) a step).

This is the reference translation of docs/modelo.md; the NumPy and Cython engines
repeat these lines with other tools and must agree with them bit for bit.
"""

from __future__ import annotations

import math

from partisim.sim.params import SimParams
from partisim.sim.partition import candidate_pairs, grid_shape
from partisim.sim.state import State

__all__ = ["run", "walls", "max_threads", "threads_used"]


def walls(
    x: list[float], y: list[float], vx: list[float], vy: list[float], r: float, w: float, h: float, ew: float
) -> int:
    """Step 2: put every particle back inside the box; return how many touched a wall."""
    touched = 0
    for k in range(len(x)):
        hit = False
        if x[k] - r < 0:
            x[k] = r
            vx[k] = -(ew * vx[k])
            hit = True
        elif x[k] + r > w:
            x[k] = w - r
            vx[k] = -(ew * vx[k])
            hit = True
        if y[k] - r < 0:
            y[k] = r
            vy[k] = -(ew * vy[k])
            hit = True
        elif y[k] + r > h:
            y[k] = h - r
            vy[k] = -(ew * vy[k])
            hit = True
        if hit:
            touched += 1
    return touched


def max_threads() -> int:
    return 1


def threads_used(threads: int) -> int:
    """Always one thread, whatever was asked."""
    return 1


def run(p: SimParams, state: State, threads: int = 1) -> tuple[int, int]:
    """Advance `state` in place by p.steps steps; return (particle, wall) collisions.

    Single-threaded: `threads` is accepted for the common interface and ignored.
    """
    xa, ya, vxa, vya = state
    x, y, vx, vy = xa.tolist(), ya.tolist(), vxa.tolist(), vya.tolist()
    n, dt, r = p.particles, p.dt, p.radius
    w, h = p.width, p.height
    ew, ep = p.wall_restitution, p.particle_restitution
    d = 2.0 * r
    d2 = d * d
    grid = grid_shape(w, h, r, n)
    particle_collisions = wall_collisions = 0
    sqrt = math.sqrt

    for _ in range(p.steps):
        # 1. drift
        for k in range(n):
            x[k] = x[k] + vx[k] * dt
            y[k] = y[k] + vy[k] * dt
        # 2. walls
        wall_collisions += walls(x, y, vx, vy, r, w, h, ew)
        # 3. pairs: candidates from the post-wall positions, resolved in order
        for i, j in candidate_pairs(x, y, grid, d2):
            dx = x[i] - x[j]
            dy = y[i] - y[j]
            dist2 = dx * dx + dy * dy
            if dist2 >= d2 or dist2 == 0:
                continue
            dist = sqrt(dist2)
            nx = dx / dist
            ny = dy / dist
            vn = (vx[i] - vx[j]) * nx + (vy[i] - vy[j]) * ny
            if vn >= 0:
                continue
            particle_collisions += 1
            jn = -(1.0 + ep) * vn * 0.5
            vx[i] += jn * nx
            vy[i] += jn * ny
            vx[j] -= jn * nx
            vy[j] -= jn * ny
            c = 0.5 * (d - dist)
            x[i] += c * nx
            y[i] += c * ny
            x[j] -= c * nx
            y[j] -= c * ny

    xa[:], ya[:], vxa[:], vya[:] = x, y, vx, vy
    return particle_collisions, wall_collisions
