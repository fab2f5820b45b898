# cython: language_level=3
"""Cython engine: the Python engine's lines on typed memoryviews.

Broad phase, rebuilt every step on the post-wall positions:
1. counting sort of the particles by grid cell (cells capped at a few per
   particle by `grid_shape`, so memory stays O(n) whatever the box size);
2. a scan of the cells in memory order over a half shell of neighbours, on
   coordinates copied into cell order, so the scan reads memory sequentially;
3. the pairs found are bucketed by their lower index (another counting sort)
   and each bucket sorted, giving the ascending (i, j) order of docs/modelo.md.
No Python object is touched inside the step loop. Built with -ffp-contract=off
(see setup.py) so no fused multiply-add changes a bit.
"""

import numpy as np
cimport numpy as cnp
from libc.math cimport sqrt
from libc.stdlib cimport free, malloc, realloc

cnp.import_array()

ctypedef cnp.int32_t idx_t


cdef struct Workspace:
    idx_t n, ncx, ncy
    double cw, ch, d2
    idx_t* cell       # n: cell of each particle
    idx_t* start      # ncells + 1: first member of each cell
    idx_t* members    # n: particle indices in cell order (ascending inside a cell)
    double* sx        # n: snapshot x in cell order
    double* sy        # n: snapshot y in cell order
    idx_t* first      # n + 1: first pair of each lower index
    idx_t* pi         # capacity: lower index of each candidate pair
    idx_t* pj         # capacity: higher index
    idx_t* sorted_j   # capacity: higher indices grouped by lower index, ascending
    Py_ssize_t capacity
    Py_ssize_t npairs


cdef int _ws_init(Workspace* ws, idx_t n, tuple grid, double d2) except -1:
    ws.n = n
    ws.ncx = grid[0]
    ws.ncy = grid[1]
    ws.cw = grid[2]
    ws.ch = grid[3]
    ws.d2 = d2
    ws.capacity = max(64, 2 * n)
    ws.npairs = 0
    ws.cell = <idx_t*> malloc(max(n, 1) * sizeof(idx_t))
    ws.start = <idx_t*> malloc((ws.ncx * ws.ncy + 1) * sizeof(idx_t))
    ws.members = <idx_t*> malloc(max(n, 1) * sizeof(idx_t))
    ws.sx = <double*> malloc(max(n, 1) * sizeof(double))
    ws.sy = <double*> malloc(max(n, 1) * sizeof(double))
    ws.first = <idx_t*> malloc((n + 1) * sizeof(idx_t))
    ws.pi = <idx_t*> malloc(ws.capacity * sizeof(idx_t))
    ws.pj = <idx_t*> malloc(ws.capacity * sizeof(idx_t))
    ws.sorted_j = <idx_t*> malloc(ws.capacity * sizeof(idx_t))
    if not (ws.cell and ws.start and ws.members and ws.sx and ws.sy and ws.first
            and ws.pi and ws.pj and ws.sorted_j):
        _ws_free(ws)
        raise MemoryError("sin memoria para el motor cython")
    return 0


cdef void _ws_free(Workspace* ws) noexcept nogil:
    free(ws.cell); free(ws.start); free(ws.members); free(ws.sx); free(ws.sy)
    free(ws.first); free(ws.pi); free(ws.pj); free(ws.sorted_j)
    ws.cell = NULL; ws.start = NULL; ws.members = NULL; ws.sx = NULL; ws.sy = NULL
    ws.first = NULL; ws.pi = NULL; ws.pj = NULL; ws.sorted_j = NULL


cdef inline idx_t _cell(double v, double size, idx_t count) noexcept nogil:
    cdef idx_t c = <idx_t>(v / size)
    if c < 0:
        return 0
    if c >= count:
        return count - 1
    return c


cdef int _add_pair(Workspace* ws, idx_t a, idx_t b) noexcept nogil:
    """Record pair (min, max); returns -1 when memory runs out."""
    cdef Py_ssize_t cap
    cdef idx_t* p
    if ws.npairs == ws.capacity:
        cap = ws.capacity * 2
        p = <idx_t*> realloc(ws.pi, cap * sizeof(idx_t))
        if p == NULL:
            return -1
        ws.pi = p
        p = <idx_t*> realloc(ws.pj, cap * sizeof(idx_t))
        if p == NULL:
            return -1
        ws.pj = p
        p = <idx_t*> realloc(ws.sorted_j, cap * sizeof(idx_t))
        if p == NULL:
            return -1
        ws.sorted_j = p
        ws.capacity = cap
    if a < b:
        ws.pi[ws.npairs] = a
        ws.pj[ws.npairs] = b
    else:
        ws.pi[ws.npairs] = b
        ws.pj[ws.npairs] = a
    ws.npairs += 1
    return 0


cdef int _scan(Workspace* ws, idx_t a, idx_t b, idx_t a2, idx_t b2) noexcept nogil:
    """Pairs between cell runs [a, b) and [a2, b2) (the same run when a == a2)."""
    cdef idx_t m, m2, lo
    cdef double x0, y0, dx, dy
    for m in range(a, b):
        x0 = ws.sx[m]
        y0 = ws.sy[m]
        lo = m + 1 if a == a2 else a2
        for m2 in range(lo, b2):
            dx = x0 - ws.sx[m2]
            dy = y0 - ws.sy[m2]
            if dx * dx + dy * dy < ws.d2:
                if _add_pair(ws, ws.members[m], ws.members[m2]) < 0:
                    return -1
    return 0


