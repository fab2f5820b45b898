"""A command on a pseudo-terminal, for what only happens on a terminal (Ctrl-C as
SIGINT, progress bars, prompts without echo).

    from helpers.terminal import PtySession

    session = PtySession(["orchestrator", "--config", str(config)])
    session.expect("Elija una opción")
    session.send("1\\r")
"""

from __future__ import annotations

import codecs
import os
import re
import struct
import subprocess
import sys
import time
from pathlib import Path

from helpers.processes import clean_env

__all__ = ["ANSI", "PtySession", "clean", "ROOT", "TERMINAL_ENV"]

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\r")
TERMINAL_ENV = clean_env(NO_COLOR="1", PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")


def clean(text: str) -> str:
    """Output without ANSI escapes or carriage returns."""
    return ANSI.sub("", text)


class PtySession:
    """A command on a pseudo-terminal: ``expect`` output, ``send`` keystrokes.

    The child is a session leader with the pty as controlling terminal, so a
    ``\\x03`` written here reaches it as SIGINT, as from a real keyboard.
    """

    @staticmethod
    def default_env() -> dict[str, str]:
        return dict(TERMINAL_ENV)

    def __init__(
        self, args: list[str], *, env: dict[str, str] | None = None, columns: int = 200, cwd: Path | None = None
    ) -> None:
        import fcntl
        import pty
        import termios

        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))

        def claim_terminal() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        cmd = (
            [sys.executable, str(ROOT / args[0]), *args[1:]]
            if args[0].endswith(".py")
            else [sys.executable, "-m", "partisim", *args]
        )
        self.proc = subprocess.Popen(
            cmd,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd or ROOT,
            env={**(env or TERMINAL_ENV), "COLUMNS": str(columns), "TERM": "xterm"},
            preexec_fn=claim_terminal,  # noqa: PLW1509 (the child must own the terminal before exec)
            close_fds=True,
        )
        os.close(slave)
        self.master = master
        self.buffer = ""
        self.cursor = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def expect(self, text: str, timeout: float = 30.0) -> str:
        """Read until ``text`` appears after the previous match (ANSI stripped);
        return everything read so far."""
        import select

        deadline = time.monotonic() + timeout
        while (found := clean(self.buffer).find(text, self.cursor)) < 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} not seen; output so far:\n{clean(self.buffer)}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"{text!r} not seen before exit:\n{clean(self.buffer)}")
                self.buffer += self._decoder.decode(chunk)
        self.cursor = found + len(text)
        return clean(self.buffer)

    def send(self, data: str) -> None:
        os.write(self.master, data.encode())

    def wait(self, timeout: float = 30.0) -> int:
        """Drain the output until the child exits; return its exit code."""
        import select

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if not ready:
                if self.proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            self.buffer += self._decoder.decode(chunk)
        return self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
