"""`partisim run`: one simulation on this machine."""

from __future__ import annotations

import argparse

from partisim.cli._output import console, fail, warn
from partisim.errors import ParamsError
from partisim.sim import ENGINES, SimParams, SimResult, coarse_step_warning, parse_params, simulate
from partisim.sim.options import INT_FIELDS, OPTIONS, SHORT_FLAGS

__all__ = ["register", "OPTIONS", "add_param_options", "params_from_args", "print_summary"]


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"debe ser un número entero, se recibió {text!r}") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"debe ser un número, se recibió {text!r}") from None


def add_param_options(parser: argparse.ArgumentParser) -> None:
    """The simulation parameters as options (shared with `partisim exec`)."""
    group = parser.add_argument_group("parámetros de la simulación")
    for field, (option, text) in OPTIONS.items():
        flags = [SHORT_FLAGS[field], option] if field in SHORT_FLAGS else [option]
        group.add_argument(*flags, dest=field, type=_int if field in INT_FIELDS else _float,
                           default=None, metavar="N" if field in INT_FIELDS else "X", help=text)


def params_from_args(args: argparse.Namespace) -> SimParams:
    """Validated SimParams from the options given; errors name the option."""
    given = {f: getattr(args, f) for f in OPTIONS if getattr(args, f, None) is not None}
    try:
        return parse_params(given)
    except ParamsError as exc:
        option = OPTIONS.get(exc.field or "", (None,))[0]
        raise ParamsError(f"{option}: {exc.message}" if option else exc.message, field=exc.field) from None


def print_summary(result: SimResult) -> None:
    console.print(f"[bold]Simulación completada[/] con el motor [cyan]{result.engine}[/]")
    console.print(f"  Partículas: {result.particles}   Pasos: {result.steps}   Semilla: {result.seed}")
    console.print(f"  Colisiones partícula-partícula: {result.particle_collisions}")
    console.print(f"  Colisiones con pared: {result.wall_collisions}")
    console.print(f"  Tiempo de simulación: {result.simulation_time:.4f} s")
    console.print(f"  Partículas-paso/s: {result.particle_steps_per_s:,.0f}".replace(",", " "))
    console.print(f"  Energía cinética final: {result.kinetic_energy:.6g}")
    console.print(f"  Checksum: {result.checksum}")


def _run(args: argparse.Namespace) -> int:
    try:
        params = params_from_args(args)
    except ParamsError as exc:
        return fail(exc.message)
    # advice only: it never changes what the engine computes
    warnings = [text for text in (coarse_step_warning(params),) if text]
    for text in warnings:
        warn(text)
    result = simulate(params, args.engine)
    if args.json:
        try:
            print(result.to_json(warnings=warnings))  # strict JSON, or a clear error: never NaN/Infinity
        except ParamsError as exc:
            return fail(exc.message)
    else:
        print_summary(result)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("run", help="ejecuta una simulación en esta máquina",
                                   description="Ejecuta una simulación de colisiones en esta máquina.")
    parser.add_argument("--engine", "-e", choices=ENGINES, default="cython",
                        help="motor de simulación (por defecto cython)")
    add_param_options(parser)
    parser.add_argument("--json", action="store_true", help="imprime un único objeto JSON con el resultado")
    parser.set_defaults(func=_run)
