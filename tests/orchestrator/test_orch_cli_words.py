"""What the command line says when a word is wrong (issue 24 §4): a guess never names a
command that opens a port. The commands run in this process (`run_here`), except the
warning on a terminal (a pseudo-terminal session)."""

from __future__ import annotations

import argparse
import re
import subprocess

import pytest
from helpers.config import write_config
from helpers.processes import HOST_A, HOST_B, free_port_on
from orch_support import PtySession, assert_clean_exit, clean, run_here


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_here(list(args))


@pytest.mark.parametrize("word", ["workers", "wroker", "workr"])
def test_a_word_close_to_worker_suggests_the_listing_command(word):
    done = _cli(word)
    assert done.returncode == 2
    assert "«ping»" in done.stderr and "«worker»" not in done.stderr, done.stderr


def test_a_word_close_to_a_listing_command_is_still_suggested():
    done = _cli("staus")
    assert done.returncode == 2 and "¿quiso decir «status»?" in done.stderr


def test_ping_and_status_at_60_columns_lose_no_word(pair, tmp_path) -> None:
    config = write_config(
        tmp_path / "config_workers.json",
        [
            ("worker-01", HOST_A, pair.port),
            ("worker-02", HOST_B, pair.port),
            ("worker-muerto", HOST_B, free_port_on(HOST_B)),
        ],
    )
    ping, status = (run_here([c, "--config", str(config)], env={"COLUMNS": "60"}) for c in ("ping", "status"))
    for proc in (ping, status):
        assert_clean_exit(proc, 0)
        wide = [line for line in proc.stdout.splitlines() if len(line) > 60]
        assert wide == [], "\n".join(wide)
        assert f"{HOST_B}:{pair.port}" in proc.stdout or proc is status  # an address, whole on one line
        assert "…" not in proc.stdout
    words = " ".join(status.stdout.split())
    for text in ("ACTIVO", "worker-01", "worker-02", "worker-muerto", "Imagen Docker que busca cada worker"):
        assert text in words, (text, status.stdout)
    assert "conexión rechazada (nada escucha en ese puerto)" in " ".join(ping.stdout.split())


@pytest.mark.parametrize("command", [("worker",), ("images", "build"), ("serve",), ("results",)])
def test_help_wraps_at_words_to_the_terminal(command) -> None:
    done = run_here([*command, "--help"], env={"COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line for line in lines if len(line) > 80] == []
    assert not any(line.rstrip().endswith("-") for line in lines)  # no word split at a hyphen
    # placeholders in Spanish (the variables' own names, PARTISIM_PORT..., stay as they are)
    assert re.findall(r"--[a-z-]+ (?:PATH|FILE|CAPACITY|HOST|PORT|SIZE|TIMEOUT)\b", done.stdout) == []


def test_aviso_wraps_at_words_on_a_terminal() -> None:
    from partisim.sim import parse_params
    from partisim.sim.theory import coarse_step_warning

    text = coarse_step_warning(parse_params({"particles": 1000, "steps": 5, "dt": 0.8}))
    assert text is not None and len(text) > 120
    session = PtySession(["run", "-n", "1000", "-s", "5", "--dt", "0,8"], columns=60)
    try:
        assert session.wait(60) == 0
        out = clean(session.buffer)
    finally:
        session.close()
    lines = out.split("AVISO:", 1)[1].split("Simulación completada")[0].splitlines()
    assert all(len(line) <= 60 for line in lines), lines
    words = [w for line in lines for w in line.split()]
    assert words == text.split(), (words, text)  # every word whole, in order


@pytest.mark.parametrize("columns", [80, 60])
def test_every_command_help_fits_the_terminal(columns, monkeypatch) -> None:
    """Every line of every command's help, usage and examples included, within the width
    (a long example is continued with a backslash, never cut)."""
    from partisim.cli import build_parser
    from partisim.cli._commands import COMMANDS

    monkeypatch.setenv("COLUMNS", str(columns))
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    wide: list[str] = []
    for name in COMMANDS:
        text = subcommands.choices[name].format_help()
        wide += [f"{name}: {line}" for line in text.splitlines() if len(line) > columns]
        assert not any(line.rstrip().endswith("-") for line in text.splitlines()), name
    wide += [f"partisim: {line}" for line in parser.format_help().splitlines() if len(line) > columns]
    assert wide == [], "\n".join(wide)
