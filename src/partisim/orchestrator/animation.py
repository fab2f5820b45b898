"""The particle animation as a file (``partisim animate``): frames recorded from a real
engine (`partisim.sim.frames`), drawn with matplotlib's animation module.

GIF through Pillow (always present with matplotlib); MP4 through ffmpeg, only where
ffmpeg is installed. The box is drawn to scale with every disk at its true radius;
the title carries the step and both collision counters of each frame.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from partisim.errors import OutputError
from partisim.files import atomic_path
from partisim.sim.frames import Recording
from partisim.sim.numbers import count, integer, significant

__all__ = ["Written", "FORMATS", "animation_format", "write_animation"]

#: file extension -> what writes it
FORMATS = {".gif": "pillow", ".mp4": "ffmpeg"}


@dataclass(frozen=True)
class Written:
    path: Path
    frames: int
    fps: int


def animation_format(path: Path) -> str:
    """The writer for ``path`` from its extension; a Spanish error for anything else,
    or for ``.mp4`` without ffmpeg. Checked before the simulation runs."""
    suffix = path.suffix.lower()
    writer = FORMATS.get(suffix)
    if writer is None:
        raise OutputError(f"formato de animación desconocido «{path.suffix or path.name}»: use .gif o .mp4")
    if writer == "ffmpeg" and shutil.which("ffmpeg") is None:
        raise OutputError(
            "no se encontró ffmpeg en esta máquina, así que no se puede escribir un .mp4; "
            "instálelo (por ejemplo: apt install ffmpeg) o use -o sim.gif"
        )
    if not path.parent.exists():
        raise OutputError(f"la carpeta {path.parent} no existe")
    return writer


def _title(rec: Recording, frame: int) -> str:
    return (
        f"Paso {integer(rec.steps[frame])} de {integer(rec.params.steps)} · colisiones: "
        f"partícula {integer(rec.particle_collisions[frame])}, pared {integer(rec.wall_collisions[frame])}"
    )


def _last_line(output: bytes | str | None) -> str:
    """The last thing ffmpeg said, as ``": ..."``, or nothing."""
    text = output.decode(errors="replace") if isinstance(output, bytes) else output or ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f": {lines[-1]}" if lines else ""


def write_animation(rec: Recording, path: Path, fps: int = 20, dpi: int = 100) -> Written:
    """Write every frame of ``rec`` to ``path`` (.gif or .mp4)."""
    writer_name = animation_format(path)
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt
    from matplotlib import animation
    from matplotlib.collections import EllipseCollection
    from matplotlib.patches import Rectangle

    p = rec.params
    aspect = p.height / p.width
    width_in = 6.4
    fig, ax = plt.subplots(figsize=(width_in, max(2.4, min(9.0, width_in * aspect + 0.9))), dpi=dpi)
    try:
        ax.set_xlim(0, p.width)
        ax.set_ylim(0, p.height)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.add_patch(Rectangle((0, 0), p.width, p.height, fill=False, linewidth=1.5, edgecolor="#164e63"))
        x, y = rec.positions_in_box(0)
        offsets = list(zip(x.tolist(), y.tolist(), strict=True))
        diameter = 2.0 * p.radius
        disks = EllipseCollection(
            widths=diameter,
            heights=diameter,
            angles=0.0,
            units="xy",
            offsets=offsets,
            offset_transform=ax.transData,
            facecolors="#0891b2",
            edgecolors="#164e63",
            linewidths=0.3,
        )
        ax.add_collection(disks)
        title = ax.set_title(_title(rec, 0), fontsize=10)
        drawn = count(p.particles, "partícula", "partículas")
        if rec.sampled:
            drawn = f"muestra: {integer(rec.drawn)} de {drawn} (una de cada {rec.stride})"
        what = f"{rec.engine} · {drawn}"
        ax.set_xlabel(f"{what} · caja {significant(p.width, 6)} × {significant(p.height, 6)}", fontsize=8)
        fig.tight_layout()

        def draw(frame: int) -> tuple[EllipseCollection]:
            fx, fy = rec.positions_in_box(frame)
            disks.set_offsets(list(zip(fx.tolist(), fy.tolist(), strict=True)))
            title.set_text(_title(rec, frame))
            return (disks,)

        movie = animation.FuncAnimation(fig, draw, frames=rec.frames, interval=1000 / fps, blit=False)
        writer = animation.PillowWriter(fps=fps) if writer_name == "pillow" else animation.FFMpegWriter(fps=fps)
        # a hidden sibling renamed at the end: Ctrl-C or a failing ffmpeg leaves no half movie
        # matplotlib would also log ffmpeg's output on a failure: the error below says it once
        quiet = logging.getLogger("matplotlib.animation")
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            with atomic_path(path) as hidden:
                movie.save(str(hidden), writer=writer, dpi=dpi)
        except subprocess.CalledProcessError as exc:  # matplotlib's word for "ffmpeg failed"
            raise OutputError(
                f"ffmpeg falló al escribir {path} (código {exc.returncode}){_last_line(exc.stderr)}"
            ) from None
        finally:
            quiet.setLevel(level)
    finally:
        plt.close(fig)
    return Written(path=path, frames=rec.frames, fps=fps)
