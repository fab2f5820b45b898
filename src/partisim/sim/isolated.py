"""Run one simulation in a child process that can be killed: at its deadline, or as
soon as whoever asked for it stops waiting.

A thread cannot be stopped from outside; a process can. This module keeps warm child
processes (``python -m partisim.sim.isolated``, every engine already imported), hands
each run to an idle one and waits for the answer in short slices: past the deadline, or
as soon as ``should_stop()`` says so (or `stop` is called from another thread), the child
is killed and the run says why. A killed child is replaced in the background, so the
caller is free for its next run at once.

It imports nothing but the standard library and `partisim.sim`, so any host can use it:
partisim's tasks on Dask workers do. Children are plain subprocesses, not
multiprocessing ones: a Dask worker is a daemonic process, and multiprocessing forbids
those to have children. Each child watches its parent and exits when the parent is
gone, even when the parent was killed with SIGKILL.
"""

from __future__ import annotations

import atexit
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Literal

from partisim.errors import PartisimError
from partisim.sim.params import SimParams
from partisim.sim.result import SimResult

__all__ = ["IsolatedRun", "RunStatus", "run_isolated", "stop", "running_pid", "prewarm", "STOP_CHECK_S"]

#: how often a waiting run looks at its deadline and at ``should_stop``
STOP_CHECK_S = 0.05
#: longest wait for a new child to import the engines and say it is ready
SPAWN_TIMEOUT_S = 120.0

RunStatus = Literal["success", "timeout", "cancelled", "invalid", "failed"]
_HEADER = struct.Struct(">I")


@dataclass(frozen=True)
class IsolatedRun:
    """What came of one run: the result, or why there is none (a Spanish message).

    ``invalid``: the engine refused the parameters (retrying will not help);
    ``failed``: the child crashed or could not start (another try may work)."""

    status: RunStatus
    result: SimResult | None = None
    message: str = ""
    elapsed: float = 0.0  # seconds from handing the run over to its answer
    pid: int | None = None  # the child that ran it (gone if it was killed)


# -- framing: a 4-byte length, then a pickle -----------------------------------------


def _send(stream: IO[bytes], obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read_exact(stream: IO[bytes], size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None  # end of stream (the other side is gone)
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _recv(stream: IO[bytes]) -> Any:
    """The next message, or None when the stream ended (even in the middle of one)."""
    header = _read_exact(stream, _HEADER.size)
    if header is None:
        return None
    body = _read_exact(stream, _HEADER.unpack(header)[0])
    return None if body is None else pickle.loads(body)


# -- the child ------------------------------------------------------------------------


def _watch_parent(parent: int) -> None:
    """Exit as soon as the parent process is gone (a pidfd needs no polling)."""

    def watch() -> None:
        try:
            fd: int | None = os.pidfd_open(parent)
        except (AttributeError, OSError):
            fd = None
        if fd is not None:
            import select

            select.select([fd], [], [])
        else:  # no pidfd (old kernel, macOS, Windows): look twice a second
            while os.getppid() == parent:
                time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="partisim-lifeline", daemon=True).start()


def _child_main() -> None:
    """Body of a child: answer (engine, params) requests on stdin/stdout until EOF."""
    channel = os.fdopen(os.dup(1), "wb")  # the protocol's channel...
    os.dup2(2, 1)  # ...so that anything printed goes to stderr, not into it
    sys.stdout = sys.stderr
    requests = sys.stdin.buffer
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent; it stops us
    _watch_parent(os.getppid())
    from partisim.sim.engines import ENGINES, get_engine
    from partisim.sim.simulate import simulate

    for engine in ENGINES:  # import every engine now, not during the first run
        try:
            get_engine(engine)
        except ImportError:
            pass
    _send(channel, ("ready", os.getpid()))
    while True:
        request = _recv(requests)
        if request is None:
            return
        engine, params = request
        reply: tuple[str, Any]
        try:
            reply = ("success", simulate(params, engine))
        except MemoryError:
            reply = ("memory", "memoria insuficiente para esta simulación")
        except PartisimError as exc:
            reply = ("invalid", exc.message)
        except Exception as exc:  # the run failed; the process is still sound
            reply = ("failed", f"{type(exc).__name__}: {exc}")
        _send(channel, reply)
        if reply[0] == "memory":
            return  # a fresh process for the next run


# -- the parent's side -----------------------------------------------------------------


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "dejó de responder"
    if code < 0:
        try:
            return f"terminó por la señal {signal.Signals(-code).name}"
        except ValueError:
            return f"terminó por la señal {-code}"
    return f"terminó con código {code}"


class _Child:
    """One warm child process and the thread that reads its replies."""

    def __init__(self) -> None:
        env = dict(os.environ)
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, "1")  # one child per slot already fills the CPUs
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "partisim.sim.isolated"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        self.replies: queue.Queue[Any] = queue.Queue()
        self.stopped = False
        self.pid = self.proc.pid
        threading.Thread(target=self._read, name=f"partisim-child-{self.pid}", daemon=True).start()

    def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        while True:
            try:
                message = _recv(stream)
            except (OSError, ValueError, pickle.UnpicklingError, EOFError):
                message = None
            self.replies.put(message)
            if message is None:
                return

    def send(self, obj: object) -> None:
        assert self.proc.stdin is not None
        _send(self.proc.stdin, obj)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> int | None:
        """SIGKILL and reap; the exit code."""
        try:
            self.proc.kill()
        except OSError:
            pass
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        return code


