# cython: language_level=3
"""Cython engine: the Python engine's lines in C, on particles kept in cell order, on N threads.

Layout. The engine works on its own copy of the state, in cell order (a
counting sort by grid cell into a second buffer), with `ident[slot]` the
original index of the particle in each slot, so every pass reads memory almost
sequentially whatever n. The caller's arrays get the final state back in the
original order.

Neighbour list with a skin. A rebuild sorts the particles by cell and lists
every pair closer than `reach` = diameter + skin (cells are at least `reach`
wide, so the half-shell scan of neighbouring cells finds them all). Each step
then tests only the listed pairs with the exact predicate of docs/modelo.md, as
long as no particle has moved more than `slack` (just under skin / 2) from
where it stood at the rebuild; otherwise the step rebuilds first. A pair closer
than a diameter now was closer than diameter + 2 * slack at the rebuild
(triangle inequality; the rounding margin is worked out at `_set_skin`), so it
is listed: the list holds every candidate, and the predicate decides. Should
clustered particles make the list too long, that rebuild narrows the skin
(down to none: then the list is exactly the candidates and every step
rebuilds), and later rebuilds widen it again.

Threads. The cells are cut into `parts` strips of whole rows (along the axis
with more cells), balanced by particle count at each rebuild; in cell order a
strip's particles are a run of slots, fixed until the next rebuild. Part t
works on strip t in every phase, one OpenMP thread per part:
  A. drift and walls of the strip's particles, and how far each has moved
  R. (rebuild only) cells, counting sort into the other buffer, scan for the
     list: pairs inside the strip, and pairs reaching into the next strip
     ("cross" pairs), kept apart
  T. the candidates: listed pairs passing the exact predicate on the
     post-wall positions; inner ones are joined in a union-find over slots
     (both ends are the strip's own slots, so no other thread touches them)
  J. (one thread) cross candidates are joined, and the roots of their
     components marked "boundary"
  E. each strip resolves its own unmarked components
  K. (one thread) the boundary components are resolved, together, in
     ascending (i, j) order

Why the pair phase is exact (docs/modelo.md, step 3). The candidate set is fixed
before any pair is resolved (phase T, on the post-wall positions, with
fl(a - b) = -fl(b - a), so it does not matter which particle comes first).
Call two particles linked when they form a candidate pair; the components of
that graph partition the particles. The sequential rule processes the list L of
candidates in ascending (i, j) order, and processing a pair reads and writes
only its own two particles (plus an integer counter). So the operations of two
different components touch disjoint memory and commute: running L equals
running, for each component C, the subsequence of L restricted to C, one
component after another in any order, or at the same time on different
threads. Inside a component we keep that subsequence: its pairs sorted by the
original (i, j). A component without cross candidates has all its particles in
one strip (its links never leave the strip), so that strip's thread runs it
(phase E); a component with a cross candidate may span strips and runs on one
thread after phase E (phase K). Every component runs exactly once, on one
thread, in its canonical order, with the same floating-point operations on the
same values as the sequential rule; only integer counts are summed across
threads. Drift and walls are per particle, so their order is free as well.
Hence the result is bit-identical for every number of threads, and equal to
the Python engine's.

Built with -ffp-contract=off and never -ffast-math (see setup.py), so no fused
multiply-add changes a bit. Without OpenMP (see setup.py) the same code runs
with one part on one thread. No Python object is touched inside the step loop.
"""

import numpy as np
cimport numpy as cnp

from partisim.sim.partition import CELLS_PER_PARTICLE

