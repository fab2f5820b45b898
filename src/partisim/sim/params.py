"""Simulation parameters: names, API aliases, defaults and limits (docs/modelo.md).

One pydantic model serves the CLI, the worker API and the orchestrator, so a
value refused in one place is refused everywhere with the same message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from partisim.errors import ErrorLocation, ParamsError, explain_validation
from partisim.sim.numbers import decimal, integer

__all__ = [
    "SimParams",
    "parse_params",
    "number_from_text",
    "explain",
    "ALIASES",
    "ApiParams",
    "PARTICLES_KEY",
    "STEPS_KEY",
    "SEED_KEY",
    "LEGACY_NAMES",
    "MAX_PACKING",
    "MAX_SPEED",
    "MIN_SIDE",
    "MAX_SIDE",
]

#: Densest packing of equal disks in the plane (hexagonal): pi / (2*sqrt(3)).
MAX_PACKING = 0.9069
#: A packing fraction where disks still move freely: the box `partisim run` suggests.
ROOMY_PACKING = 0.1
#: Largest box side: positions, their differences and squares stay far from overflow.
MAX_SIDE = 1e9
#: Smallest box side: width*height (packing fraction, neighbour grid) and the free
#: area (W - 2r)(H - 2r) of the kinetic theory never underflow to 0.
MIN_SIDE = 1e-100
#: Largest VELOCIDAD_INICIAL_MAX. The kinetic energy never grows in model v1 (restitutions
#: <= 1, separations move positions only), so it stays <= N*vmax^2 <= 1e206, no speed
#: exceeds sqrt(2N)*vmax and no step moves a particle farther than ~1414 box sides:
#: every result is finite (docs/modelo.md §2).
MAX_SPEED = 1e100

#: a finite number given as a number: "0.1" or true are refused, as StrictInt refuses "5"
FiniteFloat = Annotated[float, Field(allow_inf_nan=False, strict=True)]


#: validated parameters keyed by their API aliases (``{"NUM_PARTICULAS": 100, "DT": 0.1, ...}``),
#: as they travel in tasks, results and the queue
ApiParams: TypeAlias = dict[str, int | float]


class SimParams(BaseModel):
    """A validated, immutable set of simulation parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True)

    particles: StrictInt = Field(100, ge=1, le=1_000_000, alias="NUM_PARTICULAS")
    steps: StrictInt = Field(1000, ge=1, le=10_000_000, alias="NUM_PASOS")
    seed: StrictInt = Field(42, ge=0, le=2**63 - 1, alias="SEMILLA")
    width: FiniteFloat = Field(800.0, ge=MIN_SIDE, le=MAX_SIDE, alias="ANCHO_MUNDO")
    height: FiniteFloat = Field(600.0, ge=MIN_SIDE, le=MAX_SIDE, alias="ALTO_MUNDO")
    radius: FiniteFloat = Field(5.0, gt=0, alias="RADIO_PARTICULA")
    dt: FiniteFloat = Field(0.1, gt=0, alias="DT")
    max_speed: FiniteFloat = Field(20.0, ge=0, le=MAX_SPEED, alias="VELOCIDAD_INICIAL_MAX")
    wall_restitution: FiniteFloat = Field(0.8, ge=0, le=1, alias="COEF_RESTITUCION_PARED")
    particle_restitution: FiniteFloat = Field(0.9, ge=0, le=1, alias="COEF_RESTITUCION_PARTICULA")

    @model_validator(mode="after")
    def _check_geometry(self) -> SimParams:
        # Raised as ParamsError (pydantic lets it through): these checks involve several
        # fields, and `field` names the one a form should mark.
        d = 2.0 * self.radius
        if self.width <= d:
            raise ParamsError(f"ANCHO_MUNDO (width) = {self.width} debe ser mayor que 2*radio = {d}", field="width")
        if self.height <= d:
            raise ParamsError(f"ALTO_MUNDO (height) = {self.height} debe ser mayor que 2*radio = {d}", field="height")
        if self.packing_fraction > MAX_PACKING:
            raise ParamsError(
                f"NUM_PARTICULAS/RADIO_PARTICULA: fracción de empaquetamiento "
                f"{decimal(self.packing_fraction, 4)} supera {decimal(MAX_PACKING, 4)} (empaquetamiento más "
                f"denso posible); use menos partículas, un radio menor o un mundo más grande{self._roomier()}",
                field="particles",
            )
        # Our addition to the design: a particle must not cross the box in one
        # step; beyond that the model is meaningless and speeds could overflow.
        if self.max_speed * self.dt > min(self.width, self.height):
            raise ParamsError(
                "VELOCIDAD_INICIAL_MAX*DT (max_speed*dt) no puede superar el lado menor del mundo: "
                "una partícula cruzaría el mundo en un solo paso",
                field="max_speed",
            )
        return self

    def _roomier(self) -> str:
        """A box of the same proportions where these particles fit: just inside the limit,
        and at a packing fraction that leaves room to move (ROOMY_PACKING)."""
        sizes = []
        for target in (MAX_PACKING * 0.99, ROOMY_PACKING):
            scale = math.sqrt(self.packing_fraction / target)
            width, height = math.ceil(self.width * scale), math.ceil(self.height * scale)
            if max(width, height) > MAX_SIDE:
                return ""
            sizes.append(f"{integer(width)} × {integer(height)}")
        return (
            f": con este radio caben en un mundo (ancho × alto) de {sizes[0]}, casi inmóviles, "
            f"y con holgura (fracción {decimal(ROOMY_PACKING, 1)}) en uno de {sizes[1]}"
        )

    @property
    def packing_fraction(self) -> float:
        return self.particles * math.pi * self.radius**2 / (self.width * self.height)

    def to_api(self) -> ApiParams:
        """The parameters keyed by their API aliases (NUM_PARTICULAS...)."""
        return self.model_dump(by_alias=True)


