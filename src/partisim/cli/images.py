"""`partisim images`: the wheelhouse and the Docker images, online or offline."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from partisim.cli import _spanish
from partisim.cli._commands import command_help
from partisim.cli._output import console, fail

__all__ = ["register"]

_EPILOG = """\
Ejemplos:
  partisim images build                         # wheelhouse + las dos imágenes
  partisim images build --offline --base-image partisim-base:bookworm
  partisim images wheelhouse                    # solo los wheels (con conexión)
  partisim images build --only simulation

Sin internet: cree el wheelhouse en una máquina con conexión (con el mismo Python que
la imagen base), cópielo junto al proyecto y use --offline: la construcción corre con
'docker build --network none' e instala todo desde el wheelhouse. La imagen base debe
estar ya en Docker (docker load, o partisim-base:bookworm creada con debootstrap).
"""


def _wheelhouse_path(args: argparse.Namespace, root: Path) -> Path:
    return Path(args.wheelhouse) if args.wheelhouse else root / "wheelhouse"


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


def _wheelhouse(args: argparse.Namespace) -> int:
    from partisim.errors import ImageError
    from partisim.images import build_wheelhouse, find_project

    _setup_logging(args.verbose)
    try:
        root = find_project(Path(args.project) if args.project else None)
        house = build_wheelhouse(root, _wheelhouse_path(args, root), offline=args.offline)
    except ImageError as exc:
        return fail(exc.message, exc.code)
    state = "recompilado" if house.rebuilt else "sin cambios"
    console.print(
        f"Wheelhouse listo: {house.wheels} wheels en {house.path} (partisim {state}, Python {house.python_tag})"
    )
    return 0


def _build(args: argparse.Namespace) -> int:
    from partisim.errors import ImageError
    from partisim.images import TARGETS, build_images, find_project

    _setup_logging(args.verbose)
    targets = [args.only] if args.only else list(TARGETS)
    tags = {"simulation": args.sim_tag, "worker": args.worker_tag}
    try:
        root = find_project(Path(args.project) if args.project else None)
        base, house, builds = build_images(
            root,
            wheelhouse=_wheelhouse_path(args, root),
            base_image=args.base_image,
            offline=args.offline,
            targets=targets,
            tags={k: v for k, v in tags.items() if v},
            network=args.network,
            no_cache=args.no_cache,
            log_file=Path(args.log) if args.log else None,
        )
    except ImageError as exc:
        return fail(exc.message, exc.code)
    mode = "sin conexión (--network none)" if args.offline else "con conexión"
    state = "recompilado" if house.rebuilt else "sin cambios"
    console.print(f"Imagen base: {base}; construcción {mode}")
    console.print(f"Wheelhouse: {house.wheels} wheels en {house.path} (partisim {state}, Python {house.python_tag})")
    for b in builds:
        console.print(
            f"Imagen [bold]{b.tag}[/] lista en {b.seconds:.1f} s "
            f"({b.cached_steps} de {b.steps} pasos desde la caché) {b.image_id[:19]}"
        )
        if b.removed:
            console.print(f"  imagen anterior {b.removed[:19]} eliminada")
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--project", metavar="CARPETA", help="carpeta del proyecto (por defecto: la actual o una superior)"
    )
    parser.add_argument(
        "--wheelhouse", metavar="CARPETA", help="carpeta de wheels (por defecto CARPETA_DEL_PROYECTO/wheelhouse)"
    )
    parser.add_argument(
        "--offline", action="store_true", help="no descargar nada: solo lo que ya está en el wheelhouse"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="muestra cada paso")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "images",
        help=command_help("images"),
        description="Construye el wheelhouse (wheels de partisim y sus dependencias) y las imágenes "
        "Docker particle-simulation:latest (Dockerfile) y partisim-worker:latest "
        "(Dockerfile.worker).",
        epilog=_EPILOG,
        formatter_class=_spanish.TextFormatter,
    )
    actions = parser.add_subparsers(dest="images_command", metavar="ACCIÓN", title="acciones")

    def usage(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=usage)

    wheels = actions.add_parser(
        "wheelhouse",
        help="solo crea o actualiza el wheelhouse",
        description="Crea o actualiza el wheelhouse con pip wheel.",
    )
    _common(wheels)
    wheels.set_defaults(func=_wheelhouse)

    build = actions.add_parser(
        "build",
        help="wheelhouse y luego las imágenes",
        description="Crea el wheelhouse y construye las imágenes con docker build.",
        epilog=_EPILOG,
        formatter_class=_spanish.TextFormatter,
    )
    _common(build)
    build.add_argument(
        "--base-image",
        metavar="IMAGEN",
        help="imagen base (por defecto python:3.12-slim; si no está y sí partisim-base:bookworm, esa)",
    )
    build.add_argument("--only", choices=("simulation", "worker"), help="construye solo esa imagen")
    build.add_argument("--sim-tag", metavar="ETIQUETA", help="etiqueta de la imagen de simulación")
    build.add_argument("--worker-tag", metavar="ETIQUETA", help="etiqueta de la imagen del worker")
    build.add_argument("--network", metavar="MODO", help="red de docker build (con --offline siempre none)")
    build.add_argument("--no-cache", action="store_true", help="ignora la caché de capas de Docker")
    build.add_argument("--log", metavar="ARCHIVO", help="añade la salida completa de docker build a ARCHIVO")
    build.set_defaults(func=_build)