from cython.parallel cimport prange
from libc.math cimport sqrt
from libc.stdint cimport uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from posix.types cimport pid_t
from posix.unistd cimport getpid

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
    /* How this engine was built, for the environment of every result (issue 20):
       the compiler's own version text, the flags setup.py passed, the OpenMP date. */
    #if defined(__clang__)
    static const char* partisim_compiler(void) { return "clang " __VERSION__; }
    #elif defined(__GNUC__)
    static const char* partisim_compiler(void) { return "gcc " __VERSION__; }
    #elif defined(_MSC_VER)
    #define PARTISIM_STR2(x) #x
    #define PARTISIM_STR(x) PARTISIM_STR2(x)
    static const char* partisim_compiler(void) { return "msvc " PARTISIM_STR(_MSC_VER); }
    #else
    static const char* partisim_compiler(void) { return ""; }
    #endif
    #ifdef PARTISIM_CFLAGS
    static const char* partisim_cflags(void) { return PARTISIM_CFLAGS; }
    #else
    static const char* partisim_cflags(void) { return ""; }
    #endif
    #ifdef _OPENMP
    static long partisim_openmp_version(void) { return (long)_OPENMP; }
    #else
    static long partisim_openmp_version(void) { return 0; }
    #endif
    """
    const char* partisim_compiler() noexcept nogil
    const char* partisim_cflags() noexcept nogil
    long partisim_openmp_version() noexcept nogil

cdef extern from *:
    """
    #include <stdlib.h>
    #include <string.h>
    #if defined(__linux__)
    #include <sys/mman.h>
    #endif
    /* Big arrays: their own mapping on Linux, with transparent huge pages where the
       system offers them (madvise mode): far fewer page faults and TLB misses on the
       scattered passes, and the memory goes back to the system when freed (a big
       malloc block may stay in the heap). A 64-byte header keeps the mapping size,
       0 for a plain malloc block. */
    #define PARTISIM_HEADER 64
    static void* partisim_alloc_big(size_t nbytes) {
        char* p;
        size_t total = nbytes + PARTISIM_HEADER;
    #if defined(__linux__) && defined(MAP_ANONYMOUS)
        if (total >= ((size_t)1 << 20)) {
            void* m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED)
                return NULL;
    #if defined(MADV_HUGEPAGE)
            madvise(m, total, MADV_HUGEPAGE);
    #endif
            memcpy(m, &total, sizeof total);
            return (char*)m + PARTISIM_HEADER;
        }
    #endif
        p = (char*)malloc(total);
        if (p == NULL)
            return NULL;
        total = 0;
        memcpy(p, &total, sizeof total);
        return p + PARTISIM_HEADER;
    }
    static void partisim_free_big(void* ptr) {
        char* p;
        size_t total;
        if (ptr == NULL)
            return;
        p = (char*)ptr - PARTISIM_HEADER;
        memcpy(&total, p, sizeof total);
    #if defined(__linux__) && defined(MAP_ANONYMOUS)
        if (total != 0) {
            munmap(p, total);
            return;
        }
    #endif
        free(p);
    }
    """
    void* partisim_alloc_big(size_t nbytes) noexcept nogil
    void partisim_free_big(void* ptr) noexcept nogil

ctypedef cnp.int32_t idx_t

cdef enum:
    ROOT = -1          # union-find: root of a component that stays inside one strip (so far)
    BOUNDARY = -2      # union-find: root of a component with a cross candidate
    MAX_PARTS = 256    # the per-part histograms stay small
    SMALL_SORT = 48    # below this, insertion sort beats radix sort
    COARSE = 16384     # particles per bucket of _load and _store (their working set fits L2)
    LIST_BUDGET = 8    # listed pairs per particle before the skin narrows

# keys are (root * n + lo) * n + hi < n**3, which must fit in 64 bits
MAX_PARTICLES = 1 << 21
# skin aimed at, in diameters; larger when the grid's cells (capped at a few per
# particle) are wider anyway
SKIN = 0.5
# cells a hair wider than the reach, so rounding in x / cell_w never puts two
# particles within reach two cells apart (as in partition.grid_shape)
CELL_MARGIN = 1e-6


cdef struct Pair:
    idx_t a, b         # slots
    idx_t r            # union-find root of a within its strip, after phase T


cdef struct Pairs:
    Pair* data
    Py_ssize_t size, cap


cdef struct Slots:
    idx_t* data
    Py_ssize_t size, cap


cdef struct Rec:
    uint64_t key       # sort key: canonical order within (and between) components
    idx_t i, j         # slots of the lower and of the higher original index


cdef struct Recs:
    Rec* data
    Rec* spare         # radix sort scratch, same capacity
    Py_ssize_t size, cap


cdef struct Part:
    idx_t* hist        # parts counters: particles of this chunk bound for each other strip
    Slots emigrants    # slots of this chunk bound for other strips
    Pairs near, near_cross  # the list: pairs within reach at the last rebuild
    Pairs inner, cross      # this step's candidates
    Recs recs, boundary
    long long walls, collisions, far
    int failed
    int over           # the list outgrew its budget (phase R4)


cdef struct Engine:
    idx_t n, nf, ns    # particles; cells along the fast and the slow axis
    idx_t stride       # nf + 1: each row starts with an empty padding cell
    bint transposed    # the slow (strip) axis is x
    double inv_w, inv_h
    double dt, r, w, h, ew, ep, d, d2
    double skin_max    # the widest skin the cells allow
    double skin        # the skin of the current list (narrower where the list grew too long)
    double reach2      # pairs closer than sqrt(reach2) at a rebuild are listed
    double slack2      # squared distance a particle may move before a rebuild; < 0: every step
    bint moving        # False: no drift or walls (candidate_pairs)
    bint listed        # the list matches the current layout
    int parts
    int cur            # which buffer holds the current state
    double* x[2]
    double* y[2]
    double* vx[2]
    double* vy[2]
    idx_t* ident[2]    # original index of the particle in each slot
    double* xr         # n: position of each slot's particle at the last rebuild
    double* yr
    idx_t* cell        # n: cell of each slot of the current buffer, during a rebuild
    idx_t* start       # (ns + 1) * stride + 2: first slot of each (padded) cell
    idx_t* parent      # n: union-find over slots; ROOT / BOUNDARY at roots
    idx_t* row_lo      # parts + 1: first row of each strip of the next rebuild
    idx_t* cell_lo     # parts + 1: first cell of each strip of the next rebuild
    idx_t* chunk_lo    # parts + 1: slots of the current buffer each part sorts at a rebuild
    idx_t* base        # parts + 1: first slot of each strip in the current layout
    idx_t buckets      # n / COARSE + 1: buckets of _load and _store
    idx_t* bucket      # parts * buckets: each part's counters, then cursors, per bucket
    double* io[4]      # the caller's x, y, vx, vy during _load and _store
    Part* part


# GNU OpenMP keeps its worker threads in a pool that a fork does not copy: a child
# process that starts a parallel region after its parent ran one waits forever. The
# process that first ran several threads is remembered; in any other process that
# inherited the mark (a forked child) the engine runs on one thread, with the same results.
cdef pid_t _threads_pid = 0


cdef bint _threads_allowed() noexcept nogil:
    return partisim_openmp() and (_threads_pid == 0 or _threads_pid == getpid())


def openmp_available():
    """True when the engine was compiled with OpenMP (several threads possible)."""
    return bool(partisim_openmp())


def build_info():
    """(compiler version, compile flags, OpenMP version date or 0) of this build."""
    return (
        partisim_compiler().decode("utf-8", "replace"),
        partisim_cflags().decode("utf-8", "replace"),
        int(partisim_openmp_version()),
    )


def max_threads():
    """Threads worth using here: this machine's processors; 1 without OpenMP, or in a process
    forked from one that already ran several threads."""
    return max(1, partisim_num_procs()) if _threads_allowed() else 1


def threads_used(threads):
    """Threads a run with `threads` requested actually uses (1 where max_threads() is 1)."""
    threads = int(threads)
    if threads < 1:
        raise ValueError("threads debe ser >= 1")
    return min(threads, MAX_PARTS) if _threads_allowed() else 1


cdef int _claim_threads(int parts) noexcept:
    """Called before a run on `parts` threads: remember this process as the pool's owner."""
    global _threads_pid
    if parts > 1 and _threads_pid == 0:
        _threads_pid = getpid()
    return parts


