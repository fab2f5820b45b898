# cython: language_level=3
"""Cython engine: the Python engine's lines in C, on particles kept in cell order, on N threads.

Layout. The engine works on its own copy of the state, permuted every step into
cell order (a stable counting sort by grid cell, out of place between two
buffers), with `ident[slot]` the original index of the particle in each slot.
Every pass then reads memory almost sequentially, whatever n. The caller's
arrays get the final state back in the original order.

Threads. The cells are cut into `parts` strips of whole rows (along the axis
with more cells), balanced by particle count; part t works on strip t in every
phase of a step, one OpenMP thread per part:
  A. drift, walls and the new cell of each particle        (per particle)
  B. group the particles by destination strip               (per chunk of slots)
  C. counting sort of each strip by cell into the other buffer  (per strip)
  D. candidate pairs: half-shell scan of the strip's cells; pairs inside the
     strip are joined in a union-find over slots; pairs reaching into the next
     strip ("cross" pairs) are kept apart                   (per strip)
  J. cross pairs are joined and the roots of their components marked
     "boundary"                                              (one thread)
  E. each strip resolves its own, unmarked components        (per strip)
  K. the boundary components are resolved                   (one thread)

Why the pair phase is exact (DESIGN.md §2, step 3). The candidate set is fixed
before any pair is resolved: phase D tests the exact predicate dx*dx + dy*dy <
d2 on the post-wall positions (fl(a - b) = -fl(b - a), so it does not matter
which particle is scanned first), on a grid whose cells are at least one
diameter wide, so it finds every such pair. Call two particles linked when they
form a candidate pair; the components of that graph partition the particles.
The sequential rule processes the list L of candidates in ascending
(i, j) order, and processing a pair reads and writes only its own two
particles (plus an integer counter). So the operations of two different
components touch disjoint memory and commute: running L equals running, for
each component C, the subsequence of L restricted to C, one component after
another in any order, or at the same time on different threads. Inside a
component we keep the subsequence itself: its pairs sorted by (i, j) of the
original indices. Which thread runs a component: a component with no cross
pair has all its particles in one strip (its links never leave the strip), so
that strip's thread runs it (phase E); a component with a cross pair may span
strips and runs on one thread after phase E (phase K). Every component runs
exactly once, on exactly one thread, in its canonical order, with the same
floating-point operations on the same values as the sequential rule; only the
integer collision counts are summed across threads. Drift and walls are per
particle, so their order is free as well. Hence the result is bit-identical for
every number of threads, and equal to the Python engine's.

Built with -ffp-contract=off and never -ffast-math (see setup.py), so no fused
multiply-add changes a bit. Without OpenMP (see setup.py) the same code runs
with one part on one thread. No Python object is touched inside the step loop.
"""

import numpy as np
cimport numpy as cnp
from cython.parallel cimport prange
from libc.math cimport sqrt
from libc.stdint cimport uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc

cnp.import_array()

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int partisim_openmp(void) { return 1; }
    static int partisim_num_procs(void) { return omp_get_num_procs(); }
    #else
    static int partisim_openmp(void) { return 0; }
    static int partisim_num_procs(void) { return 1; }
    #endif
    """
    int partisim_openmp() noexcept nogil
    int partisim_num_procs() noexcept nogil

cdef extern from *:
    """
    #include <stdlib.h>
    #if defined(__linux__)
    #include <sys/mman.h>
    #endif
    /* Big arrays on transparent huge pages where the system offers them (Linux, madvise
       mode): far fewer page faults and TLB misses on the scattered passes. */
    static void* partisim_alloc_big(size_t nbytes) {
    #if defined(__linux__) && defined(MADV_HUGEPAGE)
        const size_t huge = (size_t)2 << 20;
        if (nbytes >= 2 * huge) {
            void* p = NULL;
            size_t rounded = (nbytes + huge - 1) / huge * huge;
            if (posix_memalign(&p, huge, rounded) != 0)
                return NULL;
            madvise(p, rounded, MADV_HUGEPAGE);
            return p;
        }
    #endif
        return malloc(nbytes);
    }
    """
    void* partisim_alloc_big(size_t nbytes) noexcept nogil

ctypedef cnp.int32_t idx_t

# union-find marks, stored in place of a parent slot
cdef enum:
    ROOT = -1          # root of a component that stays inside one strip (so far)
    BOUNDARY = -2      # root of a component with a cross pair
    MAX_PARTS = 256    # the part x part histogram stays small
    SMALL_SORT = 48    # below this, insertion sort beats radix sort
    COARSE = 16384     # particles per bucket of _load and _store (their working set fits L2)

# keys are (root * n + lo) * n + hi < n**3, which must fit in 64 bits
MAX_PARTICLES = 1 << 21


cdef struct Pair:
    idx_t a, b         # slots
    idx_t r            # union-find root of a within its strip, after phase D


cdef struct Rec:
    uint64_t key       # sort key: canonical order within (and between) components
    idx_t i, j         # slots of the lower and of the higher original index


cdef struct Pairs:
    Pair* data
    Py_ssize_t size, cap


cdef struct Slots:
    idx_t* data
    Py_ssize_t size, cap


cdef struct Recs:
    Rec* data
    Rec* spare         # radix sort scratch, same capacity
    Py_ssize_t size, cap


cdef struct Part:
    idx_t* hist        # parts counters: particles of this chunk bound for each other strip
    Slots emigrants    # slots of this chunk bound for other strips
    Pairs inner, cross
    Recs recs, boundary
    long long walls, collisions
    int failed


cdef struct Engine:
    idx_t n, nf, ns    # particles; cells along the fast and the slow axis
    idx_t stride       # nf + 1: each row starts with an empty padding cell
    bint transposed    # the slow (strip) axis is x
    double inv_w, inv_h
    double dt, r, w, h, ew, ep, d, d2
    bint moving        # False: phase A only computes cells (candidate_pairs)
    int parts
    int cur            # which buffer holds the current state
    double* x[2]
    double* y[2]
    double* vx[2]
    double* vy[2]
    idx_t* ident[2]    # original index of the particle in each slot
    idx_t* cell[2]     # n: cell of each slot (after phase A for the current buffer)
    idx_t* start       # (ns + 1) * stride + 2: first slot of each (padded) cell
    idx_t* parent      # n: union-find over slots; ROOT / BOUNDARY at roots
    idx_t* row_lo      # parts + 1: first row of each strip
    idx_t* cell_lo     # parts + 1: first cell of each strip
    idx_t* chunk_lo    # parts + 1: slots of the current buffer handled by each part in A, C
    idx_t* base        # parts + 1: first slot of each strip in the new buffer
    idx_t* scratch     # n / COARSE + 2: counters of _load and _store
    Part* part


def openmp_available():
    """True when the engine was compiled with OpenMP (several threads possible)."""
    return bool(partisim_openmp())


def max_threads():
    """Threads worth using here: this machine's processors, 1 without OpenMP."""
    return max(1, partisim_num_procs()) if partisim_openmp() else 1