#: field name -> API alias
ALIASES: dict[str, str] = {name: f.alias or name for name, f in SimParams.model_fields.items()}
_FIELD_BY_ALIAS = {alias: name for name, alias in ALIASES.items()}
#: the API keys of the three parameters a sweep varies (NUM_PARTICULAS, NUM_PASOS, SEMILLA)
PARTICLES_KEY, STEPS_KEY, SEED_KEY = ALIASES["particles"], ALIASES["steps"], ALIASES["seed"]
#: names of the users' ETAPA-6 task files -> field name ("seed" is the field's own name)
LEGACY_NAMES: dict[str, str] = {"num_particles": "particles", "num_steps": "steps"}
#: every accepted spelling of a parameter -> its field name
_FIELD_OF: dict[str, str] = {**{name: name for name in ALIASES}, **_FIELD_BY_ALIAS, **LEGACY_NAMES}


def _label(loc: ErrorLocation) -> str:
    """The parameter named as the input named it (``NUM_PARTICULAS`` or ``particles``)."""
    return str(loc[0]) if loc else "parámetros"


def explain(exc: ValidationError) -> tuple[str, str | None]:
    """A Spanish one-line message for a parameter error, and the first field it names."""
    return explain_validation(exc.errors(), label=_label)


_NUMBER = re.compile(r"\s*-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*")


def number_from_text(value: object) -> object:
    """A parameter sent as a numeric text ("100", "0.05"), as the users' earlier clients
    did, is that number: it changes no result. Anything else is left for the model to
    judge (and to refuse, naming the parameter)."""
    if not isinstance(value, str) or not _NUMBER.fullmatch(value):
        return value
    text = value.strip()
    return int(text) if text.lstrip("-").isdigit() else float(text)


def parse_params(data: Mapping[str, object] | None = None, **overrides: object) -> SimParams:
    """Validate parameters given by field names, API aliases and/or the ETAPA-6 names
    (``num_particles``, ``num_steps``, ``seed``).

    Raises `ParamsError` with a Spanish message naming the offending field as it was given.
    """
    if data is not None and not isinstance(data, Mapping):
        raise ParamsError("params debe ser un objeto JSON (clave: valor)", field="params")
    merged: dict[str, object] = dict(data or {})
    merged.update(overrides)
    given: dict[str, str] = {}  # field name -> the key that set it
    for key in merged:
        name = _FIELD_OF.get(key) if isinstance(key, str) else None
        if name is None:
            continue  # unknown: pydantic names it below
        if name in given:
            raise ParamsError(
                f"{key} aparece dos veces (también como {given[name]}): es el mismo parámetro, {ALIASES[name]}",
                field=str(key),
            )
        given[name] = key
    # ETAPA-6 names become field names; every other key goes to the model as given
    renamed = {LEGACY_NAMES.get(k, k) if isinstance(k, str) else k: v for k, v in merged.items()}
    legacy = {LEGACY_NAMES[k]: k for k in merged if isinstance(k, str) and k in LEGACY_NAMES}
    try:
        return SimParams.model_validate(renamed)
    except ValidationError as exc:
        errors = exc.errors()

        def label(loc: ErrorLocation) -> str:  # an ETAPA-6 name is named as it was sent
            key = str(loc[0]) if loc else ""
            return legacy[key] if key in legacy else _label(loc)

        message, field = explain_validation(errors, label=label)
        # one field to blame: also the message without its name, for front ends to rename
        reason = explain_validation(errors, label=lambda _loc: "")[0] if len(errors) == 1 and field else None
        raise ParamsError(message, field=legacy.get(field or "", field), reason=reason) from None
