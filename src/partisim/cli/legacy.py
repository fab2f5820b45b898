"""The users' original scripts, `benchmark.py` and `benchmark_cython.py`.

Positional N STEPS SEED (defaults 100 1000 42) and the output lines their
existing tooling reads; exit code 1 with a Spanish message on bad input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from partisim.cli import _spanish
from partisim.errors import ParamsError
from partisim.sim import parse_params, simulate

__all__ = ["main"]

_POSITIONALS = (("particles", "NUM_PARTICULAS", 100), ("steps", "NUM_PASOS", 1000), ("seed", "SEMILLA", 42))


def _parser(prog: str, engine: str) -> argparse.ArgumentParser:
    _spanish.install()
    parser = argparse.ArgumentParser(
        prog=prog,
        description=f"Benchmark de colisiones de partículas (motor {engine}).",
        epilog=f"Ejemplo: python {prog} 500 2000 7",
    )
    for field, alias, default in _POSITIONALS:
        parser.add_argument(
            field, nargs="?", default=str(default), metavar=alias, help=f"entero > 0 (por defecto {default})"
        )
    parser.add_argument("--json", action="store_true", help="imprime el resultado como un objeto JSON")
    return parser


def main(engine: str, argv: Sequence[str] | None = None, prog: str = "benchmark.py") -> int:
    args = _parser(prog, engine).parse_args(argv)
    values: dict[str, int] = {}
    for field, alias, _ in _POSITIONALS:
        raw = getattr(args, field)
        try:
            value = int(raw)
        except ValueError:
            print(f"Error: {alias} debe ser un número entero, se recibió {raw!r}", file=sys.stderr)
            return 1
        if value <= 0:
            print(f"Error: {alias} debe ser mayor que 0, se recibió {value}", file=sys.stderr)
            return 1
        values[field] = value
    try:
        params = parse_params(values)
    except ParamsError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
    if not args.json:
        print(
            f"Iniciando simulación ({engine}): {params.particles} "
            f"{'partícula' if params.particles == 1 else 'partículas'}, "
            f"{params.steps} {'paso' if params.steps == 1 else 'pasos'}, semilla {params.seed}"
        )
    result = simulate(params, engine)
    if args.json:
        try:
            print(result.to_json())  # strict JSON: never NaN/Infinity
        except ParamsError as exc:
            print(f"Error: {exc.message}", file=sys.stderr)
            return 1
        return 0
    print(f"Simulación completada en {result.simulation_time:.4f} segundos")
    print(f"Total colisiones Partícula-Partícula: {result.particle_collisions}")
    print(f"Total colisiones con Pared: {result.wall_collisions}")
    print(f"Partículas-paso por segundo: {result.particle_steps_per_s:.0f}")
    print(f"Checksum: {result.checksum}")
    return 0
