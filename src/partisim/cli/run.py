"""`partisim run`: one simulation on this machine."""

from __future__ import annotations

import argparse
import json

from partisim.cli._output import console, err_console, fail
from partisim.errors import ParamsError
from partisim.sim import ENGINES, SimResult, engine_threads, parse_params, simulate

__all__ = ["register", "OPTIONS", "add_param_options", "params_from_args", "print_summary"]

#: field -> (CLI option, help)
OPTIONS: dict[str, tuple[str, str]] = {
    "particles": ("--particles", "número de partículas (NUM_PARTICULAS, 1..1 000 000; por defecto 100)"),
    "steps": ("--steps", "número de pasos (NUM_PASOS, 1..10 000 000; por defecto 1000)"),
    "seed": ("--seed", "semilla aleatoria (SEMILLA; por defecto 42)"),
    "width": ("--width", "ancho del mundo (ANCHO_MUNDO; por defecto 800)"),
    "height": ("--height", "alto del mundo (ALTO_MUNDO; por defecto 600)"),
    "radius": ("--radius", "radio de las partículas (RADIO_PARTICULA; por defecto 5)"),
    "dt": ("--dt", "paso de tiempo (DT; por defecto 0.1)"),
    "max_speed": ("--max-speed", "velocidad inicial máxima (VELOCIDAD_INICIAL_MAX; por defecto 20)"),
    "wall_restitution": ("--wall-restitution", "coeficiente de restitución con la pared (0..1; por defecto 0.8)"),
    "particle_restitution": ("--particle-restitution",
                             "coeficiente de restitución entre partículas (0..1; por defecto 0.9)"),
}
_INT_FIELDS = {"particles", "steps", "seed"}


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


def _threads(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"debe ser un número entero >= 1, se recibió {value}")
    return value


_SHORT = {"particles": "-n", "steps": "-s"}


def add_param_options(parser: argparse.ArgumentParser) -> None:
    """The simulation parameters as options (shared with `partisim exec`)."""
    group = parser.add_argument_group("parámetros de la simulación")
    for field, (option, text) in OPTIONS.items():
        flags = [_SHORT[field], option] if field in _SHORT else [option]
        group.add_argument(*flags, dest=field, type=_int if field in _INT_FIELDS else _float,
                           default=None, metavar="N" if field in _INT_FIELDS else "X", help=text)


def params_from_args(args: argparse.Namespace):
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
    console.print(f"  Hilos: {result.threads}")
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
    used = engine_threads(args.engine, args.threads)
    if used < args.threads:
        err_console.print(f"Aviso: se pidieron {args.threads} hilos; se usan {used}, el máximo del motor "
                          f"{args.engine} en esta máquina.", soft_wrap=True)
    result = simulate(params, args.engine, threads=args.threads)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print_summary(result)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="ejecuta una simulación en esta máquina",
                                   description="Ejecuta una simulación de colisiones en esta máquina.")
    parser.add_argument("--engine", "-e", choices=ENGINES, default="cython",
                        help="motor de simulación (por defecto cython)")
    add_param_options(parser)
    parser.add_argument("--threads", "-t", type=_threads, default=1, metavar="N",
                        help="hilos de cálculo (solo el motor cython los aprovecha; por defecto 1; "
                             "se limita a los núcleos de esta máquina; el resultado es idéntico con cualquier número)")
    parser.add_argument("--json", action="store_true", help="imprime un único objeto JSON con el resultado")
    parser.set_defaults(func=_run)
