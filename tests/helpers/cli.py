"""`partisim` in this process: the answer of a real `python -m partisim ...` without the
interpreter's start-up (0.2-0.5 s a command on the test machine).

    from helpers.cli import run_cli

    out = run_cli("run", "--particles", "0", env={"COLUMNS": "80"})
    assert out.returncode == 2 and "--particles" in out.stderr

`run_cli` returns a `subprocess.CompletedProcess[str]`, as `subprocess.run(...,
capture_output=True, text=True)` would: a test moves between both by changing one call.
For argument errors, messages, exit codes and output formats. What needs a process of its
own keeps one: a closed pipe, signals, Ctrl-C, a listening server's banner, the start-up
refusals of `serve` and `worker`, anything that writes to the file descriptors directly.

Around each call the process is put back as it was: the environment (the call sees this
process's environment without PARTISIM_* and WORKER_ID, plus ``env``, as
`helpers.processes.clean_env` gives a subprocess), the working directory, the standard
streams, the root logger's handlers and level (and those of the libraries the CLI sets),
the signal handlers, argparse's message function, and the CLI's rich consoles, which
are made again on their next use so that each call reads its own COLUMNS and streams.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from helpers.processes import clean_env

__all__ = ["run_cli"]

#: loggers whose level or handlers a command may set (`--verbose`, the log handler)
_LOGGERS = ("", "partisim", "httpx", "httpcore", "uvicorn", "uvicorn.error", "uvicorn.access")
_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGPIPE", "SIGUSR1") if hasattr(signal, name)
)


class _Stream(io.TextIOWrapper):
    """A text stream over bytes, as a pipe is (with ``.buffer``), never a terminal."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", errors="backslashreplace", write_through=True)

    def text(self) -> str:
        self.flush()
        raw = self.buffer
        assert isinstance(raw, io.BytesIO)
        # as `subprocess.run(text=True)` reads a pipe: universal newlines
        return raw.getvalue().decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")


def _reset_consoles() -> None:
    from partisim.cli import _output

    for lazy in (_output.console, _output.err_console):
        lazy._console = None  # type: ignore[attr-defined]


@contextmanager
def _restored(env: Mapping[str, str | None], cwd: str | Path | None) -> Iterator[None]:
    # its import sets GOMP_SPINCOUNT, once per process, before OpenMP loads: imported before
    # the snapshot, so that restoring the environment keeps what the module set
    import partisim.sim.engines  # noqa: F401

    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_streams = (sys.stdin, sys.stdout, sys.stderr)
    saved_logs = {name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers)) for name in _LOGGERS}
    saved_signals = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    saved_translate = argparse._  # type: ignore[attr-defined]
    try:
        os.environ.clear()
        os.environ.update(clean_env(**env))
        if cwd is not None:
            os.chdir(cwd)
        _reset_consoles()
        yield
    finally:
        _reset_consoles()
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        argparse._ = saved_translate  # type: ignore[attr-defined]
        for sig, handler in saved_signals.items():
            if handler is not None:
                signal.signal(sig, handler)
        for name, (level, handlers) in saved_logs.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.handlers[:] = handlers
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def _exit_code(exc: SystemExit, stderr: io.TextIOBase) -> int:
    """The code the interpreter would exit with for ``exc``."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=stderr)
    return 1


def run_cli(
    *argv: str,
    env: Mapping[str, str | None] | None = None,
    cwd: str | Path | None = None,
    input: str = "",
    entry: Callable[[list[str]], int] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``partisim *argv`` through `partisim.cli.main` in this process, its output captured.

    ``env``: variables set (None: removed) over this environment without PARTISIM_* and
    WORKER_ID. ``input``: what the command reads on stdin (empty: as from /dev/null).
    ``entry``: another main taking the arguments (a users' script's `legacy.main`).
    """
    from partisim.cli import main

    call = entry or main

    out, err = _Stream(), _Stream()
    with _restored(env or {}, cwd):
        sys.stdin, sys.stdout, sys.stderr = io.StringIO(input), out, err
        try:
            code = call(list(argv))
        except SystemExit as exc:
            code = _exit_code(exc, err)
        except Exception:  # what the interpreter would print before exiting with 1
            traceback.print_exc(file=err)
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
    return subprocess.CompletedProcess(["partisim", *argv], code, out.text(), err.text())
