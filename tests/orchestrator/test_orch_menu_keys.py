"""The menu's keys on a real terminal (issue 24 §4): Ctrl-C and 0 go back one level,
a task interrupted with Ctrl-C is said to go on on its worker, a missing file is asked
again. Driven through a pseudo-terminal, against real workers."""

from __future__ import annotations

import httpx
from helpers.config import write_config
from helpers.processes import HOST_A, wait_for
from orch_support import PtySession, clean, launch_worker

MAIN_PROMPT = "Elija una opción [1-10; 0 = salir]:"


def _interrupt(session: PtySession, then: str) -> str:
    """Ctrl-C at a prompt, and the text it leads to. CPython's input() has a window: a
    SIGINT handled just before the read starts is raised only once a line arrives, so if
    ``then`` does not come, Enter lets the pending Ctrl-C through (as a user would press)."""
    session.send("\x03")
    try:
        return session.expect(then, timeout=10)
    except AssertionError:
        session.send("\r")
        return session.expect(then)


def _start(config) -> PtySession:
    session = PtySession(["orchestrator", "--config", str(config)])
    session.expect(MAIN_PROMPT)
    return session


def test_ctrl_c_and_0_at_a_question_go_back_to_the_main_menu(pair) -> None:
    session = _start(pair.config)
    try:
        session.send("2\r")
        session.expect("o su id (Enter = 1; 0 = volver):")
        _interrupt(session, "Vuelve al menú principal.")  # Ctrl-C at a question of option 2
        session.expect(MAIN_PROMPT)
        session.send("2\r")
        session.expect("o su id (Enter = 1; 0 = volver):")
        session.send("1\r")
        session.expect("Elija benchmark")
        session.send("0\r")  # 0 at a question: back, as its prompt says
        session.expect("Vuelve al menú principal.")
        session.expect(MAIN_PROMPT)
        session.send("11\r")
        session.expect("Escriba un número del 1 al 10 (0 para salir)")
        session.send("0\r")
        assert session.wait() == 0
        assert "Traceback" not in clean(session.buffer)
    finally:
        session.close()


def test_a_missing_task_file_is_asked_again(pair, tmp_path) -> None:
    session = _start(pair.config)
    try:
        session.send("7\r")
        session.expect("Ruta del archivo JSON de tareas (Enter = volver):")
        session.send(f"{tmp_path / 'no-existe.json'}\r")
        out = session.expect("Ruta del archivo JSON de tareas (Enter = volver):")
        assert "No existe el archivo" in out and "no-existe.json" in out
        session.send("\r")
        session.expect("No se indicó ningún archivo.")
        session.expect(MAIN_PROMPT)
        _interrupt(session, "Saliendo...")  # Ctrl-C at the main menu: out
        assert session.wait() == 130
    finally:
        session.close()


def test_ctrl_c_during_a_task_says_it_goes_on_on_the_worker(tmp_path) -> None:
    worker = launch_worker(HOST_A, None, "worker-01", tmp_path / "worker")  # its own: the task outlives the menu
    session = _start(write_config(tmp_path / "config_workers.json", [("worker-01", HOST_A, worker.port)]))
    try:
        session.send("2\r")
        session.expect("o su id (Enter = 1; 0 = volver):")
        session.send("1\r")
        session.expect("Elija benchmark")
        session.send("1\r")  # python: slow enough to interrupt
        session.expect("[S/n]:")
        session.send("n\r")
        for answer in ("3000", "2000000", "7"):
            session.expect("]: ")
            session.send(answer + "\r")
        session.expect("Ejecutando")
        url = worker.url

        def running() -> bool:
            return httpx.get(url + "/status", timeout=5, trust_env=False).json()["running"] >= 1

        wait_for(running, 30, "the task runs on worker-01")
        session.send("\x03")
        out = session.expect(MAIN_PROMPT)
        assert "la tarea sigue ejecutándose en worker-01" in " ".join(clean(out).split())
        assert running()  # still there: the menu said so
        session.send("0\r")
        assert session.wait() == 0
    finally:
        session.close()
        history = httpx.get(worker.url + "/history", params={"status": "running"}, timeout=5, trust_env=False)
        for task in history.json()["tasks"]:  # stop its computation before the worker goes
            httpx.delete(f"{worker.url}/tasks/{task['task_id']}", timeout=5, trust_env=False)
        worker.stop()
