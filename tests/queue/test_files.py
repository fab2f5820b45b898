"""write_atomic, atomic_writer, atomic_path: what users read (exports, reports, inbox
notes, animations) is never half-written, and gets the permissions any other file would."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from partisim.errors import OutputError
from partisim.files import atomic_path, atomic_writer, write_atomic


def test_writes_text_and_bytes_and_replaces_old_content(tmp_path: Path):
    target = tmp_path / "r.csv"
    target.write_text("viejo contenido mucho más largo que el nuevo\n", encoding="utf-8")
    write_atomic(target, "engine,checksum\ncython,ñ\n")
    assert target.read_text(encoding="utf-8") == "engine,checksum\ncython,ñ\n"
    write_atomic(target, b"\x89PNG")
    assert target.read_bytes() == b"\x89PNG"
    assert os.listdir(tmp_path) == ["r.csv"]  # no temporary sibling left behind


def test_missing_folder_is_a_clear_error(tmp_path: Path):
    target = tmp_path / "no-existe" / "r.csv"
    with pytest.raises(OutputError) as info:
        write_atomic(target, "x")
    assert str(target) in info.value.message and "no se pudo escribir" in info.value.message


def test_failed_replace_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path):
    # a directory in the way makes the final rename fail after the data was written
    target = tmp_path / "informe.png"
    target.mkdir()
    (target / "dentro.txt").write_text("intacto", encoding="utf-8")
    with pytest.raises(OutputError):
        write_atomic(target, b"datos nuevos")
    assert (target / "dentro.txt").read_text(encoding="utf-8") == "intacto"
    assert sorted(os.listdir(tmp_path)) == ["informe.png"]


@pytest.fixture
def umask() -> Iterator[None]:
    before = os.umask(0o027)
    yield
    os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(os.name != "posix", reason="modos POSIX")
def test_a_new_file_gets_the_umask_mode_and_a_replaced_one_keeps_its_own(tmp_path: Path, umask: None):
    # the hidden sibling is private (mkstemp: 0600); the file users get must not be
    report, export = tmp_path / "informe.png", tmp_path / "todo.csv"
    write_atomic(report, b"\x89PNG")
    with atomic_writer(export) as handle:
        handle.write("a,b\n")
    assert (_mode(report), _mode(export)) == (0o640, 0o640)  # 0666 under the umask 027
    os.umask(0o022)
    write_atomic(tmp_path / "otro.csv", "x")
    assert _mode(tmp_path / "otro.csv") == 0o644
    report.chmod(0o604)  # a mode the user chose is kept when the file is written again
    write_atomic(report, b"nuevo")
    assert (_mode(report), report.read_bytes()) == (0o604, b"nuevo")


def test_a_block_that_fails_leaves_the_old_file_and_no_sibling(tmp_path: Path):
    target = tmp_path / "sim.mp4"
    target.write_bytes(b"pelicula anterior")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as hidden:
        # the sibling keeps the suffix: writers that choose their format by the name
        # (ffmpeg) choose the target's
        assert hidden.parent == tmp_path and hidden.name.startswith(".sim.mp4.") and hidden.suffix == ".mp4"
        hidden.write_bytes(b"media pelicula")
        raise KeyboardInterrupt
    with pytest.raises(OutputError) as info, atomic_writer(target) as handle:
        handle.write("a medias")
        raise OSError(28, "No space left on device")
    assert str(target) in info.value.message
    assert target.read_bytes() == b"pelicula anterior"
    assert os.listdir(tmp_path) == ["sim.mp4"]