# ---------------------------------------------------------------------------
# growable buffers

cdef int _pairs_push(Pairs* p, idx_t a, idx_t b) noexcept nogil:
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
    """Sort by key: insertion sort when short, else LSD radix sort on the bytes that vary."""
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
        partisim_free_big(e.x[b]); partisim_free_big(e.y[b]); partisim_free_big(e.vx[b])
        partisim_free_big(e.vy[b]); partisim_free_big(e.ident[b])
        e.x[b] = NULL; e.y[b] = NULL; e.vx[b] = NULL; e.vy[b] = NULL; e.ident[b] = NULL
    partisim_free_big(e.xr); partisim_free_big(e.yr); partisim_free_big(e.cell)
    partisim_free_big(e.start); partisim_free_big(e.parent)
    free(e.row_lo); free(e.cell_lo); free(e.chunk_lo); free(e.base); free(e.bucket)
    e.xr = NULL; e.yr = NULL; e.cell = NULL; e.start = NULL; e.parent = NULL
    e.row_lo = NULL; e.cell_lo = NULL; e.chunk_lo = NULL; e.base = NULL; e.bucket = NULL
    if e.part != NULL:
        for t in range(e.parts):
            free(e.part[t].hist)
            free(e.part[t].emigrants.data)
            free(e.part[t].near.data)
            free(e.part[t].near_cross.data)
            free(e.part[t].inner.data)
            free(e.part[t].cross.data)
            free(e.part[t].recs.data)
            free(e.part[t].recs.spare)
            free(e.part[t].boundary.data)
            free(e.part[t].boundary.spare)
        free(e.part)
        e.part = NULL


