"""What a worker of the users' original design (ETAPA 4) can be asked, and how.

Such a worker knows two scripts, ``benchmark.py`` (Python) and ``benchmark_cython.py``
(Cython), reads only ``NUM_PARTICULAS``, ``NUM_PASOS`` and ``SEMILLA`` and silently runs
Python for any other benchmark name. Every client path (menu, demo, exec, check, the
fleet executor of serve) asks `legacy_problem` before sending, so an engine it lacks or a
parameter it would ignore is refused with a message that says which, instead of being
recorded as if it had been applied; `legacy_request` is what it is then sent.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from partisim.protocol import WIRE_NAMES, ExecuteRequest
from partisim.sim import parse_params
from partisim.sim.params import ApiParams

__all__ = ["LEGACY_PARAMS", "legacy_problem", "legacy_request"]

#: the parameters a worker of the original design reads
LEGACY_PARAMS = ("NUM_PARTICULAS", "NUM_PASOS", "SEMILLA")


@functools.lru_cache(maxsize=1)
def _defaults() -> ApiParams:
    return parse_params({}).to_api()


def legacy_problem(engine: str, params: Mapping[str, object], threads: int | None = None) -> str | None:
    """Why a worker of the original design cannot run this task as asked (a Spanish
    clause to follow "este worker no es partisim: "), or None when it can."""
    if engine not in WIRE_NAMES:
        return (
            f"no tiene el motor {engine} (solo {', '.join(WIRE_NAMES.values())}) y ejecutaría Python en su lugar; "
            "use python o cython, o un worker partisim"
        )
    defaults = _defaults()
    ignored = [k for k, v in params.items() if k not in LEGACY_PARAMS and k in defaults and defaults[k] != v]
    if threads is not None and threads > 1:
        ignored.append("threads")
    if ignored:
        return (
            f"ignoraría {', '.join(ignored)} (solo lee {', '.join(LEGACY_PARAMS)}) y ejecutaría sus valores por "
            "defecto; quite esos parámetros o use un worker partisim"
        )
    return None


def legacy_request(request: ExecuteRequest) -> ExecuteRequest:
    """The request as such a worker is sent it: only the parameters it reads, no threads."""
    params = {k: request.params[k] for k in LEGACY_PARAMS if k in request.params}
    return request.model_copy(update={"params": params, "threads": None})
