"""`partisim animate`: the particles of one run as a GIF or MP4 file."""

from __future__ import annotations

import argparse
from pathlib import Path

from partisim.cli._commands import command_help
from partisim.cli._output import console, fail, warn
from partisim.cli.run import add_param_options, params_from_args, positive_threads
from partisim.errors import ParamsError
from partisim.sim.engines import ENGINES
from partisim.sim.numbers import count, integer

__all__ = ["register"]


def _whole_between(text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"debe ser un número entero, se recibió {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"debe estar entre {low} y {high}, se recibió {value}")
    return value


def _frames(text: str) -> int:
    from partisim.sim.frames import MAX_FRAMES

    return _whole_between(text, 2, MAX_FRAMES)


def _fps(text: str) -> int:
    return _whole_between(text, 1, 60)


def _animate(args: argparse.Namespace) -> int:
    from partisim.orchestrator.animation import animation_format, write_animation
    from partisim.sim.frames import record_frames

    try:
        params = params_from_args(args)
    except ParamsError as exc:
        return fail(exc.message)
    path = Path(args.output)
    animation_format(path)  # a wrong extension or a missing ffmpeg: before the run, not after
    rec = record_frames(params, args.engine, args.threads, max_frames=args.frames)
    if rec.sampled:
        warn(
            f"se dibuja una muestra: {integer(rec.drawn)} de {count(params.particles, 'partícula', 'partículas')} "
            f"(una de cada {rec.stride})"
        )
    written = write_animation(rec, path, fps=args.fps)
    r = rec.result
    console.print(
        f"[bold]Animación escrita[/] en {written.path}: {written.frames} fotogramas a {written.fps} por segundo",
        soft_wrap=True,  # a long path must not split the number from its word
    )
    console.print(
        f"  Un fotograma cada {count(rec.interval, 'paso', 'pasos')}; motor {r.engine}; "
        f"{count(r.particles, 'partícula', 'partículas')}, {count(r.steps, 'paso', 'pasos')}"
    )
    console.print(
        f"  Colisiones partícula-partícula: {integer(r.particle_collisions)}   con pared: {integer(r.wall_collisions)}"
    )
    console.print(f"  Checksum: {r.checksum}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "animate",
        help=command_help("animate"),
        description=(
            "Ejecuta una simulación en esta máquina y escribe sus partículas como animación "
            "(.gif, o .mp4 si ffmpeg está instalado). Mismos parámetros que `partisim run`."
        ),
    )
    parser.add_argument("--output", "-o", required=True, metavar="ARCHIVO", help="archivo de salida: .gif o .mp4")
    parser.add_argument(
        "--engine", "-e", choices=ENGINES, default="cython", help="motor de simulación (por defecto cython)"
    )
    add_param_options(parser)
    parser.add_argument(
        "--threads", "-t", type=positive_threads, default=1, metavar="N", help="hilos de cálculo (por defecto 1)"
    )
    parser.add_argument(
        "--frames",
        type=_frames,
        default=200,
        metavar="N",
        help="fotogramas como máximo, el inicial y el final incluidos (por defecto 200)",
    )
    parser.add_argument("--fps", type=_fps, default=20, metavar="N", help="fotogramas por segundo (por defecto 20)")
    parser.set_defaults(func=_animate)
