"""The one child-process pool that can kill its runs: at their deadline, or as soon as
whoever asked for one stops waiting.

A thread cannot be stopped from outside; a process can. A `ChildPool` keeps warm child
processes (``python -m partisim.sim.isolated``, every engine already imported), hands
each run to an idle one and waits for the answer in short slices: past the deadline, or
as soon as ``should_stop()`` says so (or `ChildPool.stop` is called from another
thread), the child is killed and the run says why. A killed child is replaced in the
background, so the caller is free for its next run at once.

Two hosts use it: the worker's process runner (its own pool, one child per slot, with
an optional memory cap per child) and partisim's tasks on Dask workers (the module's
default pool, through `run_isolated`). It imports nothing but the standard library and
`partisim.sim`. Children are plain subprocesses, not multiprocessing ones: a Dask worker
is a daemonic process, and multiprocessing forbids those to have children. A fresh
interpreter never ran a parallel region, so a run may use several threads. Each child
watches its parent and exits when the parent is gone, even when the parent was killed
with SIGKILL.
"""

from __future__ import annotations

import atexit
import logging
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
from typing import IO, Literal

from partisim.errors import PartisimError
from partisim.sim.params import SimParams
from partisim.sim.result import SimResult

__all__ = [
    "ChildPool",
    "IsolatedRun",
    "RunStatus",
    "run_isolated",
    "stop",
    "running_pid",
    "prewarm",
    "exit_reason",
    "STOP_CHECK_S",
]

#: how often a waiting run looks at its deadline and at ``should_stop``
STOP_CHECK_S = 0.05
#: longest wait for a new child to import the engines and say it is ready
SPAWN_TIMEOUT_S = 120.0

RunStatus = Literal["success", "timeout", "cancelled", "invalid", "failed"]
_HEADER = struct.Struct(">I")
#: what a child answers: ("success", SimResult) or (kind, Spanish message)
_Reply = tuple[str, object]


@dataclass(frozen=True)
class IsolatedRun:
    """What came of one run: the result, or why there is none (a Spanish message).

    ``invalid``: the engine refused the parameters (retrying will not help);
    ``failed``: the child crashed or could not start (another try may work);
    ``pid`` None: no child could be started for it."""

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


def _recv(stream: IO[bytes]) -> object:
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


def _limit_memory(extra_mb: int) -> None:
    """Cap this process's address space at its current size plus ``extra_mb``."""
    try:
        import resource

        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[0])
        limit = pages * os.sysconf("SC_PAGE_SIZE") + extra_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, OSError, ValueError):
        logging.getLogger(__name__).warning("no se pudo limitar la memoria de las tareas en este sistema")


def _child_main(memory_mb: int) -> None:
    """Body of a child: answer (engine, params, threads) requests on stdin/stdout until EOF."""
    channel = os.fdopen(os.dup(1), "wb")  # the protocol's channel...
    os.dup2(2, 1)  # ...so that anything printed goes to stderr, not into it
    sys.stdout = sys.stderr
    requests = sys.stdin.buffer
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent; it stops us
    _watch_parent(os.getppid())
    from partisim.sim.engines import ENGINES, get_engine
    from partisim.sim.run import simulate

    for engine in ENGINES:  # import every engine now, not during the first run
        try:
            get_engine(engine)
        except ImportError:
            pass
    if memory_mb > 0:
        _limit_memory(memory_mb)
    _send(channel, ("ready", os.getpid()))
    while True:
        request = _recv(requests)
        if request is None:
            return
        assert isinstance(request, tuple)
        engine, params, threads = request
        reply: _Reply
        try:
            reply = ("success", simulate(params, engine, threads))
        except MemoryError:
            reply = ("memory", "memoria insuficiente para esta simulación")
        except PartisimError as exc:
            reply = ("invalid", exc.message)
        except Exception as exc:  # the run failed; the process is still sound
            reply = ("failed", f"{type(exc).__name__}: {exc}")
        try:
            _send(channel, reply)
        except (OSError, ValueError):
            return
        if reply[0] == "memory":
            return  # a fresh process for the next run


# -- the parent's side -----------------------------------------------------------------


def exit_reason(code: int | None) -> str:
    """How a child ended, in Spanish (``terminó por la señal SIGKILL``...)."""
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

    def __init__(self, memory_mb: int | None) -> None:
        env = dict(os.environ)
        # One BLAS thread per child: one child per slot already fills the CPUs. A run's
        # own threads are asked for explicitly (the engine's num_threads), not by these.
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, "1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "partisim.sim.isolated", str(memory_mb or 0)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        self.replies: queue.Queue[object] = queue.Queue()
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


