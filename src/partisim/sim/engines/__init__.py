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
    """Map an engine name or script alias to an engine; refuse anything else."""
    if not isinstance(name, str):
        raise ParamsError("benchmark debe ser un texto (python, numpy, cython, benchmark.py o benchmark_cython.py)",
                          field="benchmark")
    key = name.strip().lower()
    if key in _MODULES:
        return key
    if key in ALIASES:
        return ALIASES[key]
    shown = name if _SAFE_NAME.match(name) else repr(name[:64])
    valid = ", ".join([*ENGINES, *ALIASES])
    raise ParamsError(f"benchmark desconocido: {shown}. Válidos: {valid}", field="benchmark")


def get_engine(name: str) -> EngineFn:
    """The `run` function of an engine (imported on first use)."""
    engine = resolve_engine(name)
    module = importlib.import_module(f"partisim.sim.engines.{_MODULES[engine]}")
    run: EngineFn = module.run
    return run
