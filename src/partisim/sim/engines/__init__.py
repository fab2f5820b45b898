"""Engine registry: one name per engine, plus the names users already know.

Every engine module has `run(params, state, threads=1) -> (particle_collisions,
wall_collisions)`, which advances the state arrays in place, `max_threads()`,
the threads worth using on this machine, and `threads_used(threads)`, the
threads a run asked for `threads` really uses (1 for the single-threaded
engines). Results are the same for every thread count.

`thread_plan` decides how many threads a run uses, and says why (`ThreadReason`):
below `MIN_PARTICLES_FOR_THREADS` particles a second thread costs more in
synchronisation than it saves, so such runs use one; and a run uses no more threads than
there are free cores when it starts (`environment.free_cpus`): on a machine whose cores
are all taken, the threads of one run wait for each other at every phase of every step
while the others hold the cores, and two threads end up slower than one.

OpenMP wait policy. Between two parallel regions GNU OpenMP keeps its idle threads
spinning on a core before they sleep: forever with ``OMP_WAIT_POLICY=ACTIVE``, 300 000
rounds by default. When the cores are shared (a worker with two slots on two cores, other
processes), those spinning threads take the cores the working thread needs, and a
two-thread run became up to 50x slower than a one-thread run (issue 20). Sleeping at once
(``PASSIVE``) is no cure: the engine meets its threads at several barriers per step, and
waking a sleeping thread at each one made two threads 4-25x slower than one at 1 000-10 000
particles, idle machine or not. The engine therefore sets a bounded spin itself, whatever
the user's environment says: ``GOMP_SPINCOUNT`` = `SPIN_COUNT` rounds, then sleep (measured
with bench/engines.py, "Política de espera"). The OpenMP runtime reads its variables once,
when it is loaded (when the compiled engine is first imported), so they are set here, in
the package that every import of an engine goes through, before that import.
`wait_policy()` says whether it took effect (it cannot when another library loaded the
runtime first).
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Literal, Protocol

from partisim.errors import ParamsError

if TYPE_CHECKING:  # the names alone are light; the engines bring NumPy
    from partisim.sim.environment import EngineBuild
    from partisim.sim.params import SimParams
    from partisim.sim.state import State

__all__ = [
    "ENGINES",
    "ALIASES",
    "resolve_engine",
    "get_engine",
    "engine_threads",
    "thread_plan",
    "ThreadPlan",
    "ThreadReason",
    "THREAD_REASON_TEXT",
    "MIN_PARTICLES_FOR_THREADS",
    "SPIN_COUNT",
    "WAIT_POLICY",
    "wait_policy",
    "engine_build",
    "EngineFn",
]

#: rounds an idle OpenMP thread spins before it sleeps (see the module's docstring)
SPIN_COUNT = 30_000
#: the OpenMP wait policy the engine runs with, as results report it
WAIT_POLICY = f"spin-{SPIN_COUNT}"


def _runtime_loaded() -> bool | None:
    """Whether an OpenMP runtime is already mapped into this process (None: cannot tell)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            maps = fh.read()
    except OSError:
        return None
    return any(name in maps for name in ("libgomp", "libomp", "libiomp"))


_RUNTIME_BEFORE = _runtime_loaded()
# ACTIVE would make the spin endless and PASSIVE would skip it: the count alone decides
os.environ.pop("OMP_WAIT_POLICY", None)
os.environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)


def wait_policy() -> str:
    """The wait policy in effect (`WAIT_POLICY`), or why it is unknown (an OpenMP runtime
    was loaded before this package could set it)."""
    if _RUNTIME_BEFORE:
        return "desconocida (el runtime de OpenMP se cargó antes que partisim)"
    return WAIT_POLICY


#: below this many particles a run uses one thread whatever it asks for: measured with
#: bench/engines.py (the "umbral" table), where two threads stop being slower than one
MIN_PARTICLES_FOR_THREADS = 20_000

#: why a run uses the threads it uses
ThreadReason = Literal[
    "requested",  # as many as it asked for
    "single_threaded_engine",  # python and numpy run on one
    "no_openmp",  # the cython engine was built without OpenMP
    "forked_process",  # a process forked after OpenMP ran: one thread (see the engine)
    "machine_cores",  # capped at the CPUs this process may use
    "small_work",  # fewer particles than MIN_PARTICLES_FOR_THREADS
    "busy_machine",  # other threads were ready to run on the cores a second thread needs
    "worker_capacity",  # capped at the worker's free capacity (set by the worker)
]


