"""The interactive menu, driven through piped stdin and through a pseudo-terminal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from orch_support import CLI_ENV, ROOT, PtySession, assert_clean_exit, clean, run

MENU_PROMPT = "Elija una opción [1-"  # the queue helper appends its own options


def test_menu_without_workers_says_so_for_every_option(dead_config: Path) -> None:
    proc = run(["orchestrator.py", "--config", str(dead_config)], input="1\n2\n3\n4\n0\n")
    assert_clean_exit(proc, 0)
    out = proc.stdout
    # At start-up, then for options 1, 2, 3 and 4: never a crash, always the message.
    assert out.count("NO HAY MÁQUINAS ACTIVAS") == 5, out
    assert "Qué revisar" in out and "start_worker.sh" in out
    assert "INACTIVO" in out
    assert out.rstrip().endswith("Saliendo...")


def test_menu_ping_and_task_with_two_workers(pair) -> None:
    answers = [
        "1",  # verify workers
        "2",
        "worker-02",  # run a task on worker-02 (by id)
        "2",  # Cython
        "n",
        "40",  # own parameters: 40 particles
        "abc",
        "0",
        "150",  # steps: two bad answers, explained, then 150
        "7",  # seed
        "0",  # exit
    ]
    proc = run(["orchestrator", "--config", str(pair.config)], input="\n".join(answers) + "\n")
    assert_clean_exit(proc, 0)
    out = proc.stdout
    assert out.count("Workers activos: 2/2") == 2  # start-up and option 1
    assert "Valor no válido para número de pasos: 'abc'" in out
    assert "Número de pasos: debe ser >= 1 (recibido 0)" in out  # the range error names the field as asked
    result = out.split("Resultado de la tarea")[1]
    for label, value in [
        ("Worker", "worker-02"),
        ("Motor", "cython"),
        ("Partículas", "40"),
        ("Pasos", "150"),
        ("Semilla", "7"),
    ]:
        assert any(label in line and f" {value} " in line for line in result.splitlines()), (label, result)


def test_menu_explains_bad_choices_and_asks_again(pair) -> None:
    proc = run(["orchestrator", "--config", str(pair.config)], input="-1\nhola\n99\n\n5\nsalir\n")
    assert_clean_exit(proc, 0)
    assert proc.stdout.count("Opción no válida") == 4
    assert "Configuración:" in proc.stdout and f"{pair.port}" in proc.stdout  # option 5


def test_end_of_input_at_every_prompt(pair) -> None:
    prefixes = {
        "main menu": "",
        "worker": "2\n",
        "benchmark": "2\n1\n",
        "defaults": "2\n1\n1\n",
        "particles": "2\n1\n1\nn\n",
        "steps": "2\n1\n1\nn\n10\n",
        "seed": "2\n1\n1\nn\n10\n10\n",
        "after a bad answer": "2\n1\n7\n",
    }
    cmd = [sys.executable, "-m", "partisim", "orchestrator", "--config", str(pair.config)]
    procs = {
        name: subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=CLI_ENV, cwd=ROOT
        )
        for name in prefixes
    }
    for name, proc in procs.items():
        out, err = proc.communicate(prefixes[name], timeout=60)
        assert proc.returncode == 0, (name, out, err)
        assert "Traceback" not in out + err, (name, err)
        assert out.rstrip().endswith("Saliendo..."), (name, out[-300:])


def test_demo_when_one_worker_was_killed_before(fresh_pair) -> None:
    fresh_pair.b.kill()
    proc = run(["orchestrator", "--config", str(fresh_pair.config)], input="3\n0\n")
    assert_clean_exit(proc, 0)
    out = proc.stdout
    demo = out.split("Demo completa del sistema")[1]
    ping_rows = [line for line in demo.splitlines() if " worker-02 " in line]
    assert ping_rows and "INACTIVO" in ping_rows[0]
    comparison = demo.split("Comparación Python vs Cython")[1]
    assert any(" worker-01 " in line and "coinciden" in line for line in comparison.splitlines())
    assert " worker-02 " not in comparison.split("Demo terminada")[0]
    assert "Demo terminada" in demo


def test_pty_worker_dies_between_ping_and_task(fresh_pair) -> None:
    session = PtySession(["orchestrator", "--config", str(fresh_pair.config)])
    try:
        session.expect(MENU_PROMPT)
        session.send("2\r")
        session.expect("o su id (Enter = 1; 0 = volver):")
        fresh_pair.b.kill()  # listed as active a moment ago; gone now
        session.send("2\r")
        session.expect("Elija benchmark")
        session.send("1\r")
        session.expect("[S/n]:")
        session.send("\r")
        out = session.expect("Use la opción 1")
        assert "No se pudo completar la tarea" in out
        assert "worker-02 no responde" in out
        before = len(out)
        session.expect(MENU_PROMPT)
        session.send("1\r")
        out = session.expect("Workers activos: 1/2")
        assert "INACTIVO" in out[before:]
        session.send("0\r")
        assert session.wait() == 0
        assert "Traceback" not in clean(session.buffer)
    finally:
        session.close()


def test_pty_reload_config_and_ctrl_c(pair, tmp_path: Path) -> None:
    config = tmp_path / "mi_config.json"
    data = json.loads(pair.config.read_text())
    config.write_text(json.dumps(data))
    session = PtySession(["orchestrator.py", "--config", str(config)])
    try:
        session.expect(MENU_PROMPT)
        config.write_text('{"workers": [')  # broken while the menu runs
        session.send("6\r")
        out = session.expect("Se mantiene la configuración anterior.")
        assert "mi_config.json" in out and "JSON inválido" in out
        data["workers"] = data["workers"][:1]
        config.write_text(json.dumps(data))
        session.send("6\r")
        session.expect("Configuración recargada: 1 worker en")
        session.send("1\r")
        session.expect("Workers activos: 1/1")
        session.expect(MENU_PROMPT)
        session.send("\x03")  # Ctrl-C at a prompt
        session.expect("Saliendo...")
        assert session.wait() == 130
        assert "Traceback" not in clean(session.buffer)
    finally:
        session.close()
