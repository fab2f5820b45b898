"""`partisim animate`: the GIF holds the frames it promises (a real process), drawn from
the run `partisim run` does; wrong outputs get a Spanish error and no traceback, and the
MP4 cases run in this process (`helpers.cli.run_cli`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from helpers.cli import run_cli
from helpers.requirements import unavailable
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
ARGS = ("--particles", "60", "--steps", "45", "--seed", "4", "--width", "200", "--height", "120", "--dt", "0.2")


def partisim(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "partisim", *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env
    )


def partisim_here(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``partisim *args`` in this process (``env``: variables set for the call)."""
    return run_cli(*args, cwd=ROOT, env=env)


def test_gif_has_the_frames_it_promises(tmp_path: Path) -> None:
    out = tmp_path / "sim.gif"
    done = partisim("animate", *ARGS, "--frames", "12", "--fps", "10", "-o", str(out))
    assert done.returncode == 0, done.stderr
    promised = int(re.search(r"(\d+) fotogramas", done.stdout).group(1))
    # k = ceil(45 / 11) = 5: steps 0, 5, ..., 45
    assert promised == 10
    assert "Un fotograma cada 5 pasos" in done.stdout
    with Image.open(out) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == promised
        assert gif.info.get("duration") == 100  # 10 frames a second
        assert gif.size[0] > gif.size[1]  # the box is wider than tall, and drawn so
    # the same run as `partisim run`
    plain = json.loads(partisim_here("run", *ARGS, "--json").stdout)
    assert f"Checksum: {plain['checksum']}" in done.stdout
    assert f"Colisiones partícula-partícula: {plain['particle_collisions']}" in done.stdout


def test_wrong_outputs_are_refused_in_spanish(tmp_path: Path) -> None:
    bad = partisim_here("animate", *ARGS, "-o", str(tmp_path / "sim.avi"))
    assert bad.returncode == 2 and "formato de animación desconocido «.avi»: use .gif o .mp4" in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = partisim_here("animate", *ARGS, "-o", str(tmp_path / "no-existe" / "sim.gif"))
    assert missing.returncode == 2 and "no existe" in missing.stderr and "Traceback" not in missing.stderr
    frames = partisim_here("animate", *ARGS, "--frames", "1", "-o", str(tmp_path / "a.gif"))
    assert frames.returncode == 2 and "--frames" in frames.stderr and "debe estar entre 2 y 2000" in frames.stderr
    params = partisim_here("animate", "--particles", "0", "-o", str(tmp_path / "a.gif"))
    assert params.returncode == 2 and "--particles" in params.stderr and "Traceback" not in params.stderr


def test_mp4_without_ffmpeg_says_so(tmp_path: Path) -> None:
    # a PATH that holds only this Python: ffmpeg cannot be found there, installed or not
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "python").symlink_to(sys.executable)
    done = partisim_here("animate", *ARGS, "-o", str(tmp_path / "sim.mp4"), env={"PATH": str(bare)})
    assert done.returncode == 2
    assert "no se encontró ffmpeg" in done.stderr and "-o sim.gif" in done.stderr
    assert not (tmp_path / "sim.mp4").exists()


def test_ffmpeg_failing_midway_is_an_error_and_leaves_no_file(tmp_path: Path) -> None:
    # an ffmpeg that takes some frames, then fails as a full disk would
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ffmpeg"
    fake.write_text('#!/bin/sh\nhead -c 200000 >/dev/null\necho "sin espacio en el disco" >&2\nexit 1\n')
    fake.chmod(0o755)
    out = tmp_path / "sim.mp4"
    out.write_bytes(b"la anterior")
    done = partisim(
        "animate", *ARGS, "-o", str(out), env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    )
    assert done.returncode == 2, done.stderr
    assert f"ffmpeg falló al escribir {out} (código 1): sin espacio en el disco" in done.stderr
    assert "Traceback" not in done.stderr and "MovieWriter" not in done.stderr  # said once, in Spanish
    assert out.read_bytes() == b"la anterior" and sorted(p.name for p in tmp_path.iterdir()) == ["bin", "sim.mp4"]


def test_mp4_with_ffmpeg(tmp_path: Path) -> None:
    if shutil.which("ffmpeg") is None:
        unavailable(
            "ffmpeg", "sin ffmpeg en esta máquina: `apt-get install ffmpeg` (el caso sin ffmpeg se prueba aparte)"
        )
    out = tmp_path / "sim.mp4"
    done = partisim_here("animate", *ARGS, "--frames", "6", "-o", str(out))
    assert done.returncode == 0, done.stderr
    promised = int(re.search(r"(\d+) fotogramas", done.stdout).group(1))
    probe = ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries"]
    counted = subprocess.run(
        [*probe, "stream=nb_read_frames", "-of", "csv=p=0", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert int(counted) == promised == 6
