"""The simulation: parameters, initial state, engines, their result, and the kinetic theory to check them."""

from partisim.sim.engines import ALIASES as ENGINE_ALIASES
from partisim.sim.engines import ENGINES, get_engine, resolve_engine
from partisim.sim.measure import Measurement, measure_run
from partisim.sim.params import SimParams, parse_params
from partisim.sim.result import SimResult
from partisim.sim.simulate import simulate
from partisim.sim.theory import Prediction, coarse_step_warning, predict

#: version of the canonical model (docs/modelo.md, "El modelo canónico (v1)"): two
#: installations give the same checksums only when it is the same
MODEL_VERSION = 1

__all__ = [
    "ENGINES",
    "ENGINE_ALIASES",
    "MODEL_VERSION",
    "Measurement",
    "Prediction",
    "SimParams",
    "SimResult",
    "coarse_step_warning",
    "get_engine",
    "measure_run",
    "parse_params",
    "predict",
    "resolve_engine",
    "simulate",
]