# ---------------------------------------------------------------------------
# growable buffers

cdef int _pairs_push(Pairs* p, idx_t a, idx_t b, idx_t r) noexcept nogil:
    cdef Py_ssize_t cap
    cdef Pair* q
    if p.size == p.cap:
        cap = max(64, 2 * p.cap)
        q = <Pair*> realloc(p.data, cap * sizeof(Pair))
        if q == NULL:
            return -1
        p.data = q
        p.cap = cap
    p.data[p.size].a = a
    p.data[p.size].b = b
    p.data[p.size].r = r
    p.size += 1
    return 0


cdef int _slots_push(Slots* p, idx_t v) noexcept nogil:
    cdef Py_ssize_t cap
    cdef idx_t* q
    if p.size == p.cap:
        cap = max(64, 2 * p.cap)
        q = <idx_t*> realloc(p.data, cap * sizeof(idx_t))
        if q == NULL:
            return -1
        p.data = q
        p.cap = cap
    p.data[p.size] = v
    p.size += 1
    return 0


cdef int _recs_reserve(Recs* p, Py_ssize_t need) noexcept nogil:
    cdef Py_ssize_t cap
    cdef Rec* q
    if need <= p.cap:
        return 0
    cap = max(64, max(need, 2 * p.cap))
    q = <Rec*> realloc(p.data, cap * sizeof(Rec))
    if q == NULL:
        return -1
    p.data = q
    q = <Rec*> realloc(p.spare, cap * sizeof(Rec))
    if q == NULL:
        return -1
    p.spare = q
    p.cap = cap
    return 0


cdef inline int _recs_push(Recs* p, uint64_t key, idx_t i, idx_t j) noexcept nogil:
    if p.size == p.cap and _recs_reserve(p, p.size + 1) < 0:
        return -1
    p.data[p.size].key = key
    p.data[p.size].i = i
    p.data[p.size].j = j
    p.size += 1
    return 0


cdef void _recs_sort(Recs* p) noexcept nogil:
    """Sort by key: insertion sort when short, else LSD radix sort on the varying bytes."""
    cdef Py_ssize_t m = p.size, k, t
    cdef Rec v
    cdef Rec* src = p.data
    cdef Rec* dst = p.spare
    cdef Rec* tmp
    cdef Py_ssize_t count[8][256]
    cdef Py_ssize_t run, c
    cdef int byte, shift
    if m <= SMALL_SORT:
        for k in range(1, m):
            v = src[k]
            t = k
            while t > 0 and src[t - 1].key > v.key:
                src[t] = src[t - 1]
                t -= 1
            src[t] = v
        return
    for byte in range(8):
        for c in range(256):
            count[byte][c] = 0
    for k in range(m):
        for byte in range(8):
            count[byte][(src[k].key >> (8 * byte)) & 255] += 1
    for byte in range(8):
        shift = 8 * byte
        if count[byte][(src[0].key >> shift) & 255] == m:
            continue  # every key has the same byte here: nothing to reorder
        run = 0
        for c in range(256):
            t = count[byte][c]
            count[byte][c] = run
            run += t
        for k in range(m):
            c = (src[k].key >> shift) & 255
            dst[count[byte][c]] = src[k]
            count[byte][c] += 1
        tmp = src
        src = dst
        dst = tmp
    if src != p.data:  # the sorted run ended in the scratch buffer: swap the roles
        p.spare = p.data
        p.data = src


