"""Engine registry: one name per engine, plus the names users already know.

Every engine module has `run(params, state, threads=1) -> (particle_collisions,
wall_collisions)`, which advances the state arrays in place, `max_threads()`,
the threads worth using on this machine, and `threads_used(threads)`, the
threads a run asked for `threads` really uses (1 for the single-threaded
engines). Results are the same for every thread count.
"""

from __future__ import annotations

import importlib
import re
from typing import TYPE_CHECKING, Any, Protocol

from partisim.errors import ParamsError

if TYPE_CHECKING:  # the names alone are light; the engines bring NumPy
    from partisim.sim.params import SimParams
    from partisim.sim.state import State

__all__ = ["ENGINES", "ALIASES", "resolve_engine", "get_engine", "engine_threads", "EngineFn"]


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


def _module(name: str) -> Any:
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
