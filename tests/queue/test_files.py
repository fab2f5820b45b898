"""write_atomic: what users read (exports, reports, inbox notes) is never half-written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from partisim.errors import OutputError
from partisim.files import write_atomic


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