cdef int _engine_init(Engine* e, idx_t n, idx_t ncx, idx_t ncy, double cw, double ch, int parts) except -1:
    """Allocate everything for n particles on an ncx x ncy grid of cw x ch cells; the
    caller sets the physics and calls _load."""
    cdef int t, b
    cdef bint ok
    cdef size_t m = max(n, 1)
    if n > MAX_PARTICLES:
        raise ValueError(f"el motor cython admite hasta {MAX_PARTICLES} partículas")
    e.n = n
    e.transposed = ncx > ncy
    e.nf = ncy if e.transposed else ncx
    e.ns = ncx if e.transposed else ncy
    e.stride = e.nf + 1
    e.inv_w = 1.0 / cw
    e.inv_h = 1.0 / ch
    e.parts = max(1, min(parts, MAX_PARTS))
    e.cur = 0
    e.listed = False
    e.part = NULL
    for b in range(2):
        e.x[b] = <double*> partisim_alloc_big(m * sizeof(double))
        e.y[b] = <double*> partisim_alloc_big(m * sizeof(double))
        e.vx[b] = <double*> partisim_alloc_big(m * sizeof(double))
        e.vy[b] = <double*> partisim_alloc_big(m * sizeof(double))
        e.ident[b] = <idx_t*> partisim_alloc_big(m * sizeof(idx_t))
    e.xr = <double*> partisim_alloc_big(m * sizeof(double))
    e.yr = <double*> partisim_alloc_big(m * sizeof(double))
    e.cell = <idx_t*> partisim_alloc_big(m * sizeof(idx_t))
    # padding: an empty cell before each row and an empty row at the end, so the
    # half shell of every cell exists and the scan needs no edge tests
    e.start = <idx_t*> partisim_alloc_big(((<size_t> e.ns + 1) * e.stride + 2) * sizeof(idx_t))
    e.parent = <idx_t*> partisim_alloc_big(m * sizeof(idx_t))
    e.row_lo = <idx_t*> malloc((e.parts + 1) * sizeof(idx_t))
    e.cell_lo = <idx_t*> malloc((e.parts + 1) * sizeof(idx_t))
    e.chunk_lo = <idx_t*> malloc((e.parts + 1) * sizeof(idx_t))
    e.base = <idx_t*> malloc((e.parts + 1) * sizeof(idx_t))
    e.buckets = n // COARSE + 1
    e.bucket = <idx_t*> malloc(e.parts * e.buckets * sizeof(idx_t))
    e.part = <Part*> calloc(e.parts, sizeof(Part))
    ok = (e.xr != NULL and e.yr != NULL and e.cell != NULL and e.start != NULL and e.parent != NULL
          and e.row_lo != NULL and e.cell_lo != NULL and e.chunk_lo != NULL and e.base != NULL
          and e.bucket != NULL and e.part != NULL)
    for b in range(2):
        ok = (ok and e.x[b] != NULL and e.y[b] != NULL and e.vx[b] != NULL and e.vy[b] != NULL
              and e.ident[b] != NULL)
    if ok:
        for t in range(e.parts):
            e.part[t].hist = <idx_t*> malloc(e.parts * sizeof(idx_t))
            ok = ok and e.part[t].hist != NULL
    if not ok:
        _engine_free(e)
        raise MemoryError("sin memoria para el motor cython")
    # strips of equal rows for the first rebuild (_load sets the chunks)
    for t in range(e.parts + 1):
        e.row_lo[t] = <idx_t> ((<long long> e.ns * t) // e.parts)
        e.cell_lo[t] = e.row_lo[t] * e.stride
    e.cell_lo[e.parts] = (e.ns + 1) * e.stride  # the last strip owns the padding row
    e.start[0] = 0
    e.start[(e.ns + 1) * e.stride + 1] = n
    return 0


# ---------------------------------------------------------------------------
# phase A: drift and walls

cdef inline bint _move(Engine* e, double* x, double* y, double* vx, double* vy) noexcept nogil:
    """docs/modelo.md steps 1-2 for one particle: drift, then walls. True when it touched a wall."""
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


cdef void _phase_move(Engine* e, int t) noexcept nogil:
    """A: drift and walls of strip t's particles, in place; count those that moved beyond
    the slack since the last rebuild (a NaN counts too)."""
    cdef Part* p = &e.part[t]
    cdef double* x = e.x[e.cur]
    cdef double* y = e.y[e.cur]
    cdef double* vx = e.vx[e.cur]
    cdef double* vy = e.vy[e.cur]
    cdef double px, py, pvx, pvy, dx, dy, slack2 = e.slack2
    cdef long long walls = 0, far = 0
    cdef idx_t k
    cdef Py_ssize_t q
    # the union-find back to all roots: only last step's candidates touched it
    # (_reset_cross did the cross ones)
    for q in range(p.inner.size):
        e.parent[p.inner.data[q].a] = ROOT
        e.parent[p.inner.data[q].b] = ROOT
    p.inner.size = 0
    for k in range(e.base[t], e.base[t + 1]):
        px = x[k]
        py = y[k]
        if e.moving:
            pvx = vx[k]
            pvy = vy[k]
            if _move(e, &px, &py, &pvx, &pvy):
                walls += 1
                vx[k] = pvx  # velocities change only at a wall: store them only then
                vy[k] = pvy
            x[k] = px
            y[k] = py
        if e.listed:
            dx = px - e.xr[k]
            dy = py - e.yr[k]
            if not (dx * dx + dy * dy <= slack2):
                far += 1
    p.walls = walls
    p.far = far


# ---------------------------------------------------------------------------
# phase R: rebuild (sort by cell, then list the pairs within reach)

cdef inline idx_t _clamp_cell(double u, idx_t count) noexcept nogil:
    cdef idx_t c = <idx_t> u
    if c < 0:
        return 0
    if c >= count:
        return count - 1
    return c


cdef inline idx_t _cell_of(Engine* e, double x, double y) noexcept nogil:
    """Padded cell index, slow axis major. Any rounding of x / cell_w keeps particles within
    reach in the same or adjacent cells: cells are a hair wider than the reach."""
    if e.transposed:
        return _clamp_cell(x * e.inv_w, e.ns) * e.stride + _clamp_cell(y * e.inv_h, e.nf) + 1
    return _clamp_cell(y * e.inv_h, e.ns) * e.stride + _clamp_cell(x * e.inv_w, e.nf) + 1


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


cdef void _rebalance(Engine* e) noexcept nogil:
    """Before a rebuild: strips of about n / parts particles each, from the current layout."""
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
        e.cell_lo[u] = lo * stride
    for u in range(e.parts + 1):
        e.chunk_lo[u] = e.start[e.cell_lo[u]]


cdef void _phase_count(Engine* e, int t) noexcept nogil:
    """R1: the cell of each particle of chunk t; cells of strip t are counted here,
    particles bound for other strips listed."""
    cdef double* x = e.x[e.cur]
    cdef double* y = e.y[e.cur]
    cdef idx_t k, c
    cdef idx_t c0 = e.cell_lo[t], span = e.cell_lo[t + 1] - e.cell_lo[t]
    cdef idx_t* first = e.start + 1
    cdef idx_t* hist = e.part[t].hist
    cdef Slots* out = &e.part[t].emigrants
    cdef int u
    out.size = 0
    for u in range(e.parts):
        hist[u] = 0
    for c in range(c0, c0 + span):
        first[c] = 0
    for k in range(e.chunk_lo[t], e.chunk_lo[t + 1]):
        c = _cell_of(e, x[k], y[k])
        e.cell[k] = c
        if <size_t> (c - c0) < <size_t> span:
            first[c] += 1
        else:
            hist[_strip_of(e, c)] += 1
            if _slots_push(out, k) < 0:
                e.part[t].failed = 1
                return


cdef void _plan_strips(Engine* e) noexcept nogil:
    """R2 (one thread): the first slot of each strip in the new layout."""
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
    [c0, c0 + span) to the next free slot of their cell in the other buffer; their
    positions there become the reference for the slack."""
    cdef double* sx = e.x[e.cur]
    cdef double* sy = e.y[e.cur]
    cdef double* svx = e.vx[e.cur]
    cdef double* svy = e.vy[e.cur]
    cdef idx_t* sid = e.ident[e.cur]
    cdef double* dx = e.x[1 - e.cur]
    cdef double* dy = e.y[1 - e.cur]
    cdef double* dvx = e.vx[1 - e.cur]
    cdef double* dvy = e.vy[1 - e.cur]
    cdef idx_t* did = e.ident[1 - e.cur]
    cdef Py_ssize_t k
    cdef idx_t s, c, pos
    for k in range(lo, hi):
        s = slots[k] if slots != NULL else <idx_t> k
        c = e.cell[s]
        if <size_t> (c - c0) >= <size_t> span:
            continue
        pos = first[c]
        first[c] = pos + 1
        dx[pos] = sx[s]
        dy[pos] = sy[s]
        dvx[pos] = svx[s]
        dvy[pos] = svy[s]
        did[pos] = sid[s]
        e.xr[pos] = sx[s]
        e.yr[pos] = sy[s]


cdef void _phase_place(Engine* e, int u) noexcept nogil:
    """R3: counting sort of strip u by cell into the other buffer: its particles from chunk u,
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
                c = e.cell[inbox.data[q]]
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


cdef void _phase_list(Engine* e, int u) noexcept nogil:
    """R4: the pairs of strip u within reach. Each particle is tested against the particles
    after it in its own cell and in the next cell along the fast axis (one run of slots),
    then the three nearest cells of the next row (another run): a half shell, so every
    nearby pair is tested once. Padding cells make both runs exist for every cell, and one
    loop covers both, so the branches are few. Pairs with the next row are cross pairs
    when that row belongs to the next strip."""
    cdef Part* p = &e.part[u]
    cdef double* x = e.x[e.cur]
    cdef double* y = e.y[e.cur]
    cdef idx_t* start = e.start
    cdef idx_t stride = e.stride, cross_from = e.cell_lo[u + 1] - stride
    cdef idx_t m, m2, c, len1, total, q, jump
    cdef double x0, y0, dx, dy, reach2 = e.reach2
    cdef int rc
    # clustered particles would list far too many pairs with a wide skin: stop, and
    # _rebuild narrows the skin (with no skin the list is just the candidates)
    cdef Py_ssize_t budget = LIST_BUDGET * (e.base[u + 1] - e.base[u]) + 4096 if e.skin > 0 else -1
    p.near.size = 0
    p.near_cross.size = 0
    p.over = 0
    for m in range(e.base[u], e.base[u + 1]):
        if budget >= 0 and p.near.size + p.near_cross.size > budget:
            p.over = 1
            return
        x0 = x[m]
        y0 = y[m]
        c = _cell_of(e, x0, y0)
        len1 = start[c + 2] - (m + 1)
        # slots of cells c+stride-1 .. c+stride+1 (contiguous), numbered on after the first run
        jump = start[c + stride - 1] - len1
        total = start[c + stride + 2] - jump
        for q in range(total):
            # m + 1 + q in the first run, jump + q in the second, without a branch
            m2 = m + 1 + q + (((len1 - 1 - q) >> 31) & (jump - m - 1))
            dx = x0 - x[m2]
            dy = y0 - y[m2]
            if dx * dx + dy * dy < reach2:
                if q >= len1 and c >= cross_from:
                    rc = _pairs_push(&p.near_cross, m, m2)
                else:
                    rc = _pairs_push(&p.near, m, m2)
                if rc < 0:
                    p.failed = 1
                    return


cdef void _set_skin(Engine* e, double skin) noexcept nogil:
    """The list's reach, and how far a particle may move before the next rebuild.
    A pair closer than d now (computed) was closer than d + 2 * slack at the rebuild
    (triangle inequality); each computed squared distance is within a factor
    (1 + 2**-53)**4 of the true one, and d2, reach2 and slack2 are rounded once, so
    slack = skin / 2 - 1e-12 * (d + skin) keeps every such pair under reach2 with a
    margin far above those roundings."""
    cdef double slack = 0.5 * skin - 1e-12 * (e.d + skin)
    e.skin = skin
    e.reach2 = (e.d + skin) * (e.d + skin) if skin > 0 else e.d2
    e.slack2 = slack * slack if slack > 0 else -1.0


cdef int _rebuild(Engine* e) noexcept nogil:
    """Phase R: sort the (moved) particles by cell into the other buffer and list the pairs
    within reach. Returns -1 when memory runs out."""
    cdef int t, nt = e.parts, u
    cdef bint over
    if e.listed:
        _rebalance(e)
    for t in prange(nt, num_threads=nt, schedule="static", chunksize=1):
        _phase_count(e, t)
    for u in range(nt):
        if e.part[u].failed:
            return -1
    _plan_strips(e)
    for t in prange(nt, num_threads=nt, schedule="static", chunksize=1):
        _phase_place(e, t)
    e.cur = 1 - e.cur
    # the skin widens again after a narrowing, one step at a time
    _set_skin(e, min(e.skin_max, 2 * e.skin))
    while True:
        for t in prange(nt, num_threads=nt, schedule="static", chunksize=1):
            _phase_list(e, t)
        over = False
        for u in range(nt):
            if e.part[u].failed:
                return -1
            over = over or e.part[u].over
        if not over:
            break
        _set_skin(e, 0.25 * e.skin if e.skin > 0.05 * e.d else 0.0)
    e.listed = True
    return 0


# ---------------------------------------------------------------------------
# phases T and J: the candidates and their components

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


cdef int _test_pairs(Engine* e, Pairs* listed, Pairs* found, bint join) noexcept nogil:
    """Listed pairs closer than a diameter now (the exact predicate of docs/modelo.md)."""
    cdef double* x = e.x[e.cur]
    cdef double* y = e.y[e.cur]
    cdef double dx, dy, d2 = e.d2
    cdef Py_ssize_t q
    cdef idx_t a, b
    for q in range(listed.size):
        a = listed.data[q].a
        b = listed.data[q].b
        dx = x[a] - x[b]
        dy = y[a] - y[b]
        if dx * dx + dy * dy < d2:
            if join:
                _union(e.parent, a, b)
            if _pairs_push(found, a, b) < 0:
                return -1
    return 0


cdef void _phase_test(Engine* e, int u) noexcept nogil:
    """T: strip u's candidates on the post-wall positions; inner ones joined in the
    union-find (both ends are the strip's own slots), cross ones kept for J."""
    cdef Part* p = &e.part[u]
    cdef Py_ssize_t q
    p.inner.size = 0
    p.cross.size = 0
    if _test_pairs(e, &p.near, &p.inner, True) < 0 or _test_pairs(e, &p.near_cross, &p.cross, False) < 0:
        p.failed = 1
        return
    # the strip's own components are final now: remember each pair's root
    for q in range(p.inner.size):
        p.inner.data[q].r = _find(e.parent, p.inner.data[q].a)


cdef void _phase_join(Engine* e) noexcept nogil:
    """J (one thread): join the components linked by cross candidates, then mark their roots."""
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


cdef void _reset_cross(Engine* e) noexcept nogil:
    """End of a step (one thread): the ends of cross candidates back to roots."""
    cdef int u
    cdef Py_ssize_t q
    cdef Pairs* c
    for u in range(e.parts):
        c = &e.part[u].cross
        for q in range(c.size):
            e.parent[c.data[q].a] = ROOT
            e.parent[c.data[q].b] = ROOT
        c.size = 0


# ---------------------------------------------------------------------------
# phases E and K: resolution

cdef inline bint _collide(double* x, double* y, double* vx, double* vy, idx_t i, idx_t j,
                          double d, double d2, double ep) noexcept nogil:
    """docs/modelo.md step 3 for one candidate pair, with the current values."""
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


# ---------------------------------------------------------------------------
# one step, and the state in and out

cdef int _step(Engine* e, long long* pc, long long* wc) noexcept nogil:
    cdef int t, nt = e.parts, u
    cdef long long far = 0
    for t in prange(nt, num_threads=nt, schedule="static", chunksize=1):
        _phase_move(e, t)
    for u in range(nt):
        wc[0] += e.part[u].walls
        far += e.part[u].far
    if far > 0 or not e.listed:
        if _rebuild(e) < 0:
            return -1
    for t in prange(nt, num_threads=nt, schedule="static", chunksize=1):
        _phase_test(e, t)
    for u in range(nt):
        if e.part[u].failed:
            return -1
    if nt > 1:
        _phase_join(e)
    for t in prange(nt, num_threads=nt, schedule="static", chunksize=1):
        _phase_resolve(e, t)
    for u in range(nt):
        if e.part[u].failed:
            return -1
        pc[0] += e.part[u].collisions
    if nt > 1 and _phase_boundary(e, pc) < 0:
        return -1
    _reset_cross(e)
    return 0


cdef inline idx_t _band(Engine* e, idx_t k) noexcept nogil:
    """_load's bucket of caller particle k: a band of rows."""
    cdef double v = e.io[0][k] * e.inv_w if e.transposed else e.io[1][k] * e.inv_h
    return <idx_t> (<long long> _clamp_cell(v, e.ns) * e.buckets // e.ns)


cdef void _load_count(Engine* e, int t) noexcept nogil:
    cdef idx_t* count = e.bucket + t * e.buckets
    cdef idx_t k, band
    for band in range(e.buckets):
        count[band] = 0
    for k in range((<long long> e.n * t) // e.parts, (<long long> e.n * (t + 1)) // e.parts):
        count[_band(e, k)] += 1


cdef void _load_place(Engine* e, int t) noexcept nogil:
    cdef idx_t* cursor = e.bucket + t * e.buckets
    cdef idx_t k, pos, band
    for k in range((<long long> e.n * t) // e.parts, (<long long> e.n * (t + 1)) // e.parts):
        band = _band(e, k)
        pos = cursor[band]
        cursor[band] = pos + 1
        e.x[0][pos] = e.io[0][k]
        e.y[0][pos] = e.io[1][k]
        e.vx[0][pos] = e.io[2][k]
        e.vy[0][pos] = e.io[3][k]
        e.ident[0][pos] = k
        e.parent[pos] = ROOT


cdef void _exclusive_scan(Engine* e) noexcept nogil:
    """Counters of every part and bucket into cursors: bucket by bucket, part by part."""
    cdef idx_t run = 0, cnt
    cdef idx_t b
    cdef int t
    for b in range(e.buckets):
        for t in range(e.parts):
            cnt = e.bucket[t * e.buckets + b]
            e.bucket[t * e.buckets + b] = run
            run += cnt


cdef void _load(Engine* e, double* x, double* y, double* vx, double* vy) noexcept nogil:
    """Copy the state into buffer 0 grouped by bands of rows of about COARSE particles (a
    counting sort with few buckets, so it stays in cache; the first rebuild then only
    reorders inside bands), and start each chunk at the band of its strip's first row."""
    cdef int t, nt = e.parts, u
    e.io[0] = x
    e.io[1] = y
    e.io[2] = vx
    e.io[3] = vy
    for t in prange(nt, num_threads=nt, schedule="static", chunksize=1):
        _load_count(e, t)
    _exclusive_scan(e)
    for u in range(nt):  # part 0's cursor of a band is where the band starts
        e.chunk_lo[u] = e.bucket[<long long> e.row_lo[u] * e.buckets // e.ns]
        e.base[u] = e.chunk_lo[u]
    e.chunk_lo[nt] = e.n
    e.base[nt] = e.n
    for t in prange(nt, num_threads=nt, schedule="static", chunksize=1):
        _load_place(e, t)


cdef void _store_count(Engine* e, int t) noexcept nogil:
    cdef idx_t* count = e.bucket + t * e.buckets
    cdef idx_t* ident = e.ident[e.cur]
    cdef idx_t s, b
    for b in range(e.buckets):
        count[b] = 0
    for s in range((<long long> e.n * t) // e.parts, (<long long> e.n * (t + 1)) // e.parts):
        count[ident[s] // COARSE] += 1


cdef void _store_group(Engine* e, int t) noexcept nogil:
    """Into the free buffer, grouped by blocks of COARSE original indices."""
    cdef idx_t* cursor = e.bucket + t * e.buckets
    cdef int src = e.cur, dst = 1 - e.cur
    cdef idx_t s, pos, b
    for s in range((<long long> e.n * t) // e.parts, (<long long> e.n * (t + 1)) // e.parts):
        b = e.ident[src][s] // COARSE
        pos = cursor[b]
        cursor[b] = pos + 1
        e.x[dst][pos] = e.x[src][s]
        e.y[dst][pos] = e.y[src][s]
        e.vx[dst][pos] = e.vx[src][s]
        e.vy[dst][pos] = e.vy[src][s]
        e.ident[dst][pos] = e.ident[src][s]


cdef void _store_write(Engine* e, int t) noexcept nogil:
    """Blocks of part t out to the caller's arrays; each block writes COARSE entries."""
    cdef int b = 1 - e.cur
    cdef idx_t lo, hi, s, k
    # after _store_group the last part's cursor of block j is where block j + 1 starts
    cdef idx_t* ends = e.bucket + (e.parts - 1) * e.buckets
    cdef idx_t first_block = <idx_t> ((<long long> e.buckets * t) // e.parts)
    cdef idx_t last_block = <idx_t> ((<long long> e.buckets * (t + 1)) // e.parts)
    if first_block == last_block:
        return
    lo = ends[first_block - 1] if first_block > 0 else 0
    hi = ends[last_block - 1]
    for s in range(lo, hi):
        k = e.ident[b][s]
        e.io[0][k] = e.x[b][s]
        e.io[1][k] = e.y[b][s]
        e.io[2][k] = e.vx[b][s]
        e.io[3][k] = e.vy[b][s]


cdef void _store(Engine* e, double* x, double* y, double* vx, double* vy) noexcept nogil:
    """The final state back in the original order, in two passes that stay in cache: group
    by blocks of COARSE original indices into the free buffer, then write each block."""
    cdef int t, nt = e.parts
    e.io[0] = x
    e.io[1] = y
    e.io[2] = vx
    e.io[3] = vy
    for t in prange(nt, num_threads=nt, schedule="static", chunksize=1):
        _store_count(e, t)
    _exclusive_scan(e)
    for t in prange(nt, num_threads=nt, schedule="static", chunksize=1):
        _store_group(e, t)
    for t in prange(nt, num_threads=nt, schedule="static", chunksize=1):
        _store_write(e, t)


def _engine_grid(double w, double h, double d, idx_t n):
    """Cells for the list: at least (1 + SKIN) diameters wide and a hair more, at most
    CELLS_PER_PARTICLE * n + 16 of them; and the skin those cells allow."""
    cdef double side = d * (1.0 + SKIN) * (1.0 + CELL_MARGIN)
    cdef double max_cells = CELLS_PER_PARTICLE * n + 16.0
    cdef double limit = 1e300, skin
    if (w / side) * (h / side) > max_cells:
        side = sqrt(w * h / max_cells)
    ncx = max(1, min(<long long> (w / side), <long long> max_cells))
    ncy = max(1, min(<long long> (h / side), <long long> max_cells))
    cw = w / ncx
    ch = h / ncy
    # an axis with one cell puts no limit on the reach
    if ncx > 1:
        limit = min(limit, cw / (1.0 + CELL_MARGIN))
    if ncy > 1:
        limit = min(limit, ch / (1.0 + CELL_MARGIN))
    skin = limit - d if limit < 1e300 else d * SKIN
    return ncx, ncy, cw, ch, skin


def candidate_pairs(double[::1] x, double[::1] y, tuple grid, double d2, threads=1):
    """Arrays (i, j), i < j, of every pair closer than sqrt(d2), ascending (for tests)."""
    cdef Engine e
    cdef idx_t n = x.shape[0]
    cdef Py_ssize_t q, m
    cdef int rc = 0, u
    cdef Recs* all_
    cdef Pairs* near
    cdef cnp.int64_t[::1] pv, qv
    cdef idx_t* ident
    if n == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    _engine_init(&e, n, grid[0], grid[1], grid[2], grid[3], _claim_threads(threads_used(threads)))
    e.moving = False
    e.d = sqrt(d2)
    e.d2 = d2
    e.skin_max = 0.0
    e.skin = 0.0
    try:
        with nogil:
            _load(&e, &x[0], &y[0], &x[0], &y[0])
            rc = _rebuild(&e)
            all_ = &e.part[0].recs
            all_.size = 0
            for u in range(e.parts):
                for m in range(2):
                    near = &e.part[u].near if m == 0 else &e.part[u].near_cross
                    for q in range(near.size):
                        if rc == 0:
                            rc = _push_canonical(&e, all_, 0, near.data[q].a, near.data[q].b)
            if rc == 0:
                _recs_sort(all_)
        if rc < 0:
            raise MemoryError("sin memoria para el motor cython")
        ident = e.ident[e.cur]
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
              double ew, double ep, threads=1):
    """Advance the state in place on `threads` threads; return (particle, wall) collisions."""
    cdef Engine e
    cdef idx_t n = x.shape[0]
    cdef long long s, pc = 0, wc = 0
    cdef int rc = 0
    cdef double d = 2.0 * r
    if n == 0:
        return 0, 0
    ncx, ncy, cw, ch, skin = _engine_grid(w, h, d, n)
    _engine_init(&e, n, ncx, ncy, cw, ch, _claim_threads(threads_used(threads)))
    e.moving = True
    e.dt = dt
    e.r = r
    e.w = w
    e.h = h
    e.ew = ew
    e.ep = ep
    e.d = d
    e.d2 = d * d
    e.skin_max = skin
    e.skin = skin
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
    x, y, vx, vy = state
    return run_steps(x, y, vx, vy, p.steps, p.dt, p.radius, p.width, p.height,
                     p.wall_restitution, p.particle_restitution, threads)
