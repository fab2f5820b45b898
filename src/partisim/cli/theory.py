"""`partisim theory`: kinetic-theory predictions, optionally set against a measured run."""

from __future__ import annotations

import argparse
import json
import math
from typing import TYPE_CHECKING, TypeVar

from pydantic import JsonValue

from partisim.cli._commands import command_help
from partisim.cli._output import console, fail, warn
from partisim.cli.run import add_param_options, params_from_args
from partisim.errors import ParamsError
from partisim.sim.engines import ENGINES
from partisim.sim.numbers import significant

if TYPE_CHECKING:
    from partisim.sim import Measurement, Prediction, SimParams

__all__ = ["register"]

T = TypeVar("T")

#: relative change of kT over the measured half above which the comparison is flagged
_COOLING_TOLERANCE = 0.10


def _temperature(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"debe ser un número, se recibió {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"debe ser un número finito >= 0, se recibió {text!r}")
    return value


def _finite(value: T) -> T | None:
    """Strict JSON: a non-finite float becomes null."""
    return value if not isinstance(value, float) or math.isfinite(value) else None


def _ratio(measured: float, theory: float) -> float | None:
    return measured / theory if theory > 0 and math.isfinite(measured / theory) else None


def _cooling_warning(m: Measurement) -> str | None:
    start, end = m.temperature_start, m.temperature_end
    if start <= 0 or abs(end - start) <= _COOLING_TOLERANCE * start:
        return None
    return (
        f"la temperatura kT cambió un {100 * abs(end - start) / start:.0f} % durante la mitad medida "
        "(restitución < 1): la comparación es aproximada. Para una comparación limpia use "
        "--particle-restitution 1 --wall-restitution 1."
    )


def _report(
    params: SimParams, prediction: Prediction, source: str, m: Measurement | None, warnings: list[str]
) -> dict[str, JsonValue]:
    data: dict[str, JsonValue] = {**prediction.to_dict(), "temperature_source": source}
    data["expected_ratio"] = 1.0 - prediction.missed_fraction_estimate
    run_fields = (
        "engine",
        "steps",
        "measured_steps",
        "measured_time",
        "collision_rate_measured",
        "wall_rate_measured",
        "temperature_start",
        "temperature_end",
        "particle_collisions",
        "wall_collisions",
        "checksum",
    )
    for name in run_fields:
        data[name] = getattr(m, name) if m else None
    data["ratio"] = _ratio(m.collision_rate_measured, prediction.collision_rate_theory) if m else None
    data["wall_ratio"] = _ratio(m.wall_rate_measured, prediction.wall_rate_theory) if m else None
    data["params"] = {**params.to_api()}
    data["warnings"] = [*warnings]
    return {key: _finite(value) for key, value in data.items()}


def _num(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else significant(value, digits)


def _print_human(p: Prediction, source_key: str, m: Measurement | None) -> None:
    source = {
        "initial": "inicial: VELOCIDAD_INICIAL_MAX²/3",
        "measured": "medida en la segunda mitad",
        "given": "indicada con --temperature",
    }[source_key]
    missed = _finite(p.missed_fraction_estimate)
    tau = _finite(p.haff_tau)
    rows = [
        ("Fracción de empaquetamiento η", _num(p.packing_fraction), ""),
        ("Densidad de centros n", _num(p.number_density), "por unidad de área"),
        ("Temperatura kT", _num(p.temperature), f"({source})"),
        ("g(σ) de contacto (Henderson)", _num(p.g_contact), ""),
        ("Frecuencia de colisión por partícula ν", _num(p.collision_frequency), "por unidad de tiempo"),
        ("Colisiones entre partículas N·ν/2", _num(p.collision_rate_theory), "por unidad de tiempo"),
        ("Choques con las paredes", _num(p.wall_rate_theory), "por unidad de tiempo"),
        ("Recorrido libre medio λ", _num(p.mean_free_path), "unidades de longitud"),
        ("Paso relativo a = dt·⟨|v|⟩/σ", _num(p.step_ratio), ""),
        (
            "Colisiones perdidas por el paso (estimación)",
            f"{_num(100 * missed, 2)} %" if missed is not None else "—",
            "",
        ),
        ("DT máximo para perder como mucho el 2 %", _num(p.dt_max_2pct, 3), ""),
        (
            "Tiempo de enfriamiento de Haff τ",
            _num(tau),
            "unidades de tiempo" if tau is not None else "(no aplica: sin choques inelásticos)",
        ),
    ]
    console.print("[bold]Predicción de la teoría cinética[/] (discos duros en 2D, masa unidad)")
    width = max(len(label) for label, _, _ in rows)
    for label, value, unit in rows:
        console.print(f"  {label:<{width}}  {value:>10}  {unit}".rstrip(), soft_wrap=True)
    if m is None:
        return
    console.print(
        f"\n[bold]Medición[/] con el motor [cyan]{m.engine}[/]: pasos "
        f"{m.steps - m.measured_steps + 1}–{m.steps} de {m.steps} "
        f"({_num(m.measured_time)} unidades de tiempo)",
        soft_wrap=True,
    )
    console.print(f"  {'':<32}{'teoría':>12}{'medido':>12}{'medido/teoría':>16}")
    for label, theory, measured, ratio in (
        (
            "Colisiones entre partículas",
            p.collision_rate_theory,
            m.collision_rate_measured,
            _ratio(m.collision_rate_measured, p.collision_rate_theory),
        ),
        (
            "Choques con las paredes",
            p.wall_rate_theory,
            m.wall_rate_measured,
            _ratio(m.wall_rate_measured, p.wall_rate_theory),
        ),
    ):
        console.print(f"  {label:<32}{_num(theory):>12}{_num(measured):>12}{_num(ratio):>16}")
    console.print(f"  Cociente esperado por el paso (1 − pérdida estimada): {_num(1.0 - p.missed_fraction_estimate)}")
    console.print(f"  Checksum: {m.checksum}")


def _theory(args: argparse.Namespace) -> int:
    from partisim.sim import coarse_step_warning, measure_run, predict

    try:
        params = params_from_args(args)
        if args.run and params.steps < 2:
            raise ParamsError("--steps: con --run hacen falta al menos 2 pasos (se mide la segunda mitad)")
    except ParamsError as exc:
        return fail(exc.message)
    warnings = [text for text in (coarse_step_warning(params),) if text]
    measurement = measure_run(params, args.engine) if args.run else None
    if args.temperature is not None:
        temperature, source = args.temperature, "given"
    elif measurement is not None:
        temperature, source = measurement.temperature, "measured"
    else:
        temperature, source = None, "initial"
    if measurement is not None and (cooling := _cooling_warning(measurement)):
        warnings.append(cooling)
    if temperature is not None and not math.isfinite(temperature):
        return fail("la temperatura medida no es finita: las velocidades son demasiado grandes para compararlas")
    prediction = predict(params, temperature)
    data = _report(params, prediction, source, measurement, warnings)
    for text in warnings:
        warn(text)
    if args.json:
        print(json.dumps(data, ensure_ascii=False, allow_nan=False))
    else:
        _print_human(prediction, source, measurement)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "theory",
        help=command_help("theory"),
        description="Predice, con la teoría cinética de discos duros en 2D, las tasas de colisión entre "
        "partículas y con las paredes, el recorrido libre medio y la fracción de colisiones que "
        "pierde el paso de tiempo fijo. Con --run ejecuta además la simulación y compara lo medido "
        "en la segunda mitad con lo predicho.",
    )
    add_param_options(parser)
    parser.add_argument(
        "--run", action="store_true", help="ejecuta la simulación (--steps pasos) y mide sobre la segunda mitad"
    )
    parser.add_argument(
        "--engine", "-e", choices=ENGINES, default="cython", help="motor para --run (por defecto cython)"
    )
    parser.add_argument(
        "--temperature",
        type=_temperature,
        default=None,
        metavar="KT",
        help="temperatura kT para la predicción (por defecto la inicial, o la medida con --run)",
    )
    parser.add_argument("--json", action="store_true", help="imprime un único objeto JSON")
    parser.set_defaults(func=_theory)