class _Pool:
    """Idle warm children, shared by the threads of this process."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._idle: list[_Child] = []
        self._all: set[_Child] = set()
        self._lock = threading.Lock()

    def _spawn(self) -> _Child:
        child = _Child()
        with self._lock:
            self._all.add(child)
        deadline = time.monotonic() + SPAWN_TIMEOUT_S
        while True:
            try:
                hello = child.replies.get(timeout=1.0)
                break
            except queue.Empty:
                if time.monotonic() > deadline or not child.alive():
                    hello = None
                    break
        if not (isinstance(hello, tuple) and hello[:1] == ("ready",)):
            code = self.discard(child)
            raise OSError(f"el proceso de la simulación no arrancó ({_exit_reason(code)})")
        return child

    def take(self) -> _Child:
        with self._lock:
            while self._idle:
                child = self._idle.pop()
                if child.alive():
                    return child
                self._all.discard(child)
        return self._spawn()

    def give_back(self, child: _Child) -> None:
        with self._lock:
            if child.alive() and len(self._idle) < self.keep:
                self._idle.append(child)
                return
        self.discard(child)

    def discard(self, child: _Child) -> int | None:
        with self._lock:
            self._all.discard(child)
        return child.kill()

    def replace_soon(self) -> None:
        """Start a child for the next run now (in the background), so a kill does not
        make the next run wait for the engines to import."""

        def warm() -> None:
            try:
                self.give_back(self._spawn())
            except OSError:
                pass

        threading.Thread(target=warm, name="partisim-warm", daemon=True).start()

    def close(self) -> None:
        with self._lock:
            children = list(self._all)
            self._idle.clear()
            self._all.clear()
        for child in children:
            child.kill()


_pool = _Pool(keep=max(4, os.cpu_count() or 1))
_running: dict[str, _Ticket] = {}
_running_lock = threading.Lock()
atexit.register(_pool.close)


class _Ticket:
    """A run registered under a key, so that `stop` finds it even before its child is ready."""

    def __init__(self) -> None:
        self.child: _Child | None = None
        self.stopped = False


def stop(key: str) -> bool:
    """Kill the run registered under ``key`` now (from any thread); False if none runs."""
    with _running_lock:
        ticket = _running.get(key)
        if ticket is None:
            return False
        ticket.stopped = True
        child = ticket.child
    if child is not None:
        child.stopped = True
        try:
            child.proc.kill()  # its run sees the end of the stream and reports "cancelled"
        except OSError:
            pass
    return True


def prewarm(count: int = 1) -> None:
    """Start children in the background until ``count`` are idle, so that the next runs
    do not wait for a child to import the engines."""
    with _pool._lock:
        missing = count - len(_pool._idle)
    for _ in range(max(0, missing)):
        _pool.replace_soon()


def running_pid(key: str) -> int | None:
    """The process id of the child running ``key`` (None: no such run, or not started yet)."""
    with _running_lock:
        ticket = _running.get(key)
        return ticket.child.pid if ticket is not None and ticket.child is not None else None


def run_isolated(
    params: SimParams,
    engine: str,
    timeout: float,
    *,
    key: str | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> IsolatedRun:
    """Run one simulation in a warm child process; kill it past ``timeout`` seconds, or
    as soon as ``should_stop()`` is true or `stop(key)` is called.

    ``should_stop`` is polled every `STOP_CHECK_S` seconds; the answer always comes
    within that much of the deadline or of the stop request."""
    ticket = _Ticket()
    if key is not None:
        with _running_lock:
            _running[key] = ticket
    try:
        return _run(ticket, params, engine, timeout, should_stop)
    finally:
        if key is not None:
            with _running_lock:
                if _running.get(key) is ticket:
                    del _running[key]


def _cancelled(elapsed: float, pid: int) -> IsolatedRun:
    return IsolatedRun("cancelled", message="la tarea se canceló y su proceso se detuvo", elapsed=elapsed, pid=pid)


def _run(
    ticket: _Ticket, params: SimParams, engine: str, timeout: float, should_stop: Callable[[], bool] | None
) -> IsolatedRun:
    try:
        child = _pool.take()
    except OSError as exc:
        return IsolatedRun("failed", message=str(exc))
    with _running_lock:
        ticket.child = child
        child.stopped = ticket.stopped
    if child.stopped or (should_stop is not None and should_stop()):
        _pool.give_back(child)  # stopped before it started: the child is still clean
        return _cancelled(0.0, child.pid)
    start = time.perf_counter()
    try:
        child.send((engine, params))
    except (OSError, ValueError):
        code = _pool.discard(child)
        return IsolatedRun("failed", message=f"el proceso de la simulación {_exit_reason(code)}", pid=child.pid)
    deadline = start + timeout
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            _pool.discard(child)
            _pool.replace_soon()
            return IsolatedRun(
                "timeout",
                message=f"la tarea superó su tiempo límite de {timeout:g} s y se detuvo",
                elapsed=time.perf_counter() - start,
                pid=child.pid,
            )
        try:
            reply = child.replies.get(timeout=min(STOP_CHECK_S, left))
            break
        except queue.Empty:
            if child.stopped or (should_stop is not None and should_stop()):
                child.stopped = True
                _pool.discard(child)
                _pool.replace_soon()
                return _cancelled(time.perf_counter() - start, child.pid)
    elapsed = time.perf_counter() - start
    if reply is None:  # the child died: killed by stop(), or it crashed
        code = _pool.discard(child)
        _pool.replace_soon()
        if child.stopped:
            return _cancelled(elapsed, child.pid)
        return IsolatedRun(
            "failed", message=f"el proceso de la simulación {_exit_reason(code)}", elapsed=elapsed, pid=child.pid
        )
    status, payload = reply
    if status == "success":
        _pool.give_back(child)
        return IsolatedRun("success", result=payload, elapsed=elapsed, pid=child.pid)
    if status == "memory":
        _pool.discard(child)
    else:
        _pool.give_back(child)
    return IsolatedRun(
        "invalid" if status == "invalid" else "failed", message=str(payload), elapsed=elapsed, pid=child.pid
    )


if __name__ == "__main__":
    _child_main()
