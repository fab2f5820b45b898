# cython: language_level=3
"""Cython engine: the Python engine's lines on typed memoryviews.

Cell lists are rebuilt every step with a counting sort (O(n + cells), cells
capped at a few per particle by `grid_shape`), so memory stays O(n) whatever
the box size. No Python object is touched inside the step loop. Built with
-ffp-contract=off (see setup.py) so no fused multiply-add changes a bit.
"""

import numpy as np
cimport numpy as cnp
from libc.math cimport sqrt

cnp.import_array()

ctypedef cnp.int64_t idx_t


cdef inline idx_t _cell(double v, double size, idx_t count) noexcept nogil:
    cdef idx_t c = <idx_t>(v / size)
    if c < 0:
        return 0
    if c >= count:
        return count - 1
    return c


cdef void _build_cells(double[::1] x, double[::1] y, idx_t ncx, idx_t ncy,
                       double cw, double ch, idx_t[::1] cell, idx_t[::1] start,
                       idx_t[::1] members) noexcept nogil:
    """Counting sort of particle indices by cell; members of a cell ascend."""
    cdef idx_t n = x.shape[0], ncells = ncx * ncy, k, c
    for c in range(ncells + 1):
        start[c] = 0
    for k in range(n):
        c = _cell(y[k], ch, ncy) * ncx + _cell(x[k], cw, ncx)
        cell[k] = c
        start[c + 1] += 1
    for c in range(ncells):
        start[c + 1] += start[c]
    # Fill back to front so each cell keeps ascending indices, reusing `start`
    # as a cursor that ends where it began.
    for k in range(n - 1, -1, -1):
        c = cell[k]
        start[c + 1] -= 1
        members[start[c + 1]] = k
    # after the loop start[c+1] == first index of cell c; shift back
    for c in range(ncells):
        start[c] = start[c + 1]
    start[ncells] = n


cdef idx_t _neighbours(idx_t i, double[::1] x, double[::1] y, idx_t[::1] cell,
                       idx_t ncx, idx_t ncy, idx_t[::1] start, idx_t[::1] members,
                       double d2, idx_t[::1] out) noexcept nogil:
    """Write into `out` every j > i closer than sqrt(d2) to i, ascending; return the count."""
    cdef idx_t ci = cell[i], gx0 = ci % ncx, gy0 = ci // ncx
    cdef idx_t gx, gy, m, j, a, b, cnt = 0, t
    cdef double xi = x[i], yi = y[i], dx, dy
    for gy in range(gy0 - 1 if gy0 > 0 else 0, gy0 + 2 if gy0 + 2 < ncy else ncy):
        for gx in range(gx0 - 1 if gx0 > 0 else 0, gx0 + 2 if gx0 + 2 < ncx else ncx):
            a = start[gy * ncx + gx]
            b = start[gy * ncx + gx + 1]
            for m in range(a, b):
                j = members[m]
                if j > i:
                    dx = xi - x[j]
                    dy = yi - y[j]
                    if dx * dx + dy * dy < d2:
                        # insertion sort: neighbour lists are short
                        t = cnt
                        while t > 0 and out[t - 1] > j:
                            out[t] = out[t - 1]
                            t -= 1
                        out[t] = j
                        cnt += 1
    return cnt


def candidate_pairs(double[::1] x, double[::1] y, tuple grid, double d2):
    """Arrays (i, j), i < j, of every pair closer than sqrt(d2), ascending (for tests)."""
    cdef idx_t ncx = grid[0], ncy = grid[1], n = x.shape[0], i, k, cnt
    cdef double cw = grid[2], ch = grid[3]
    cell = np.empty(n, dtype=np.int64)
    start = np.empty(ncx * ncy + 1, dtype=np.int64)
    members = np.empty(n, dtype=np.int64)
    out = np.empty(max(n, 1), dtype=np.int64)
    _build_cells(x, y, ncx, ncy, cw, ch, cell, start, members)
    pi, pj = [], []
    for i in range(n):
        cnt = _neighbours(i, x, y, cell, ncx, ncy, start, members, d2, out)
        for k in range(cnt):
            pi.append(i)
            pj.append(out[k])
    return np.array(pi, dtype=np.int64), np.array(pj, dtype=np.int64)


def run_steps(double[::1] x, double[::1] y, double[::1] vx, double[::1] vy,
              idx_t steps, double dt, double r, double w, double h,
              double ew, double ep, tuple grid):
    """Advance the state in place; return (particle, wall) collisions."""
    cdef idx_t n = x.shape[0], s, k, i, j, q, cnt
    cdef idx_t ncx = grid[0], ncy = grid[1]
    cdef double cw = grid[2], ch = grid[3]
    cdef double d = 2.0 * r, d2 = d * d
    cdef double dx, dy, dist2, dist, nx, ny, vn, jn, c
    cdef long long particle_collisions = 0, wall_collisions = 0
    cdef bint hit
    # Candidates are decided on the post-wall positions, before any pair of the
    # step moves them: a snapshot (xs, ys) holds those positions.
    cdef double[::1] xs = np.empty(n, dtype=np.float64)
    cdef double[::1] ys = np.empty(n, dtype=np.float64)
    cdef idx_t[::1] cell = np.empty(n, dtype=np.int64)
    cdef idx_t[::1] start = np.empty(ncx * ncy + 1, dtype=np.int64)
    cdef idx_t[::1] members = np.empty(n, dtype=np.int64)
    cdef idx_t[::1] out = np.empty(max(n, 1), dtype=np.int64)

    with nogil:
        for s in range(steps):
            # 1. drift
            for k in range(n):
                x[k] = x[k] + vx[k] * dt
                y[k] = y[k] + vy[k] * dt
            # 2. walls
            for k in range(n):
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
                    wall_collisions += 1
                xs[k] = x[k]
                ys[k] = y[k]
            # 3. pairs in ascending (i, j) order, each with the current values
            _build_cells(xs, ys, ncx, ncy, cw, ch, cell, start, members)
            for i in range(n):
                cnt = _neighbours(i, xs, ys, cell, ncx, ncy, start, members, d2, out)
                for q in range(cnt):
                    j = out[q]
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
    return particle_collisions, wall_collisions


def run(p, state):
    """Advance `state` in place by p.steps steps; return (particle, wall) collisions."""
    from partisim.sim.partition import grid_shape
    x, y, vx, vy = state
    grid = tuple(grid_shape(p.width, p.height, p.radius, p.particles))
    return run_steps(x, y, vx, vy, p.steps, p.dt, p.radius, p.width, p.height,
                     p.wall_restitution, p.particle_restitution, grid)