# ---------------------------------------------------------------------------
# setup and teardown

cdef void _engine_free(Engine* e) noexcept:
    cdef int t, b
    for b in range(2):
        free(e.x[b]); free(e.y[b]); free(e.vx[b]); free(e.vy[b]); free(e.ident[b]); free(e.cell[b])
        e.x[b] = NULL; e.y[b] = NULL; e.vx[b] = NULL; e.vy[b] = NULL; e.ident[b] = NULL; e.cell[b] = NULL
    free(e.start); free(e.parent)
    free(e.row_lo); free(e.cell_lo); free(e.chunk_lo); free(e.base); free(e.scratch)
    e.start = NULL; e.parent = NULL; e.scratch = NULL
    e.row_lo = NULL; e.cell_lo = NULL; e.chunk_lo = NULL; e.base = NULL
    if e.part != NULL:
        for t in range(e.parts):
            free(e.part[t].hist)
            free(e.part[t].emigrants.data)
            free(e.part[t].inner.data)
            free(e.part[t].cross.data)
            free(e.part[t].recs.data)
            free(e.part[t].recs.spare)
            free(e.part[t].boundary.data)
            free(e.part[t].boundary.spare)
        free(e.part)
        e.part = NULL


cdef int _engine_init(Engine* e, idx_t n, tuple grid, int parts) except -1:
    """Allocate everything; the caller fills buffer 0 and `ident[0]`."""
    cdef int t, b
    cdef idx_t k
    cdef bint ok
    cdef idx_t ncx = grid[0], ncy = grid[1]
    cdef size_t m = max(n, 1)
    if n > MAX_PARTICLES:
        raise ValueError(f"el motor cython admite hasta {MAX_PARTICLES} partículas")
    e.n = n
    e.transposed = ncx > ncy
    e.nf = ncy if e.transposed else ncx
    e.ns = ncx if e.transposed else ncy
    e.stride = e.nf + 1
    e.inv_w = 1.0 / <double> grid[2]
    e.inv_h = 1.0 / <double> grid[3]
    e.parts = max(1, min(parts, MAX_PARTS))
    e.cur = 0
    e.part = NULL
    for b in range(2):
        e.x[b] = <double*> partisim_alloc_big(m * sizeof(double))
        e.y[b] = <double*> partisim_alloc_big(m * sizeof(double))
        e.vx[b] = <double*> partisim_alloc_big(m * sizeof(double))
        e.vy[b] = <double*> partisim_alloc_big(m * sizeof(double))
        e.ident[b] = <idx_t*> partisim_alloc_big(m * sizeof(idx_t))
        e.cell[b] = <idx_t*> partisim_alloc_big(m * sizeof(idx_t))
    # padding: an empty cell before each row and an empty row at the end, so the
    # half shell of every cell exists and the scan needs no edge tests
    e.start = <idx_t*> partisim_alloc_big(((<size_t> e.ns + 1) * e.stride + 2) * sizeof(idx_t))
    e.parent = <idx_t*> partisim_alloc_big(m * sizeof(idx_t))
    e.row_lo = <idx_t*> malloc((e.parts + 1) * sizeof(idx_t))
    e.cell_lo = <idx_t*> malloc((e.parts + 1) * sizeof(idx_t))
    e.chunk_lo = <idx_t*> malloc((e.parts + 1) * sizeof(idx_t))
    e.base = <idx_t*> malloc((e.parts + 1) * sizeof(idx_t))
    e.scratch = <idx_t*> malloc((n // COARSE + 2) * sizeof(idx_t))
    e.part = <Part*> calloc(e.parts, sizeof(Part))
    ok = (e.start != NULL and e.parent != NULL and e.row_lo != NULL
          and e.cell_lo != NULL and e.chunk_lo != NULL and e.base != NULL and e.scratch != NULL
          and e.part != NULL)
    for b in range(2):
        ok = (ok and e.x[b] != NULL and e.y[b] != NULL and e.vx[b] != NULL and e.vy[b] != NULL
              and e.ident[b] != NULL and e.cell[b] != NULL)
    if ok:
        for t in range(e.parts):
            e.part[t].hist = <idx_t*> malloc(e.parts * sizeof(idx_t))
            ok = ok and e.part[t].hist != NULL
    if not ok:
        _engine_free(e)
        raise MemoryError("sin memoria para el motor cython")
    # ends of the strips and chunks (_load cuts the ones in between)
    for t in range(e.parts + 1):
        e.row_lo[t] = <idx_t> ((<long long> e.ns * t) // e.parts)
        e.cell_lo[t] = e.row_lo[t] * e.stride
        e.chunk_lo[t] = <idx_t> ((<long long> n * t) // e.parts)
    e.cell_lo[e.parts] = (e.ns + 1) * e.stride  # the last strip owns the padding row
    e.start[0] = 0
    e.start[(e.ns + 1) * e.stride + 1] = n
    for k in range(n):
        e.parent[k] = ROOT
    return 0


# ---------------------------------------------------------------------------
# the phases of a step

cdef inline idx_t _clamp_cell(double u, idx_t count) noexcept nogil:
    cdef idx_t c = <idx_t> u
    if c < 0:
        return 0
    if c >= count:
        return count - 1
    return c


cdef inline int _strip_of(Engine* e, idx_t c) noexcept nogil:
    """The strip holding cell c: the last part whose first cell is <= c."""
    cdef int lo = 0, hi = e.parts - 1, mid
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if e.cell_lo[mid] <= c:
            lo = mid
        else:
            hi = mid - 1
    return lo


cdef inline bint _move(Engine* e, double* x, double* y, double* vx, double* vy) noexcept nogil:
    """DESIGN.md §2 steps 1-2 for one particle, on its values: drift, then walls.
    Returns True when it touched a wall."""
    cdef bint hit = False
    x[0] = x[0] + vx[0] * e.dt
    y[0] = y[0] + vy[0] * e.dt
    if x[0] - e.r < 0:
        x[0] = e.r
        vx[0] = -(e.ew * vx[0])
        hit = True
    elif x[0] + e.r > e.w:
        x[0] = e.w - e.r
        vx[0] = -(e.ew * vx[0])
        hit = True
    if y[0] - e.r < 0:
        y[0] = e.r
        vy[0] = -(e.ew * vy[0])
        hit = True
    elif y[0] + e.r > e.h:
        y[0] = e.h - e.r
        vy[0] = -(e.ew * vy[0])
        hit = True
    return hit


cdef inline idx_t _cell_of(Engine* e, double x, double y) noexcept nogil:
    """Padded cell index, slow axis major. Any rounding of x / cell_w keeps touching
    particles in the same or adjacent cells: cells are a hair wider than a diameter."""
    if e.transposed:
        return _clamp_cell(x * e.inv_w, e.ns) * e.stride + _clamp_cell(y * e.inv_h, e.nf) + 1
    return _clamp_cell(y * e.inv_h, e.ns) * e.stride + _clamp_cell(x * e.inv_w, e.nf) + 1


cdef void _phase_advance(Engine* e, int t) noexcept nogil:
    """A: for chunk t of the current buffer, where each particle lands after drift and walls.
    Only the cell is stored (phase C moves the particle, repeating the same arithmetic);
    cells of strip t are counted here, particles bound for other strips listed."""
    cdef double* x = e.x[e.cur]
    cdef double* y = e.y[e.cur]
    cdef double* vx = e.vx[e.cur]
    cdef double* vy = e.vy[e.cur]
    cdef double px, py, pvx, pvy
    cdef idx_t k, c
    cdef idx_t c0 = e.cell_lo[t], span = e.cell_lo[t + 1] - e.cell_lo[t]
    cdef idx_t* first = e.start + 1
    cdef idx_t* hist = e.part[t].hist
    cdef Slots* out = &e.part[t].emigrants
    cdef long long walls = 0
    cdef int u
    cdef Py_ssize_t q
    cdef Pairs* inner = &e.part[t].inner
    # the union-find back to all roots: only last step's pair ends were touched
    # (_reset_cross did the cross pairs)
    for q in range(inner.size):
        e.parent[inner.data[q].a] = ROOT
        e.parent[inner.data[q].b] = ROOT
    inner.size = 0
    out.size = 0
    for u in range(e.parts):
        hist[u] = 0
    for c in range(c0, c0 + span):
        first[c] = 0
    for k in range(e.chunk_lo[t], e.chunk_lo[t + 1]):
        px = x[k]
        py = y[k]
        if e.moving:
            pvx = vx[k]
            pvy = vy[k]
            if _move(e, &px, &py, &pvx, &pvy):
                walls += 1
        c = _cell_of(e, px, py)
        e.cell[e.cur][k] = c
        if <size_t> (c - c0) < <size_t> span:
            first[c] += 1
        else:
            hist[_strip_of(e, c)] += 1
            if _slots_push(out, k) < 0:
                e.part[t].failed = 1
                return
    e.part[t].walls = walls


cdef void _plan_strips(Engine* e) noexcept nogil:
    """Between A and C (one thread): the first slot of each strip in the new buffer."""
    cdef int t, u
    cdef idx_t run = 0, size
    for u in range(e.parts):
        e.base[u] = run
        size = e.chunk_lo[u + 1] - e.chunk_lo[u] - <idx_t> e.part[u].emigrants.size
        for t in range(e.parts):
            size += e.part[t].hist[u]
        run += size
    e.base[e.parts] = run


cdef void _place_run(Engine* e, idx_t* first, idx_t* slots, Py_ssize_t lo, Py_ssize_t hi,
                    idx_t c0, idx_t span) noexcept nogil:
    """Move the particles of slots[lo:hi] (of lo..hi-1 when slots is NULL) whose cell lies in
    [c0, c0 + span) to the next free slot of their cell in the other buffer, applying drift
    and walls on the way (the same arithmetic as phase A)."""
    cdef double* sx = e.x[e.cur]
    cdef double* sy = e.y[e.cur]
    cdef double* svx = e.vx[e.cur]
    cdef double* svy = e.vy[e.cur]
    cdef idx_t* sid = e.ident[e.cur]
    cdef idx_t* scell = e.cell[e.cur]
    cdef double* dx = e.x[1 - e.cur]
    cdef double* dy = e.y[1 - e.cur]
    cdef double* dvx = e.vx[1 - e.cur]
    cdef double* dvy = e.vy[1 - e.cur]
    cdef idx_t* did = e.ident[1 - e.cur]
    cdef idx_t* dcell = e.cell[1 - e.cur]
    cdef double px, py, pvx, pvy
    cdef Py_ssize_t k
    cdef idx_t s, c, pos
    for k in range(lo, hi):
        s = slots[k] if slots != NULL else <idx_t> k
        c = scell[s]
        if <size_t> (c - c0) >= <size_t> span:
            continue
        pos = first[c]
        first[c] = pos + 1
        px = sx[s]
        py = sy[s]
        pvx = svx[s]
        pvy = svy[s]
        if e.moving:
            _move(e, &px, &py, &pvx, &pvy)
        dx[pos] = px
        dy[pos] = py
        dvx[pos] = pvx
        dvy[pos] = pvy
        did[pos] = sid[s]
        dcell[pos] = c


cdef void _phase_place(Engine* e, int u) noexcept nogil:
    """C: counting sort of strip u by cell into the other buffer: its particles from chunk u,
    then those listed by the other parts. Afterwards cell c holds slots [start[c], start[c+1])."""
    cdef idx_t c0 = e.cell_lo[u], span = e.cell_lo[u + 1] - e.cell_lo[u]
    cdef idx_t c, cnt, run
    cdef idx_t* first = e.start + 1  # first[c]: count of cell c, then its cursor, then its end
    cdef Slots* inbox
    cdef int t
    cdef Py_ssize_t q
    for t in range(e.parts):
        if t != u:
            inbox = &e.part[t].emigrants
            for q in range(inbox.size):
                c = e.cell[e.cur][inbox.data[q]]
                if <size_t> (c - c0) < <size_t> span:
                    first[c] += 1
    run = e.base[u]
    for c in range(c0, c0 + span):
        cnt = first[c]
        first[c] = run
        run += cnt
    _place_run(e, first, NULL, e.chunk_lo[u], e.chunk_lo[u + 1], c0, span)
    for t in range(e.parts):
        if t != u:
            _place_run(e, first, e.part[t].emigrants.data, 0, e.part[t].emigrants.size, c0, span)


cdef inline idx_t _find(idx_t* parent, idx_t v) noexcept nogil:
    """Root of v, halving the path (writes: only one thread may own these slots)."""
    cdef idx_t p, g
    while parent[v] >= 0:
        p = parent[v]
        g = parent[p]
        if g < 0:
            return p
        parent[v] = g
        v = g
    return v


cdef inline idx_t _root(idx_t* parent, idx_t v) noexcept nogil:
    """Root of v without writing (threads may share these slots)."""
    while parent[v] >= 0:
        v = parent[v]
    return v


cdef inline void _union(idx_t* parent, idx_t a, idx_t b) noexcept nogil:
    a = _find(parent, a)
    b = _find(parent, b)
    if a < b:
        parent[b] = a
    elif b < a:
        parent[a] = b


cdef int _record_pair(Engine* e, Part* p, idx_t m, idx_t m2, bint cross) noexcept nogil:
    """A candidate pair found by the scan: joined in the strip's union-find, or kept apart."""
    if cross:
        return _pairs_push(&p.cross, m, m2, 0)
    _union(e.parent, m, m2)
    return _pairs_push(&p.inner, m, m2, 0)


cdef void _phase_scan(Engine* e, int u) noexcept nogil:
    """D: candidate pairs of strip u on the post-wall positions. Each particle is tested
    against the particles after it in its own cell and in the next cell along the fast
    axis (one run of slots), then the three nearest cells of the next row (another run):
    a half shell, so every nearby pair is tested once. Padding cells make both runs exist
    for every cell, and one loop covers both, so the branches are few."""
    cdef Part* p = &e.part[u]
    cdef double* x = e.x[e.cur]
    cdef double* y = e.y[e.cur]
    cdef idx_t* cell = e.cell[e.cur]
    cdef idx_t* start = e.start
    cdef idx_t stride = e.stride, cross_from = e.cell_lo[u + 1] - stride
    cdef idx_t m, m2, c, len1, total, q, jump
    cdef double x0, y0, dx, dy, d2 = e.d2
    cdef Py_ssize_t t
    p.inner.size = 0
    p.cross.size = 0
    for m in range(e.base[u], e.base[u + 1]):
        x0 = x[m]
        y0 = y[m]
        c = cell[m]
        len1 = start[c + 2] - (m + 1)
        # slots of cells c+stride-1 .. c+stride+1 (contiguous), numbered on after the first run
        jump = start[c + stride - 1] - len1
        total = start[c + stride + 2] - jump
        for q in range(total):
            # m + 1 + q in the first run, jump + q in the second, without a branch
            m2 = m + 1 + q + (((len1 - 1 - q) >> 31) & (jump - m - 1))
            dx = x0 - x[m2]
            dy = y0 - y[m2]
            if dx * dx + dy * dy < d2:
                # a pair with the next row is a cross pair when that row is the next strip's
                if _record_pair(e, p, m, m2, q >= len1 and c >= cross_from) < 0:
                    p.failed = 1
                    return
    # the strip's own components are final now: remember each pair's root
    for t in range(p.inner.size):
        p.inner.data[t].r = _find(e.parent, p.inner.data[t].a)


cdef void _phase_join(Engine* e) noexcept nogil:
    """J (one thread): join the components linked by cross pairs, then mark their roots."""
    cdef int u
    cdef Py_ssize_t q
    cdef Pairs* c
    for u in range(e.parts):
        c = &e.part[u].cross
        for q in range(c.size):
            _union(e.parent, c.data[q].a, c.data[q].b)
    for u in range(e.parts):
        c = &e.part[u].cross
        for q in range(c.size):
            e.parent[_find(e.parent, c.data[q].a)] = BOUNDARY


cdef inline bint _collide(double* x, double* y, double* vx, double* vy, idx_t i, idx_t j,
                          double d, double d2, double ep) noexcept nogil:
    """DESIGN.md §2 step 3 for one candidate pair, with the current values."""
    cdef double dx, dy, dist2, dist, nx, ny, vn, jn, c
    dx = x[i] - x[j]
    dy = y[i] - y[j]
    dist2 = dx * dx + dy * dy
    if dist2 >= d2 or dist2 == 0:
        return False
    dist = sqrt(dist2)
    nx = dx / dist
    ny = dy / dist
    vn = (vx[i] - vx[j]) * nx + (vy[i] - vy[j]) * ny
    if vn >= 0:
        return False
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
    return True


cdef long long _resolve(Engine* e, Recs* recs) noexcept nogil:
    """Sort the records and resolve them in that order; return the collisions."""
    cdef double* x = e.x[e.cur]
    cdef double* y = e.y[e.cur]
    cdef double* vx = e.vx[e.cur]
    cdef double* vy = e.vy[e.cur]
    cdef long long hits = 0
    cdef Py_ssize_t q
    _recs_sort(recs)
    for q in range(recs.size):
        if _collide(x, y, vx, vy, recs.data[q].i, recs.data[q].j, e.d, e.d2, e.ep):
            hits += 1
    return hits


cdef inline int _push_canonical(Engine* e, Recs* recs, uint64_t root, idx_t a, idx_t b) noexcept nogil:
    """Record pair (a, b) of slots as (lower original index, higher), keyed (root, i, j)."""
    cdef idx_t* ident = e.ident[e.cur]
    cdef uint64_t n = <uint64_t> e.n
    cdef idx_t ia = ident[a], ib = ident[b]
    if ia < ib:
        return _recs_push(recs, (root * n + <uint64_t> ia) * n + <uint64_t> ib, a, b)
    return _recs_push(recs, (root * n + <uint64_t> ib) * n + <uint64_t> ia, b, a)


cdef void _phase_resolve(Engine* e, int u) noexcept nogil:
    """E: strip u resolves its unmarked components, each in ascending (i, j) order;
    pairs of marked components are passed on to phase K."""
    cdef Part* p = &e.part[u]
    cdef Py_ssize_t q
    cdef idx_t r
    p.recs.size = 0
    p.boundary.size = 0
    p.collisions = 0
    if _recs_reserve(&p.recs, p.inner.size) < 0:
        p.failed = 1
        return
    for q in range(p.inner.size):
        r = _root(e.parent, p.inner.data[q].r)
        if e.parent[r] == BOUNDARY:
            if _push_canonical(e, &p.boundary, 0, p.inner.data[q].a, p.inner.data[q].b) < 0:
                p.failed = 1
                return
        elif _push_canonical(e, &p.recs, <uint64_t> r, p.inner.data[q].a, p.inner.data[q].b) < 0:
            p.failed = 1
            return
    p.collisions = _resolve(e, &p.recs)


cdef int _phase_boundary(Engine* e, long long* hits) noexcept nogil:
    """K (one thread): every pair of the marked components, in ascending (i, j) order."""
    cdef Recs* all_ = &e.part[0].recs
    cdef Part* p
    cdef Py_ssize_t q, total = 0
    cdef int u
    for u in range(e.parts):
        total += e.part[u].boundary.size + e.part[u].cross.size
    if total == 0:
        return 0
    all_.size = 0
    if _recs_reserve(all_, total) < 0:
        return -1
    for u in range(e.parts):
        p = &e.part[u]
        for q in range(p.boundary.size):
            all_.data[all_.size] = p.boundary.data[q]
            all_.size += 1
        for q in range(p.cross.size):
            _push_canonical(e, all_, 0, p.cross.data[q].a, p.cross.data[q].b)
    hits[0] += _resolve(e, all_)
    return 0


cdef void _reset_cross(Engine* e) noexcept nogil:
    """End of a step (one thread): the ends of cross pairs back to roots."""
    cdef int u
    cdef Py_ssize_t q
    cdef Pairs* c
    for u in range(e.parts):
        c = &e.part[u].cross
        for q in range(c.size):
            e.parent[c.data[q].a] = ROOT
            e.parent[c.data[q].b] = ROOT
        c.size = 0


cdef void _rebalance(Engine* e) noexcept nogil:
    """After a step: strips of about n / parts particles each, for the next step."""
    cdef int u
    cdef idx_t lo, hi, mid, target
    cdef idx_t stride = e.stride
    for u in range(1, e.parts):
        target = <idx_t> ((<long long> e.n * u) // e.parts)
        # first row whose first slot is >= target, not before the previous strip
        lo = e.row_lo[u - 1]
        hi = e.ns
        while lo < hi:
            mid = (lo + hi) // 2
            if e.start[mid * stride] >= target:
                hi = mid
            else:
                lo = mid + 1
        e.row_lo[u] = lo
    for u in range(1, e.parts):
        e.cell_lo[u] = e.row_lo[u] * stride
    for u in range(e.parts + 1):
        e.chunk_lo[u] = e.start[e.cell_lo[u]]


cdef int _broad_phase(Engine* e) noexcept nogil:
    """Phases A to D, then J: the state sits in cell order in buffer `cur`, its candidate
    pairs are in the parts' lists and the union-find is complete. Returns -1 on no memory."""
    cdef int t, nt = e.parts, u
    for t in prange(nt, num_threads=nt, schedule="static", chunksize=1):
        _phase_advance(e, t)
    for u in range(nt):
        if e.part[u].failed:
            return -1
    _plan_strips(e)
    for t in prange(nt, num_threads=nt, schedule="static", chunksize=1):
        _phase_place(e, t)
    e.cur = 1 - e.cur
    for t in prange(nt, num_threads=nt, schedule="static", chunksize=1):
        _phase_scan(e, t)
    for u in range(nt):
        if e.part[u].failed:
            return -1
    if nt > 1:
        _phase_join(e)
    return 0


cdef int _step(Engine* e, long long* pc, long long* wc) noexcept nogil:
    cdef int t, nt = e.parts, u
    if _broad_phase(e) < 0:
        return -1
    for u in range(nt):
        wc[0] += e.part[u].walls
    for t in prange(nt, num_threads=nt, schedule="static", chunksize=1):
        _phase_resolve(e, t)
    for u in range(nt):
        if e.part[u].failed:
            return -1
        pc[0] += e.part[u].collisions
    if nt > 1 and _phase_boundary(e, pc) < 0:
        return -1
    _reset_cross(e)
    _rebalance(e)
    return 0


cdef void _load(Engine* e, double* x, double* y, double* vx, double* vy) noexcept nogil:
    """Copy the state into buffer 0 grouped by bands of rows of about COARSE particles (a
    counting sort with few buckets, so it stays in cache; the first step then only reorders
    inside bands), and start each chunk at the band of its strip's first row."""
    cdef idx_t* band_start = e.scratch
    cdef double* slow = x if e.transposed else y
    cdef double inv = e.inv_w if e.transposed else e.inv_h
    cdef long long bands = e.n // COARSE + 1
    cdef idx_t k, band, pos, run, cnt
    cdef int u
    for band in range(bands + 1):
        band_start[band] = 0
    for k in range(e.n):
        band_start[_clamp_cell(slow[k] * inv, e.ns) * bands // e.ns] += 1
    run = 0
    for band in range(bands + 1):
        cnt = band_start[band]
        band_start[band] = run
        run += cnt
    for u in range(1, e.parts):
        e.chunk_lo[u] = band_start[e.row_lo[u] * bands // e.ns]
    for k in range(e.n):
        band = _clamp_cell(slow[k] * inv, e.ns) * bands // e.ns
        pos = band_start[band]
        band_start[band] = pos + 1
        e.x[0][pos] = x[k]
        e.y[0][pos] = y[k]
        e.vx[0][pos] = vx[k]
        e.vy[0][pos] = vy[k]
        e.ident[0][pos] = k


cdef void _store(Engine* e, double* x, double* y, double* vx, double* vy) noexcept nogil:
    """The final state back in the original order, in two passes that stay in cache: group
    by blocks of COARSE original indices into the free buffer, then write each block."""
    cdef int b = e.cur, t = 1 - e.cur
    cdef idx_t* block_start = e.scratch
    cdef idx_t blocks = e.n // COARSE + 1
    cdef idx_t s, k, block, pos, run, cnt
    for block in range(blocks):
        block_start[block] = 0
    for s in range(e.n):
        block_start[e.ident[b][s] // COARSE] += 1
    run = 0
    for block in range(blocks):
        cnt = block_start[block]
        block_start[block] = run
        run += cnt
    for s in range(e.n):
        block = e.ident[b][s] // COARSE
        pos = block_start[block]
        block_start[block] = pos + 1
        e.x[t][pos] = e.x[b][s]
        e.y[t][pos] = e.y[b][s]
        e.vx[t][pos] = e.vx[b][s]
        e.vy[t][pos] = e.vy[b][s]
        e.ident[t][pos] = e.ident[b][s]
    for s in range(e.n):
        k = e.ident[t][s]
        x[k] = e.x[t][s]
        y[k] = e.y[t][s]
        vx[k] = e.vx[t][s]
        vy[k] = e.vy[t][s]


def _parts_for(threads):
    """Parts (= threads) a run uses: `threads` with OpenMP, else 1."""
    threads = int(threads)
    if threads < 1:
        raise ValueError("threads debe ser >= 1")
    return min(threads, MAX_PARTS) if partisim_openmp() else 1


def threads_used(threads):
    """Threads a run with `threads` requested actually uses (1 without OpenMP)."""
    return _parts_for(threads)


def candidate_pairs(double[::1] x, double[::1] y, tuple grid, double d2, threads=1):
    """Arrays (i, j), i < j, of every pair closer than sqrt(d2), ascending (for tests)."""
    cdef Engine e
    cdef idx_t n = x.shape[0]
    cdef Py_ssize_t q, m = 0
    cdef int rc = 0, u
    cdef Recs* all_
    cdef Pairs* lists[2]
    cdef idx_t* ident
    cdef cnp.int64_t[::1] pv, qv
    if n == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    _engine_init(&e, n, grid, _parts_for(threads))
    e.moving = False
    e.d2 = d2
    try:
        with nogil:
            _load(&e, &x[0], &y[0], &x[0], &y[0])
            rc = _broad_phase(&e)
            all_ = &e.part[0].recs
            all_.size = 0
            ident = e.ident[e.cur]
            for u in range(e.parts):
                lists[0] = &e.part[u].inner
                lists[1] = &e.part[u].cross
                for q in range(lists[0].size + lists[1].size):
                    if rc == 0:
                        if q < lists[0].size:
                            rc = _push_canonical(&e, all_, 0, lists[0].data[q].a, lists[0].data[q].b)
                        else:
                            rc = _push_canonical(&e, all_, 0, lists[1].data[q - lists[0].size].a,
                                                 lists[1].data[q - lists[0].size].b)
            if rc == 0:
                _recs_sort(all_)
        if rc < 0:
            raise MemoryError("sin memoria para el motor cython")
        pi = np.empty(all_.size, dtype=np.int64)
        pj = np.empty(all_.size, dtype=np.int64)
        pv = pi
        qv = pj
        for q in range(all_.size):
            pv[q] = ident[all_.data[q].i]
            qv[q] = ident[all_.data[q].j]
        return pi, pj
    finally:
        _engine_free(&e)


def run_steps(double[::1] x, double[::1] y, double[::1] vx, double[::1] vy,
              long long steps, double dt, double r, double w, double h,
              double ew, double ep, tuple grid, threads=1):
    """Advance the state in place on `threads` threads; return (particle, wall) collisions."""
    cdef Engine e
    cdef idx_t n = x.shape[0]
    cdef long long s, pc = 0, wc = 0
    cdef int rc = 0
    if n == 0:
        return 0, 0
    _engine_init(&e, n, grid, _parts_for(threads))
    e.moving = True
    e.dt = dt
    e.r = r
    e.w = w
    e.h = h
    e.ew = ew
    e.ep = ep
    e.d = 2.0 * r
    e.d2 = e.d * e.d
    try:
        with nogil:
            _load(&e, &x[0], &y[0], &vx[0], &vy[0])
            for s in range(steps):
                rc = _step(&e, &pc, &wc)
                if rc < 0:
                    break
            if rc == 0:
                _store(&e, &x[0], &y[0], &vx[0], &vy[0])
        if rc < 0:
            raise MemoryError("sin memoria para el motor cython")
    finally:
        _engine_free(&e)
    return pc, wc


def run(p, state, threads=1):
    """Advance `state` in place by p.steps steps; return (particle, wall) collisions."""
    from partisim.sim.partition import grid_shape
    x, y, vx, vy = state
    grid = tuple(grid_shape(p.width, p.height, p.radius, p.particles))
    return run_steps(x, y, vx, vy, p.steps, p.dt, p.radius, p.width, p.height,
                     p.wall_restitution, p.particle_restitution, grid, threads)
