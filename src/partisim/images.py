"""The Docker images of partisim, buildable without internet.

Two images come from the project folder: the simulation image (`Dockerfile`,
`particle-simulation:latest`, what the worker's Docker runner starts once per task)
and the worker image (`Dockerfile.worker`). Both install partisim from a
*wheelhouse*: a folder of wheels built on this machine with `pip wheel` (partisim
itself, its dependencies and its build requirements). A wheelhouse made once
online builds the images again and again offline, on this machine or on one without
internet it is carried to: `build_images(offline=True)` runs `docker build
--network none` with `OFFLINE=1`, so nothing can be downloaded.

The partisim wheel is rebuilt only when the source changed (a digest of the source
files is stored beside it), so an unchanged project gives byte-identical build
contexts and Docker's layer cache answers the whole build.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from partisim.defaults import SIM_IMAGE
from partisim.errors import ImageError

__all__ = [
    "SIM_IMAGE",
    "WORKER_IMAGE",
    "DEFAULT_BASE_IMAGE",
    "LOCAL_BASE_IMAGE",
    "TARGETS",
    "Wheelhouse",
    "ImageBuild",
    "find_project",
    "source_digest",
    "build_wheelhouse",
    "choose_base_image",
    "build_images",
]

log = logging.getLogger(__name__)

WORKER_IMAGE = "partisim-worker:latest"
DEFAULT_BASE_IMAGE = "python:3.12-slim"
#: what `.ci/docker.sh` imports from debootstrap where Docker Hub is not reachable
LOCAL_BASE_IMAGE = "partisim-base:bookworm"
#: target name -> (Dockerfile, default tag)
TARGETS: dict[str, tuple[str, str]] = {
    "simulation": ("Dockerfile", SIM_IMAGE),
    "worker": ("Dockerfile.worker", WORKER_IMAGE),
}

_STAMP = ".partisim-source"
_SOURCE_FILES = ("pyproject.toml", "setup.py", "README.md", "MANIFEST.in", "LICENSE")
_SKIP_DIRS = {"__pycache__", "build", "dist"}
_SKIP_SUFFIXES = (".pyc", ".pyo", ".so", ".pyd", ".c")  # .c: generated from the .pyx
_WHEEL_TAG = re.compile(
    r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$"
)


@dataclass(frozen=True)
class Wheelhouse:
    path: Path
    partisim_wheel: Path
    python_tag: str  # e.g. "cp311": the interpreter its compiled wheels fit
    wheels: int
    rebuilt: bool  # the partisim wheel was built now (source changed)


@dataclass(frozen=True)
class ImageBuild:
    target: str
    tag: str
    image_id: str
    seconds: float
    steps: int
    cached_steps: int
    removed: str | None = None  # id of the image this build replaced under `tag`, now deleted


# --------------------------------------------------------------------------- source


def find_project(start: Path | None = None) -> Path:
    """The project folder (pyproject.toml, Dockerfile, src/partisim) at or above `start`."""
    here = Path(__file__).resolve()
    candidates: list[Path] = []
    if start is not None:
        candidates += [start.resolve(), *start.resolve().parents]
    else:
        cwd = Path.cwd().resolve()
        candidates += [cwd, *cwd.parents, *here.parents]  # editable install: src/partisim/..
    for folder in candidates:
        if all((folder / name).exists() for name in ("pyproject.toml", "Dockerfile", "src/partisim")):
            return folder
    where = start or Path.cwd()
    raise ImageError(
        f"no se encontró el proyecto partisim (pyproject.toml, Dockerfile y src/partisim) "
        f"en {where} ni en sus carpetas superiores; use --project CARPETA",
        2,
    )


def _source_files(root: Path) -> list[Path]:
    files = [root / name for name in _SOURCE_FILES if (root / name).is_file()]
    for path in sorted((root / "src").rglob("*")):
        rel = path.relative_to(root)
        if (
            path.is_file()
            and not _SKIP_DIRS.intersection(rel.parts[:-1])
            and not path.name.endswith(_SKIP_SUFFIXES)
            and ".egg-info" not in str(rel)
        ):
            files.append(path)
    return files


def source_digest(root: Path) -> str:
    """sha256 over the names and contents of everything a partisim wheel is built from."""
    import hashlib  # loads OpenSSL: only here, not for every `partisim` command

    digest = hashlib.sha256()
    for path in _source_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


# --------------------------------------------------------------------------- wheelhouse


def _pip(args: Sequence[str], python: str) -> subprocess.CompletedProcess[str]:
    argv = [python, "-m", "pip", "--disable-pip-version-check", *args]
    log.debug("pip: %s", " ".join(argv))
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _build_requirements(root: Path) -> list[str]:
    if sys.version_info >= (3, 11):
        import tomllib

        with open(root / "pyproject.toml", "rb") as fh:
            return list(tomllib.load(fh).get("build-system", {}).get("requires", []))
    # Python 3.10 has no tomllib: the same list as pyproject.toml's [build-system], written out
    return ["setuptools>=68", "wheel", "Cython>=3.0,<4", "numpy>=1.26,<3"]


def _fill(wheelhouse: Path, requirements: Iterable[str], *, offline: bool, python: str, what: str) -> None:
    """Make sure wheels for `requirements` (and what they need) are in the wheelhouse."""
    reqs = list(requirements)
    local = ["wheel", "--no-index", "--find-links", str(wheelhouse), "-w", str(wheelhouse), *reqs]
    done = _pip(local, python)
    if done.returncode == 0:
        return  # everything already there: no index asked, nothing changes
    if offline:
        raise ImageError(
            f"--offline: faltan wheels de {what} en {wheelhouse}; créelos antes con conexión "
            f"('partisim images wheelhouse').\n{_tail(done.stderr or done.stdout, 6)}"
        )
    log.info("descargando wheels de %s", what)
    done = _pip(["wheel", "--find-links", str(wheelhouse), "-w", str(wheelhouse), *reqs], python)
    if done.returncode != 0:
        raise ImageError(f"pip no pudo obtener los wheels de {what}:\n{_tail(done.stderr or done.stdout)}")


def _wheel_python_tag(wheel: Path) -> str:
    match = _WHEEL_TAG.match(wheel.name)
    return match.group("py") if match else "?"


def build_wheelhouse(
    root: Path, wheelhouse: Path, *, offline: bool = False, python: str = sys.executable
) -> Wheelhouse:
    """Wheels for partisim and everything it needs, built for `python`.

    Offline, only what the wheelhouse already holds is used (the partisim wheel is
    still rebuilt from the current source, with its build requirements from there).
    """
    if wheelhouse.exists() and not wheelhouse.is_dir():
        raise ImageError(f"--wheelhouse: {wheelhouse} existe y no es una carpeta", 2)
    wheelhouse.mkdir(parents=True, exist_ok=True)
    digest = source_digest(root)
    stamp = wheelhouse / _STAMP
    current = sorted(wheelhouse.glob("partisim-*.whl"))
    rebuilt = False
    if len(current) != 1 or not stamp.is_file() or stamp.read_text().strip() != digest:
        for old in current:
            old.unlink()
        stamp.unlink(missing_ok=True)
        _fill(
            wheelhouse,
            _build_requirements(root),
            offline=offline,
            python=python,
            what="las herramientas de compilación",
        )
        log.info("compilando el wheel de partisim desde %s", root)
        # Build isolation installs the build requirements from the wheelhouse only.
        done = _pip(
            ["wheel", "--no-deps", "--no-index", "--find-links", str(wheelhouse), "-w", str(wheelhouse), str(root)],
            python,
        )
        if done.returncode != 0:
            raise ImageError(f"no se pudo compilar el wheel de partisim:\n{_tail(done.stderr or done.stdout)}")
        current = sorted(wheelhouse.glob("partisim-*.whl"))
        if len(current) != 1:
            raise ImageError(f"se esperaba un wheel de partisim en {wheelhouse} y hay {len(current)}")
        stamp.write_text(digest + "\n")
        rebuilt = True
    wheel = current[0]
    _fill(wheelhouse, [str(wheel)], offline=offline, python=python, what="las dependencias de partisim")
    return Wheelhouse(wheelhouse, wheel, _wheel_python_tag(wheel), len(list(wheelhouse.glob("*.whl"))), rebuilt)


# --------------------------------------------------------------------------- docker


def _docker_bin() -> str:
    binary = shutil.which("docker")
    if binary is None:
        raise ImageError("no se encontró el cliente 'docker' en el PATH; instale Docker primero")
    return binary


def _docker(args: Sequence[str], *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([_docker_bin(), *args], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ImageError(f"docker {args[0]} no respondió en {timeout:g} s") from None


def _require_engine() -> None:
    done = _docker(["version", "--format", "{{.Server.Version}}"], timeout=20)
    if done.returncode != 0 or not done.stdout.strip():
        raise ImageError(f"Docker no responde: {_tail(done.stderr, 2) or 'sin respuesta del demonio'}")


def _image_id(image: str) -> str | None:
    done = _docker(["image", "inspect", "--format", "{{.Id}}", image])
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def _image_exists(image: str) -> bool:
    return _image_id(image) is not None


def _remove_replaced(old_id: str | None, new_id: str) -> str | None:
    """Delete the image a rebuild took the tag from, so rebuilds do not pile up untagged
    images (about 0.5 GB each). Only an image left with no tag at all is deleted, with
    a plain ``docker image rm`` that also keeps one a container still uses. Returns the
    id when it was deleted."""
    if not old_id or old_id == new_id:
        return None
    tags = _docker(["image", "inspect", "--format", "{{len .RepoTags}}", old_id])
    if tags.returncode != 0 or tags.stdout.strip() != "0":
        return None  # gone already, or another tag still names it (rm by id would untag that)
    done = _docker(["image", "rm", old_id], timeout=120)
    if done.returncode != 0:
        log.info("imagen anterior %s conservada: %s", old_id[:19], _tail(done.stderr, 1))
        return None
    return old_id


def choose_base_image(requested: str | None) -> str:
    """The base image to build on: the one asked for; else python:3.12-slim when it is
    here; else the local debootstrap image when that is here (no Docker Hub needed);
    else python:3.12-slim, which Docker then pulls."""
    if requested:
        return requested
    if not _image_exists(DEFAULT_BASE_IMAGE) and _image_exists(LOCAL_BASE_IMAGE):
        return LOCAL_BASE_IMAGE
    return DEFAULT_BASE_IMAGE


def _base_python_tag(image: str) -> str | None:
    done = _docker(
        [
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "python3",
            image,
            "-c",
            "import sys; print('cp%d%d' % sys.version_info[:2])",
        ],
        timeout=120,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def _stage_context(root: Path, wheelhouse: Path, dest: Path) -> None:
    """A build context with exactly what the Dockerfiles use (the same bytes every time)."""
    for name in (*_SOURCE_FILES, "Dockerfile", "Dockerfile.worker"):
        if (root / name).is_file():
            shutil.copy2(root / name, dest / name)
    for path in _source_files(root):
        rel = path.relative_to(root)
        if rel.parts[0] == "src":
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / rel)
    # partisim's own wheel apart from the dependencies: the Dockerfiles install the
    # wheelhouse in an earlier layer, which then survives a change of partisim's source.
    wheels = dest / "wheelhouse"
    shutil.copytree(wheelhouse, wheels, ignore=shutil.ignore_patterns(_STAMP, "partisim-*.whl"))
    (dest / "dist").mkdir()
    for wheel in wheelhouse.glob("partisim-*.whl"):
        shutil.copy2(wheel, dest / "dist" / wheel.name)
    client = wheels / "bin" / "docker"
    if not client.exists():  # the worker image talks to the host's engine with this client
        client.parent.mkdir(exist_ok=True)
        shutil.copy2(os.path.realpath(_docker_bin()), client)
    for wheel in wheelhouse.glob("partisim-*.whl"):
        for library in _engine_libraries(wheel):  # e.g. libgomp, which slim bases lack
            (wheels / "lib").mkdir(exist_ok=True)
            shutil.copy2(library, wheels / "lib" / library.name)


# The C library's own parts: every base image has them, in its own version.
_GLIBC = re.compile(r"^(linux-vdso|ld-linux|libc|libm|libpthread|libdl|librt)\b")


def _engine_libraries(wheel: Path) -> list[Path]:
    """The shared libraries (beyond glibc) that the wheel's compiled engine loads here.

    The Dockerfiles copy them into the image when its base lacks them, so a wheel
    built with OpenMP runs in a base image without libgomp, offline too.
    """
    ldd = shutil.which("ldd")
    if ldd is None:  # not Linux: the images are built on the engine's machine anyway
        return []
    found: list[Path] = []
    with zipfile.ZipFile(wheel) as archive, tempfile.TemporaryDirectory(prefix="partisim-ldd-") as tmp:
        for member in archive.namelist():
            if not re.search(r"/_cython[^/]*\.so$", member):
                continue
            extension = Path(archive.extract(member, tmp))
            done = subprocess.run([ldd, str(extension)], capture_output=True, text=True, check=False)
            for line in done.stdout.splitlines():
                name, arrow, rest = line.strip().partition(" => ")
                path = rest.split(" (")[0]
                if arrow and not _GLIBC.match(name) and path.startswith("/"):
                    found.append(Path(path))  # named as the engine asks for it; copy2 follows links
    return found


def _run_build(
    target: str,
    tag: str,
    context: Path,
    *,
    base_image: str,
    offline: bool,
    network: str | None,
    no_cache: bool,
    log_file: Path | None,
) -> ImageBuild:
    dockerfile = TARGETS[target][0]
    argv = [
        _docker_bin(),
        "build",
        "-f",
        str(context / dockerfile),
        "-t",
        tag,
        "--build-arg",
        f"BASE_IMAGE={base_image}",
        "--build-arg",
        f"OFFLINE={int(offline)}",
    ]
    if offline or network:
        argv += ["--network", "none" if offline or network is None else network]
    if no_cache:
        argv.append("--no-cache")
    argv.append(str(context))
    env = dict(os.environ)
    env.setdefault("DOCKER_BUILDKIT", "0")  # the classic builder: same steps and cache on every engine
    started = time.monotonic()
    log.info("docker build %s (%s)", tag, dockerfile)
    previous = _image_id(tag)
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    if log_file is not None:
        with open(log_file, "a", encoding="utf-8") as fh:
            fh.write(f"$ {' '.join(argv)}\n{output}\n")
    if done.returncode != 0:
        raise ImageError(f"falló la construcción de {tag} ({dockerfile}):\n{_tail(output, 15)}")
    image_id = _image_id(tag) or ""
    steps = len(re.findall(r"^Step \d+/\d+ :", output, re.M))
    cached = output.count("---> Using cache")
    return ImageBuild(target, tag, image_id, seconds, steps, cached, _remove_replaced(previous, image_id))


def build_images(
    root: Path,
    *,
    wheelhouse: Path,
    base_image: str | None = None,
    offline: bool = False,
    targets: Sequence[str] = ("simulation", "worker"),
    tags: dict[str, str] | None = None,
    network: str | None = None,
    no_cache: bool = False,
    log_file: Path | None = None,
) -> tuple[str, Wheelhouse, list[ImageBuild]]:
    """Build the wheelhouse, then the images named in `targets`, in order.

    Returns the base image used, the wheelhouse and one `ImageBuild` per target.
    """
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ImageError(f"imagen desconocida: {', '.join(unknown)} (use {' o '.join(TARGETS)})", 2)
    _require_engine()
    base = choose_base_image(base_image)
    have_base = _image_exists(base)
    if offline and not have_base:
        raise ImageError(
            f"--offline: la imagen base {base} no está en este Docker y no se puede descargar. "
            f"Cárguela con 'docker load' desde otra máquina, indique otra con --base-image "
            f"o cree {LOCAL_BASE_IMAGE} con debootstrap (.ci/docker.sh)"
        )
    house = build_wheelhouse(root, wheelhouse, offline=offline)
    if have_base:
        base_tag = _base_python_tag(base)
        if base_tag and base_tag != house.python_tag:
            if offline:
                raise ImageError(
                    f"--offline: la imagen base {base} trae Python {base_tag} y el wheelhouse es para "
                    f"{house.python_tag} ({house.partisim_wheel.name}); use una base con el mismo Python "
                    f"o cree el wheelhouse con ese Python"
                )
            log.warning(
                "la base %s trae %s y el wheelhouse es %s: partisim se compilará dentro de la imagen",
                base,
                base_tag,
                house.python_tag,
            )
    builds = []
    with tempfile.TemporaryDirectory(prefix="partisim-context-") as tmp:
        context = Path(tmp)
        _stage_context(root, house.path, context)
        for target in targets:
            tag = (tags or {}).get(target) or TARGETS[target][1]
            builds.append(
                _run_build(
                    target,
                    tag,
                    context,
                    base_image=base,
                    offline=offline,
                    network=network,
                    no_cache=no_cache,
                    log_file=log_file,
                )
            )
    return base, house, builds
