"""NumPy engine: vectorised drift, walls and broad phase; pairs resolved in order.

Pair resolution stays sequential because each collision may move particles that
a later pair of the same step reads (docs/modelo.md, phase 3).
"""

from __future__ import annotations

import math

import numpy as np

from partisim.sim.params import SimParams
from partisim.sim.partition import Grid, grid_shape
from partisim.sim.state import State

__all__ = ["run", "candidate_pairs", "max_threads", "threads_used"]

_OFFSETS = [(ox, oy) for oy in (-1, 0, 1) for ox in (-1, 0, 1)]


def candidate_pairs(x: np.ndarray, y: np.ndarray, grid: Grid, d2: float) -> tuple[np.ndarray, np.ndarray]:
    """Arrays (i, j), i < j, of every pair closer than sqrt(d2), ascending by (i, j)."""
    ncx, ncy, cw, ch = grid
    n = x.shape[0]
    cx = np.clip((x / cw).astype(np.int64), 0, ncx - 1)
    cy = np.clip((y / ch).astype(np.int64), 0, ncy - 1)
    cell = cy * ncx + cx
    order = np.argsort(cell, kind="stable")
    sorted_cells = cell[order]
    ids = np.arange(n)
    found_i, found_j = [], []
    for ox, oy in _OFFSETS:
        nx, ny = cx + ox, cy + oy
        ok = (nx >= 0) & (nx < ncx) & (ny >= 0) & (ny < ncy)
        src = ids[ok]
        target = ny[ok] * ncx + nx[ok]
        lo = np.searchsorted(sorted_cells, target, side="left")
        hi = np.searchsorted(sorted_cells, target, side="right")
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            continue
        # Expand each source into the run of particles of its neighbour cell.
        first = np.repeat(lo - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
        j = order[first + np.arange(total)]
        i = np.repeat(src, counts)
        keep = j > i
        i, j = i[keep], j[keep]
        dx = x[i] - x[j]
        dy = y[i] - y[j]
        close = dx * dx + dy * dy < d2
        found_i.append(i[close])
        found_j.append(j[close])
    if not found_i:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    i = np.concatenate(found_i)
    j = np.concatenate(found_j)
    sort = np.lexsort((j, i))
    return i[sort], j[sort]


def max_threads() -> int:
    return 1


def threads_used(threads: int) -> int:
    """Always one thread, whatever was asked."""
    return 1


def run(p: SimParams, state: State, threads: int = 1) -> tuple[int, int]:
    """Advance `state` in place by p.steps steps; return (particle, wall) collisions.

    Single-threaded: `threads` is accepted for the common interface and ignored.
    """
    x, y, vx, vy = state
    dt, r, w, h = p.dt, p.radius, p.width, p.height
    ew, ep = p.wall_restitution, p.particle_restitution
    d = 2.0 * r
    d2 = d * d
    grid = grid_shape(w, h, r, p.particles)
    particle_collisions = wall_collisions = 0
    sqrt = math.sqrt

    for _ in range(p.steps):
        # 1. drift
        x += vx * dt
        y += vy * dt
        # 2. walls (x and y are independent, so the per-particle order is kept)
        lo_x = x - r < 0
        hi_x = ~lo_x & (x + r > w)
        lo_y = y - r < 0
        hi_y = ~lo_y & (y + r > h)
        x[lo_x] = r
        x[hi_x] = w - r
        y[lo_y] = r
        y[hi_y] = h - r
        bx = lo_x | hi_x
        by = lo_y | hi_y
        vx[bx] = -(ew * vx[bx])
        vy[by] = -(ew * vy[by])
        wall_collisions += int(np.count_nonzero(bx | by))
        # 3. pairs, resolved one by one on Python floats (same IEEE doubles)
        pi, pj = candidate_pairs(x, y, grid, d2)
        if pi.size == 0:
            continue
        touched = np.unique(np.concatenate((pi, pj)))
        slot = {int(k): s for s, k in enumerate(touched.tolist())}
        xs, ys = x[touched].tolist(), y[touched].tolist()
        vxs, vys = vx[touched].tolist(), vy[touched].tolist()
        for gi, gj in zip(pi.tolist(), pj.tolist(), strict=True):
            a, b = slot[gi], slot[gj]
            dx = xs[a] - xs[b]
            dy = ys[a] - ys[b]
            dist2 = dx * dx + dy * dy
            if dist2 >= d2 or dist2 == 0:
                continue
            dist = sqrt(dist2)
            nx = dx / dist
            ny = dy / dist
            vn = (vxs[a] - vxs[b]) * nx + (vys[a] - vys[b]) * ny
            if vn >= 0:
                continue
            particle_collisions += 1
            jn = -(1.0 + ep) * vn * 0.5
            vxs[a] += jn * nx
            vys[a] += jn * ny
            vxs[b] -= jn * nx
            vys[b] -= jn * ny
            c = 0.5 * (d - dist)
            xs[a] += c * nx
            ys[a] += c * ny
            xs[b] -= c * nx
            ys[b] -= c * ny
        x[touched], y[touched] = xs, ys
        vx[touched], vy[touched] = vxs, vys
    return particle_collisions, wall_collisions