class _Ticket:
    """A run registered under a key, so that `stop` finds it even before its child is ready."""

    def __init__(self) -> None:
        self.child: _Child | None = None
        self.stopped = False


class ChildPool:
    """Warm children shared by the threads of this process; up to ``keep`` stay idle.

    ``memory_mb`` caps each child's address space at its size after importing the
    engines plus that many MiB (None: no cap): a run that needs more fails with a
    Spanish message, and its child is replaced."""

    def __init__(self, keep: int, *, memory_mb: int | None = None) -> None:
        self.keep = keep
        self.memory_mb = memory_mb
        self._idle: list[_Child] = []
        self._all: set[_Child] = set()
        self._lock = threading.Lock()
        self._running: dict[str, _Ticket] = {}
        self._closed = False

    # -- children --

    def _spawn(self) -> _Child:
        if self._closed:
            raise OSError("el grupo de procesos de simulación está cerrado")
        child = _Child(self.memory_mb)
        with self._lock:
            closed = self._closed
            if not closed:
                self._all.add(child)
        if closed:  # closed while this one started: it must not outlive the pool
            child.kill()
            raise OSError("el grupo de procesos de simulación está cerrado")
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
            code = self._discard(child)
            raise OSError(f"el proceso de la simulación no arrancó ({exit_reason(code)})")
        return child

    def _take(self) -> _Child:
        with self._lock:
            while self._idle:
                child = self._idle.pop()
                if child.alive():
                    return child
                self._all.discard(child)
        return self._spawn()

    def _give_back(self, child: _Child) -> None:
        with self._lock:
            if not self._closed and child.alive() and len(self._idle) < self.keep:
                self._idle.append(child)
                return
        self._discard(child)

    def _discard(self, child: _Child) -> int | None:
        with self._lock:
            self._all.discard(child)
        return child.kill()

    def _replace_soon(self) -> None:
        """Start a child for the next run now (in the background), so a kill does not
        make the next run wait for the engines to import."""

        def warm() -> None:
            try:
                self._give_back(self._spawn())
            except OSError:
                pass

        if not self._closed:
            threading.Thread(target=warm, name="partisim-warm", daemon=True).start()

    def warm(self, count: int) -> int:
        """Start children (in parallel) until ``count`` are idle; how many are idle then.

        Raises OSError when not even one could start."""
        with self._lock:
            missing = max(0, min(count, self.keep) - len(self._idle))
        errors: list[OSError] = []

        def one() -> None:
            try:
                self._give_back(self._spawn())
            except OSError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=one, name="partisim-warm", daemon=True) for _ in range(missing)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with self._lock:
            idle = len(self._idle)
        if errors and idle == 0:
            raise errors[0]
        return idle

    def prewarm(self, count: int) -> None:
        """Start children in the background until ``count`` are idle (without waiting)."""
        with self._lock:
            missing = min(count, self.keep) - len(self._idle)
        for _ in range(max(0, missing)):
            self._replace_soon()

    def close(self) -> None:
        """Kill every child, idle or running; later runs fail."""
        with self._lock:
            self._closed = True
            children = list(self._all)
            self._idle.clear()
            self._all.clear()
        for child in children:
            child.kill()

    # -- runs --

    def stop(self, key: str) -> bool:
        """Kill the run registered under ``key`` now (from any thread); False if none runs."""
        with self._lock:
            ticket = self._running.get(key)
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

    def running_pid(self, key: str) -> int | None:
        """The process id of the child running ``key`` (None: no such run, or not started yet)."""
        with self._lock:
            ticket = self._running.get(key)
            return ticket.child.pid if ticket is not None and ticket.child is not None else None

    def run(
        self,
        params: SimParams,
        engine: str,
        timeout: float,
        *,
        threads: int = 1,
        key: str | None = None,
        should_stop: Callable[[], bool] | None = None,
        on_started: Callable[[int], None] | None = None,
    ) -> IsolatedRun:
        """Run one simulation in a warm child; kill it past ``timeout`` seconds, or as soon
        as ``should_stop()`` is true or `stop(key)` is called.

        ``on_started`` receives the child's pid once the run is handed over.
        ``should_stop`` is polled every `STOP_CHECK_S` seconds; the answer always comes
        within that much of the deadline or of the stop request."""
        ticket = _Ticket()
        if key is not None:
            with self._lock:
                self._running[key] = ticket
        try:
            return self._run(ticket, (engine, params, threads), timeout, should_stop, on_started)
        finally:
            if key is not None:
                with self._lock:
                    if self._running.get(key) is ticket:
                        del self._running[key]

    def _run(
        self,
        ticket: _Ticket,
        request: tuple[str, SimParams, int],
        timeout: float,
        should_stop: Callable[[], bool] | None,
        on_started: Callable[[int], None] | None,
    ) -> IsolatedRun:
        try:
            child = self._take()
        except OSError as exc:
            return IsolatedRun("failed", message=str(exc))
        with self._lock:
            ticket.child = child
            child.stopped = ticket.stopped
        if child.stopped or (should_stop is not None and should_stop()):
            self._give_back(child)  # stopped before it started: the child is still clean
            return _cancelled(0.0, child.pid)
        if on_started is not None:
            on_started(child.pid)
        start = time.perf_counter()
        try:
            child.send(request)
        except (OSError, ValueError):
            code = self._discard(child)
            self._replace_soon()
            return IsolatedRun("failed", message=f"el proceso de la simulación {exit_reason(code)}", pid=child.pid)
        reply = self._wait(child, start + timeout, should_stop)
        elapsed = time.perf_counter() - start
        if reply == "timeout":
            return IsolatedRun(
                "timeout",
                message=f"la tarea superó su tiempo límite de {timeout:g} s y se detuvo",
                elapsed=elapsed,
                pid=child.pid,
            )
        if reply == "cancelled":
            return _cancelled(elapsed, child.pid)
        if reply is None:  # the child died: killed by stop(), or it crashed
            code = self._discard(child)
            self._replace_soon()
            if child.stopped:
                return _cancelled(elapsed, child.pid)
            return IsolatedRun(
                "failed", message=f"el proceso de la simulación {exit_reason(code)}", elapsed=elapsed, pid=child.pid
            )
        status, payload = reply
        if status == "success" and isinstance(payload, SimResult):
            self._give_back(child)
            return IsolatedRun("success", result=payload, elapsed=elapsed, pid=child.pid)
        if status == "memory":
            self._discard(child)
            self._replace_soon()
        else:
            self._give_back(child)
        return IsolatedRun(
            "invalid" if status == "invalid" else "failed", message=str(payload), elapsed=elapsed, pid=child.pid
        )

    def _wait(
        self, child: _Child, deadline: float, should_stop: Callable[[], bool] | None
    ) -> _Reply | Literal["timeout", "cancelled"] | None:
        """The child's reply (None: it died); past the deadline or when stopped, the
        child is killed and replaced, and the answer says which."""
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                self._discard(child)
                self._replace_soon()
                return "timeout"
            try:
                reply = child.replies.get(timeout=min(STOP_CHECK_S, left))
            except queue.Empty:
                if child.stopped or (should_stop is not None and should_stop()):
                    child.stopped = True
                    self._discard(child)
                    self._replace_soon()
                    return "cancelled"
                continue
            if reply is None:
                return None
            assert isinstance(reply, tuple) and len(reply) == 2
            return (str(reply[0]), reply[1])


def _cancelled(elapsed: float, pid: int) -> IsolatedRun:
    return IsolatedRun("cancelled", message="la tarea se canceló y su proceso se detuvo", elapsed=elapsed, pid=pid)


# -- the default pool of this process (partisim's tasks on Dask workers) ----------------

_pool = ChildPool(keep=max(4, os.cpu_count() or 1))
atexit.register(_pool.close)


def run_isolated(
    params: SimParams,
    engine: str,
    timeout: float,
    *,
    key: str | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> IsolatedRun:
    """`ChildPool.run` on this process's default pool."""
    return _pool.run(params, engine, timeout, key=key, should_stop=should_stop)


def stop(key: str) -> bool:
    """`ChildPool.stop` on this process's default pool."""
    return _pool.stop(key)


def prewarm(count: int = 1) -> None:
    """Start children of this process's default pool in the background until ``count``
    are idle, so that the next runs do not wait for a child to import the engines."""
    _pool.prewarm(count)


def running_pid(key: str) -> int | None:
    """`ChildPool.running_pid` on this process's default pool."""
    return _pool.running_pid(key)


if __name__ == "__main__":
    try:
        _child_main(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    except (BrokenPipeError, EOFError):  # the parent went away mid-message: nothing to tell
        os._exit(1)
