"""The simulation: parameters, initial state, engines and their result."""

from partisim.sim.engines import ALIASES as ENGINE_ALIASES
from partisim.sim.engines import ENGINES, engine_threads, get_engine, resolve_engine
from partisim.sim.params import SimParams, parse_params
from partisim.sim.result import SimResult
from partisim.sim.simulate import simulate

__all__ = [
    "ENGINES",
    "ENGINE_ALIASES",
    "SimParams",
    "SimResult",
    "engine_threads",
    "get_engine",
    "parse_params",
    "resolve_engine",
    "simulate",
]