cdef int _broad_phase(Workspace* ws, double* x, double* y) noexcept nogil:
    """Fill ws.first / ws.sorted_j with every candidate pair, ascending by (i, j)."""
    cdef idx_t n = ws.n, ncx = ws.ncx, ncy = ws.ncy, ncells = ws.ncx * ws.ncy
    cdef idx_t k, c, m, gx, gy, a, b, t, j, lo, hi
    cdef Py_ssize_t q
    # 1. counting sort by cell; filling back to front keeps each cell ascending
    for c in range(ncells + 1):
        ws.start[c] = 0
    for k in range(n):
        c = _cell(y[k], ws.ch, ncy) * ncx + _cell(x[k], ws.cw, ncx)
        ws.cell[k] = c
        ws.start[c + 1] += 1
    for c in range(ncells):
        ws.start[c + 1] += ws.start[c]
    for k in range(n - 1, -1, -1):
        c = ws.cell[k]
        ws.start[c + 1] -= 1
        ws.members[ws.start[c + 1]] = k
    for c in range(ncells):
        ws.start[c] = ws.start[c + 1]
    ws.start[ncells] = n
    for m in range(n):
        k = ws.members[m]
        ws.sx[m] = x[k]
        ws.sy[m] = y[k]
    # 2. half-shell scan: each cell with itself, its right neighbour and the
    # three cells of the next row, so every pair of nearby cells is seen once
    ws.npairs = 0
    for gy in range(ncy):
        for gx in range(ncx):
            c = gy * ncx + gx
            a = ws.start[c]
            b = ws.start[c + 1]
            if a == b:
                continue
            if _scan(ws, a, b, a, b) < 0:
                return -1
            if gx + 1 < ncx:
                if _scan(ws, a, b, ws.start[c + 1], ws.start[c + 2]) < 0:
                    return -1
            if gy + 1 < ncy:
                lo = c + ncx - 1 if gx > 0 else c + ncx
                hi = c + ncx + 2 if gx + 1 < ncx else c + ncx + 1
                # cells lo..hi-1 of the next row are contiguous in memory
                if _scan(ws, a, b, ws.start[lo], ws.start[hi]) < 0:
                    return -1
    # 3. bucket by lower index, then sort each bucket (they are short)
    for k in range(n + 1):
        ws.first[k] = 0
    for q in range(ws.npairs):
        ws.first[ws.pi[q] + 1] += 1
    for k in range(n):
        ws.first[k + 1] += ws.first[k]
    for q in range(ws.npairs - 1, -1, -1):
        k = ws.pi[q]
        ws.first[k + 1] -= 1
        ws.sorted_j[ws.first[k + 1]] = ws.pj[q]
    for k in range(n):
        ws.first[k] = ws.first[k + 1]
    ws.first[n] = <idx_t> ws.npairs
    for k in range(n):
        a = ws.first[k]
        b = ws.first[k + 1]
        for m in range(a + 1, b):
            j = ws.sorted_j[m]
            t = m
            while t > a and ws.sorted_j[t - 1] > j:
                ws.sorted_j[t] = ws.sorted_j[t - 1]
                t -= 1
            ws.sorted_j[t] = j
    return 0


def candidate_pairs(double[::1] x, double[::1] y, tuple grid, double d2):
    """Arrays (i, j), i < j, of every pair closer than sqrt(d2), ascending (for tests)."""
    cdef Workspace ws
    cdef idx_t n = x.shape[0], i
    cdef Py_ssize_t m
    cdef int rc
    _ws_init(&ws, n, grid, d2)
    try:
        with nogil:
            rc = _broad_phase(&ws, &x[0], &y[0]) if n > 0 else 0
        if rc < 0:
            raise MemoryError("sin memoria para el motor cython")
        pi = np.empty(ws.npairs, dtype=np.int64)
        pj = np.empty(ws.npairs, dtype=np.int64)
        for i in range(n):
            for m in range(ws.first[i], ws.first[i + 1]):
                pi[m] = i
                pj[m] = ws.sorted_j[m]
        return pi, pj
    finally:
        _ws_free(&ws)


def run_steps(double[::1] x, double[::1] y, double[::1] vx, double[::1] vy,
              long long steps, double dt, double r, double w, double h,
              double ew, double ep, tuple grid):
    """Advance the state in place; return (particle, wall) collisions."""
    cdef idx_t n = x.shape[0], k, i, j
    cdef long long s
    cdef Py_ssize_t q
    cdef double d = 2.0 * r, d2 = d * d
    cdef double dx, dy, dist2, dist, nx, ny, vn, jn, c
    cdef long long particle_collisions = 0, wall_collisions = 0
    cdef bint hit
    cdef int rc = 0
    cdef Workspace ws
    _ws_init(&ws, n, grid, d2)
    try:
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
                # 3. pairs: candidates from the post-wall positions, resolved in
                # ascending (i, j) order, each with the current values
                rc = _broad_phase(&ws, &x[0], &y[0])
                if rc < 0:
                    break
                for i in range(n):
                    for q in range(ws.first[i], ws.first[i + 1]):
                        j = ws.sorted_j[q]
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
        if rc < 0:
            raise MemoryError("sin memoria para el motor cython")
    finally:
        _ws_free(&ws)
    return particle_collisions, wall_collisions


def run(p, state):
    """Advance `state` in place by p.steps steps; return (particle, wall) collisions."""
    from partisim.sim.partition import grid_shape
    x, y, vx, vy = state
    grid = tuple(grid_shape(p.width, p.height, p.radius, p.particles))
    return run_steps(x, y, vx, vy, p.steps, p.dt, p.radius, p.width, p.height,
                     p.wall_restitution, p.particle_restitution, grid)
