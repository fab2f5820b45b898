"""The simulation: parameters, initial state, engines, their result, and the kinetic theory to check them.

Names are loaded on first use (PEP 562): a command that only needs the engine names
(``partisim --help`` builds every option) does not pay for NumPy and pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from partisim.sim.engines import ALIASES as ENGINE_ALIASES
    from partisim.sim.engines import ENGINES, engine_threads, get_engine, resolve_engine
    from partisim.sim.measure import Measurement, measure_run
    from partisim.sim.params import SimParams, parse_params
    from partisim.sim.result import SimResult
    from partisim.sim.run import simulate
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
    "engine_threads",
    "get_engine",
    "measure_run",
    "parse_params",
    "predict",
    "resolve_engine",
    "simulate",
]

#: exported name -> (module, name in that module); no module may be named like an exported
#: name: importing such a submodule directly would make the package attribute the module
#: (Python sets it on load) and hide the name (tests/test_architecture.py checks it)
_WHERE = {
    "ENGINES": ("engines", "ENGINES"),
    "ENGINE_ALIASES": ("engines", "ALIASES"),
    "get_engine": ("engines", "get_engine"),
    "engine_threads": ("engines", "engine_threads"),
    "resolve_engine": ("engines", "resolve_engine"),
    "Measurement": ("measure", "Measurement"),
    "measure_run": ("measure", "measure_run"),
    "SimParams": ("params", "SimParams"),
    "parse_params": ("params", "parse_params"),
    "SimResult": ("result", "SimResult"),
    "simulate": ("run", "simulate"),
    "Prediction": ("theory", "Prediction"),
    "coarse_step_warning": ("theory", "coarse_step_warning"),
    "predict": ("theory", "predict"),
}


def __getattr__(name: str) -> object:
    try:
        module, attr = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value
