"""`partisim run`: one simulation on this machine."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from partisim.cli._commands import command_help
from partisim.cli._output import console, fail, warn
from partisim.errors import ParamsError
from partisim.sim.engines import ENGINES
from partisim.sim.environment import (
    CONTENDED_LABEL,
    CONTENTION_TEXT,
    Environment,
    RunSample,
    judge,
    machine_facts,
    sampling,
)
from partisim.sim.numbers import integer
from partisim.sim.options import INT_FIELDS, OPTIONS, SHORT_FLAGS

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from partisim.sim import SimParams, SimResult

__all__ = ["register", "OPTIONS", "add_param_options", "params_from_args", "positive_threads", "print_summary"]


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"debe ser un número entero, se recibió {text!r}") from None


def _float(text: str) -> float:
    from partisim.sim.numbers import parse_number

    try:  # a decimal comma or point: 0,05 and 0.05
        return parse_number(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"debe ser un número, se recibió {text!r}") from None


def positive_threads(text: str) -> int:
    """``--threads``: a whole number >= 1 (shared with `partisim exec`)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"debe ser un número entero >= 1, se recibió {value}")
    return value


def add_param_options(parser: argparse.ArgumentParser) -> None:
    """The simulation parameters as options (shared with `partisim exec`)."""
    group = parser.add_argument_group("parámetros de la simulación")
    for field, (option, text) in OPTIONS.items():
        flags = [SHORT_FLAGS[field], option] if field in SHORT_FLAGS else [option]
        group.add_argument(
            *flags,
            dest=field,
            type=_int if field in INT_FIELDS else _float,
            default=None,
            metavar="N" if field in INT_FIELDS else "X",
            help=text,
        )


def params_from_args(args: argparse.Namespace) -> SimParams:
    """Validated SimParams from the options given; errors name the option
    (``--particles: debe ser <= 1000000``)."""
    from partisim.sim import parse_params

    given = {f: getattr(args, f) for f in OPTIONS if getattr(args, f, None) is not None}
    try:
        return parse_params(given)
    except ParamsError as exc:
        raise exc.renamed({field: option for field, (option, _) in OPTIONS.items()}) from None


def print_summary(result: SimResult) -> None:
    from partisim.sim.numbers import duration, integer, significant

    console.print(f"[bold]Simulación completada[/] con el motor [cyan]{result.engine}[/]")
    console.print(
        f"  Partículas: {integer(result.particles)}   Pasos: {integer(result.steps)}   Semilla: {result.seed}"
    )
    if result.threads < result.threads_requested:
        from partisim.sim.engines import THREAD_REASON_TEXT

        why = THREAD_REASON_TEXT.get(result.threads_reason, result.threads_reason)
        console.print(f"  Hilos: {result.threads} de {result.threads_requested} pedidos ({why})")
    else:
        console.print(f"  Hilos: {result.threads}")
    console.print(f"  Colisiones partícula-partícula: {integer(result.particle_collisions)}")
    console.print(f"  Colisiones con pared: {integer(result.wall_collisions)}")
    console.print(f"  Tiempo de simulación: {duration(result.simulation_time)}")
    console.print(f"  Partículas-paso/s: {integer(round(result.particle_steps_per_s))}")
    console.print(f"  Energía cinética final: {significant(result.kinetic_energy, 6)}")
    console.print(f"  Checksum: {result.checksum}")


def _duration(seconds: float) -> str:
    """``45 s``, ``3 min 05 s``, ``2 h 07 min``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class _StepsBar:
    """A progress bar for a long run on a terminal: steps done, steps per second and
    time left. It appears only once the run looks longer than `SHOW_AFTER_S`, and
    leaves the screen when the run ends (the summary follows)."""

    SHOW_AFTER_S = 1.0

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, done: int, total: int, seconds: float) -> None:
        rate = done / seconds if seconds > 0 else 0.0
        if self._progress is None:
            left = (total - done) / rate if rate > 0 else float("inf")
            if done >= total or seconds + left < self.SHOW_AFTER_S:
                return
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._progress = Progress(
                TextColumn("Simulando"),
                BarColumn(bar_width=None),
                MofNCompleteColumn(),
                TextColumn("pasos"),
                TextColumn("{task.fields[rate]}"),
                console=console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("run", total=total, rate="")
        if self._task is not None:
            left = (total - done) / rate if rate > 0 else 0.0
            text = f"· {integer(round(rate))} pasos/s · quedan {_duration(left)}"
            self._progress.update(self._task, completed=done, rate=text)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def _run(args: argparse.Namespace) -> int:
    import sys

    from partisim.sim import coarse_step_warning, simulate

    try:
        params = params_from_args(args)
    except ParamsError as exc:
        return fail(exc.message)
    from partisim.sim import engine_threads

    used = engine_threads(args.engine, args.threads)
    if used < args.threads:
        warn(f"se pidieron {args.threads} hilos; se usan {used}, el máximo del motor {args.engine} en esta máquina")
    # advice only: it never changes what the engine computes
    warnings = [text for text in (coarse_step_warning(params),) if text]
    for text in warnings:
        warn(text)
    sample = RunSample(args.threads)
    if args.json or not sys.stdout.isatty():
        with sampling(sample):
            result = simulate(params, args.engine, threads=args.threads)
    else:
        # on a terminal the run goes in chunks of steps (same result) to show its progress
        bar = _StepsBar()
        try:
            with sampling(sample):
                result = simulate(params, args.engine, threads=args.threads, progress=bar)
        finally:
            bar.close()
    environment = _environment(sample, result)
    if args.json:
        try:  # strict JSON, or a clear error: never NaN/Infinity
            print(result.to_json(warnings=warnings, environment=environment.model_dump(mode="json")))
        except ParamsError as exc:
            return fail(exc.message)
    else:
        print_summary(result)
        if environment.contended:
            why = ", ".join(CONTENTION_TEXT[r] for r in environment.contended_by)
            warn(f"{CONTENDED_LABEL} ({why}): este tiempo puede no ser comparable con otros")
    return 0


def _environment(sample: RunSample, result: SimResult) -> Environment:
    """How and where this run was measured, as a worker records it for each result."""
    from partisim import __version__
    from partisim.sim import MODEL_VERSION
    from partisim.sim.engines import engine_build

    machine = machine_facts(partisim=__version__, model=MODEL_VERSION, engine_build=engine_build(), runner="process")
    return judge(
        sample,
        machine=machine,
        threads_requested=result.threads_requested,
        threads_used=result.threads,
        threads_reason=result.threads_reason,
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run", help=command_help("run"), description="Ejecuta una simulación de colisiones en esta máquina."
    )
    parser.add_argument(
        "--engine", "-e", choices=ENGINES, default="cython", help="motor de simulación (por defecto cython)"
    )
    add_param_options(parser)
    parser.add_argument(
        "--threads",
        "-t",
        type=positive_threads,
        default=1,
        metavar="N",
        help="hilos de cálculo (solo el motor cython los aprovecha; por defecto 1; "
        "se limita a los núcleos de esta máquina; el resultado es idéntico con cualquier número)",
    )
    parser.add_argument("--json", action="store_true", help="imprime un único objeto JSON con el resultado")
    parser.set_defaults(func=_run)
