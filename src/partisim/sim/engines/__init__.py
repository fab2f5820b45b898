"""Engine registry: one name per engine, plus the names users already know.

Every engine is a function `run(params, state) -> (particle_collisions,
wall_collisions)` that advances the state arrays in place.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from partisim.errors import ParamsError

if TYPE_CHECKING:  # the names alone are light; the engines bring NumPy
    from partisim.sim.params import SimParams
    from partisim.sim.state import State

__all__ = ["ENGINES", "ALIASES", "resolve_engine", "get_engine", "EngineFn"]

EngineFn = Callable[["SimParams", "State"], tuple[int, int]]

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
        raise ParamsError("benchmark debe ser un texto (python, numpy, cython, benchmark.py o benchmark_cython.py)",
                          field="benchmark")
    if name in _MODULES:
        return name
    if name in ALIASES:
        return ALIASES[name]
    shown = name if _SAFE_NAME.match(name) else repr(name[:64])
    valid = ", ".join([*ENGINES, *ALIASES])
    near = name.strip().lower()
    hint = f" (¿quiso decir {near}? los nombres son exactos)" if near in _MODULES or near in ALIASES else ""
    raise ParamsError(f"benchmark desconocido: {shown}{hint}. Válidos: {valid}", field="benchmark")


def get_engine(name: str) -> EngineFn:
    """The `run` function of an engine (imported on first use)."""
    engine = resolve_engine(name)
    module = importlib.import_module(f"partisim.sim.engines.{_MODULES[engine]}")
    run: EngineFn = module.run
    return run
