"""Simulation parameters: names, API aliases, defaults and limits (docs/modelo.md).

One pydantic model serves the CLI, the worker API and the orchestrator, so a
value refused in one place is refused everywhere with the same message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from partisim.errors import ParamsError, explain_validation

__all__ = ["SimParams", "parse_params", "explain", "ALIASES", "MAX_PACKING"]

#: Densest packing of equal disks in the plane (hexagonal): pi / (2*sqrt(3)).
MAX_PACKING = 0.9069

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class SimParams(BaseModel):
    """A validated, immutable set of simulation parameters."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True
    )

    particles: StrictInt = Field(100, ge=1, le=1_000_000, alias="NUM_PARTICULAS")
    steps: StrictInt = Field(1000, ge=1, le=10_000_000, alias="NUM_PASOS")
    seed: StrictInt = Field(42, ge=0, le=2**63 - 1, alias="SEMILLA")
    width: FiniteFloat = Field(800.0, gt=0, le=1e9, alias="ANCHO_MUNDO")
    height: FiniteFloat = Field(600.0, gt=0, le=1e9, alias="ALTO_MUNDO")
    radius: FiniteFloat = Field(5.0, gt=0, alias="RADIO_PARTICULA")
    dt: FiniteFloat = Field(0.1, gt=0, alias="DT")
    max_speed: FiniteFloat = Field(20.0, ge=0, alias="VELOCIDAD_INICIAL_MAX")
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
            raise ParamsError(f"ALTO_MUNDO (height) = {self.height} debe ser mayor que 2*radio = {d}",
                              field="height")
        if self.packing_fraction > MAX_PACKING:
            raise ParamsError(
                f"NUM_PARTICULAS/RADIO_PARTICULA: fracción de empaquetamiento "
                f"{self.packing_fraction:.4f} supera {MAX_PACKING} (empaquetamiento más denso posible); "
                "use menos partículas, un radio menor o un mundo más grande", field="particles"
            )
        # Our addition to the design: a particle must not cross the box in one
        # step; beyond that the model is meaningless and speeds could overflow.
        if self.max_speed * self.dt > min(self.width, self.height):
            raise ParamsError(
                "VELOCIDAD_INICIAL_MAX*DT (max_speed*dt) no puede superar el lado menor del mundo: "
                "una partícula cruzaría el mundo en un solo paso", field="max_speed"
            )
        return self

    @property
    def packing_fraction(self) -> float:
        return self.particles * math.pi * self.radius**2 / (self.width * self.height)

    def to_api(self) -> dict[str, Any]:
        """The parameters keyed by their API aliases (NUM_PARTICULAS...)."""
        return self.model_dump(by_alias=True)


#: field name -> API alias
ALIASES: dict[str, str] = {name: f.alias or name for name, f in SimParams.model_fields.items()}
_FIELD_BY_ALIAS = {alias: name for name, alias in ALIASES.items()}

def _label(loc: tuple[Any, ...]) -> str:
    """``NUM_PARTICULAS (particles)``: the API alias and the field name, however given."""
    key = str(loc[0]) if loc else ""
    if key in ALIASES:
        return f"{ALIASES[key]} ({key})"
    if key in _FIELD_BY_ALIAS:
        return f"{key} ({_FIELD_BY_ALIAS[key]})"
    return key or "parámetros"


def explain(exc: ValidationError) -> tuple[str, str | None]:
    """A Spanish one-line message for a parameter error, and the first field it names."""
    return explain_validation(exc.errors(), label=_label)


def parse_params(data: Mapping[str, Any] | None = None, **overrides: Any) -> SimParams:
    """Validate parameters given by field names and/or API aliases.

    Raises `ParamsError` with a Spanish message naming the offending field.
    """
    if data is not None and not isinstance(data, Mapping):
        raise ParamsError("params debe ser un objeto JSON (clave: valor)", field="params")
    merged: dict[str, Any] = dict(data or {})
    merged.update(overrides)
    clashes = [k for k in merged if k in _FIELD_BY_ALIAS and _FIELD_BY_ALIAS[k] in merged]
    if clashes:
        raise ParamsError(f"{clashes[0]} aparece dos veces (con su nombre y con su alias)", field=clashes[0])
    try:
        return SimParams.model_validate(merged)
    except ValidationError as exc:
        message, field = explain(exc)
        raise ParamsError(message, field=field) from None