#: what each reason means, as users read it
THREAD_REASON_TEXT: dict[str, str] = {
    "requested": "los pedidos",
    "single_threaded_engine": "este motor usa un hilo",
    "no_openmp": "el motor cython se compiló sin OpenMP",
    "forked_process": "proceso bifurcado de otro que ya usó varios hilos: uno",
    "machine_cores": "limitado a las CPU que puede usar el proceso",
    "small_work": f"menos de {MIN_PARTICLES_FOR_THREADS} partículas: un hilo es más rápido",
    "busy_machine": "no había núcleos libres al empezar: un segundo hilo iría más lento",
    "worker_capacity": "limitado a la capacidad del worker",
}


@dataclass(frozen=True)
class ThreadPlan:
    """Threads a run asked for, those it uses, and why."""

    requested: int
    used: int
    reason: ThreadReason


class EngineFn(Protocol):
    def __call__(self, params: SimParams, state: State, threads: int = 1) -> tuple[int, int]: ...


_MODULES = {"python": "python", "numpy": "numpy_", "cython": "_cython"}
ENGINES: tuple[str, ...] = tuple(_MODULES)
#: names of the users' original scripts
ALIASES: dict[str, str] = {"benchmark.py": "python", "benchmark_cython.py": "cython"}

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def resolve_engine(name: object) -> str:
    """Map an engine name or script alias to an engine; refuse anything else.

    Names are exact (no case folding, no stripping): ``Cython`` or ``" cython"`` is a
    different name, and an unknown one, so two workers never disagree about it."""
    if not isinstance(name, str):
        raise ParamsError(
            "benchmark debe ser un texto (python, numpy, cython, benchmark.py o benchmark_cython.py)", field="benchmark"
        )
    if name in _MODULES:
        return name
    if name in ALIASES:
        return ALIASES[name]
    shown = name if _SAFE_NAME.match(name) else repr(name[:64])
    valid = ", ".join([*ENGINES, *ALIASES])
    near = name.strip().lower()
    hint = f" (¿quiso decir {near}? los nombres son exactos)" if near in _MODULES or near in ALIASES else ""
    raise ParamsError(f"benchmark desconocido: {shown}{hint}. Válidos: {valid}", field="benchmark")


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"partisim.sim.engines.{_MODULES[resolve_engine(name)]}")


def get_engine(name: str) -> EngineFn:
    """The `run` function of an engine (imported on first use)."""
    run: EngineFn = _module(name).run
    return run


def engine_threads(name: str, requested: int) -> int:
    """Threads an engine uses when asked for `requested` (>= 1), capped at this machine's cores."""
    module = _module(name)
    used: int = module.threads_used(min(requested, module.max_threads()))
    return used


def thread_plan(name: str, requested: int, particles: int) -> ThreadPlan:
    """Threads a run of `particles` particles asking for `requested` uses, and why."""
    engine = resolve_engine(name)
    module = _module(engine)
    if requested <= 1:
        return ThreadPlan(requested, 1, "requested")
    if engine != "cython":
        return ThreadPlan(requested, 1, "single_threaded_engine")
    if not module.openmp_available():
        return ThreadPlan(requested, 1, "no_openmp")
    most: int = module.max_threads()
    if most <= 1 and module.threads_used(requested) == 1:
        return ThreadPlan(requested, 1, "forked_process")
    if particles < MIN_PARTICLES_FOR_THREADS:
        return ThreadPlan(requested, 1, "small_work")
    used: int = module.threads_used(min(requested, most))
    from partisim.sim.environment import free_cpus  # pydantic: only once a run is planned

    free = free_cpus()
    if free is not None and free < used:
        return ThreadPlan(requested, max(1, free), "busy_machine")
    return ThreadPlan(requested, used, "requested" if used == requested else "machine_cores")


def engine_build() -> EngineBuild | None:
    """How the cython engine here was built (None where it is not installed)."""
    from partisim.sim.environment import EngineBuild

    try:
        module = _module("cython")
    except ImportError:
        return None
    compiler, flags, openmp_version = module.build_info()
    return EngineBuild(
        compiler=compiler,
        flags=flags,
        openmp=bool(module.openmp_available()),
        openmp_version=openmp_version,
        wait_policy=wait_policy(),
    )
