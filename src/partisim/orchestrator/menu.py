"""The interactive menu (``python orchestrator.py`` = ``partisim orchestrator``).

Reads answers with ``input()``, so it works on a terminal and with piped stdin.
End of input leaves cleanly ("Saliendo...", code 0). Ctrl-C goes back one level: at a
question of an option, back to the main menu; at the main menu, out (code 130). Ctrl-C
while an action runs (waiting for a batch, say) stops that action and returns to the
menu, saying what goes on without it (a task keeps running on its worker). ``0`` is the
way back at every numbered prompt: it leaves the main menu and cancels an option.
Every action is a method; none of them raises for a worker that is down.
Every answer is checked as it is given and asked again when wrong.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from partisim.errors import ConfigError, MenuExit, ParamsError, PartisimError, WorkerUnavailable
from partisim.fleet import DEFAULT_CONFIG_PATH, Config, load_config
from partisim.fleet.health import WorkerHealth, ping_all, worker_tokens
from partisim.orchestrator import views
from partisim.orchestrator.demo import ENGINE_LABELS, run_demo
from partisim.orchestrator.dispatch import DEFAULT_PARAMS, execute_any, explain_task_error
from partisim.protocol import ForeignResult
from partisim.sim import SimParams, numbers, parse_params

if TYPE_CHECKING:
    from partisim.protocol import Submitted
    from partisim.serve.client import ServerClient

__all__ = ["Menu"]

log = logging.getLogger(__name__)

BENCHMARKS = [
    ("python", "Python (benchmark.py)"),
    ("cython", "Cython (benchmark_cython.py)"),
    ("numpy", "NumPy"),
]
PARAM_QUESTIONS = [
    ("NUM_PARTICULAS", "Número de partículas"),
    ("NUM_PASOS", "Número de pasos"),
    ("SEMILLA", "Semilla"),
]
#: the sweep's questions (option 8): answer key, question, parameter of its values
SWEEP_QUESTIONS: list[tuple[str, str, str | None]] = [
    ("engines", "Motores", None),
    ("particles", "Partículas", "NUM_PARTICULAS"),
    ("steps", "Pasos", "NUM_PASOS"),
    ("seeds", "Semillas (p. ej. 1-10)", "SEMILLA"),
]
SWEEP_DEFAULTS = {"engines": "python,cython", "particles": "100,1000", "steps": "500", "seeds": "1-3"}


class _BackToMenu(Exception):
    """Ctrl-C (or 0) at a question of an option: back to the main menu."""


class Menu:
    def __init__(self, config: Config, console: Console, *, token: str | None = None) -> None:
        self.config = config
        self.console = console
        self.token = token  # None: each worker's token from the configuration, else PARTISIM_TOKEN
        #: the last sweep's answers: the defaults of the next one
        self.sweep_answers = dict(SWEEP_DEFAULTS)
        self.options: list[tuple[str, Callable[[], None]]] = [
            ("Verificar workers (ping)", self.verify_workers),
            ("Ejecutar una tarea específica", self.run_task),
            ("Demo completa (Python vs Cython)", self.demo),
            ("Estado detallado de los workers", self.detailed_status),
            ("Mostrar configuración", self.show_config),
            ("Recargar configuración", self.reload_config),
        ]
        # Queue options (partisim serve); the exit stays last, also reachable as 0/q/salir.
        self.options += [
            ("Cola: enviar un archivo de tareas (partisim serve)", self._with_server(self.queue_submit)),
            ("Cola: barrido de parámetros (partisim serve)", self._with_server(self.queue_sweep)),
            ("Cola: estado de la cola y de los lotes", self._with_server(self.queue_status)),
            ("Salir", self.quit),
        ]

    # -- main loop -----------------------------------------------------------

    def run(self) -> int:
        try:
            self.console.rule("[bold]ORQUESTADOR DE SIMULACIONES DE PARTÍCULAS")
            self.console.print(f"Configuración: {self.config.path} ({self._workers()})")
            self.verify_workers()
            while True:
                self._show_options()
                count = len(self.options)
                exit_at = next(i for i, (_, action) in enumerate(self.options) if action == self.quit)
                choice = self.ask_choice(
                    f"Elija una opción [1-{count}; 0 = salir]: ",
                    count,
                    names={"0": exit_at, "q": exit_at, "salir": exit_at},
                    main=True,
                )
                try:
                    self.options[choice][1]()
                except _BackToMenu:
                    self.console.print("[yellow]Vuelve al menú principal.[/yellow]")
                except KeyboardInterrupt:  # Ctrl-C while an action runs: back to the menu
                    self.console.print("\n[yellow]Acción interrumpida; vuelve al menú.[/yellow]")
        except MenuExit as leave:
            self.console.print("Saliendo...")
            return leave.code
        except KeyboardInterrupt:  # Ctrl-C between prompts (e.g. while printing the menu)
            self.console.print("\nSaliendo...")
            return 130

    def _show_options(self) -> None:
        self.console.print()
        self.console.print("[bold]Menú principal[/bold]")
        for number, (label, _) in enumerate(self.options, start=1):
            self.console.print(f"  {number}. {label}")

    # -- prompts ---------------------------------------------------------------

    def ask(self, prompt: str, *, main: bool = False) -> str:
        """One answer; Ctrl-C leaves the program at the ``main`` prompt, and goes back to
        the main menu at any other."""
        try:
            answer = self.console.input(prompt)
        except EOFError:
            self.console.print()
            raise MenuExit(0) from None
        except KeyboardInterrupt:
            self.console.print()
            if not main:
                raise _BackToMenu from None
            raise MenuExit(130) from None
        if not sys.stdin.isatty():
            self.console.print(answer, markup=False, highlight=False)  # echo for logs and pipes
        return answer.strip()

    def ask_choice(
        self,
        prompt: str,
        count: int,
        *,
        default: int | None = None,
        names: dict[str, int] | None = None,
        main: bool = False,
    ) -> int:
        """A number between 1 and ``count`` (or one of ``names``); returns a 0-based index.
        ``0`` leaves at the main prompt (through ``names``) and goes back at any other."""
        while True:
            answer = self.ask(prompt, main=main)
            if not answer and default is not None:
                return default
            if names and answer.lower() in names:
                return names[answer.lower()]
            if answer.isdigit() and 1 <= int(answer) <= count:
                return int(answer) - 1
            if answer == "0" and not main:
                raise _BackToMenu
            zero = "salir" if main else "volver al menú"
            self.console.print(
                f"[yellow]Opción no válida: {escape(repr(answer))}. Escriba un número del 1 al {count} "
                f"(0 para {zero}).[/yellow]"
            )

    def ask_yes(self, prompt: str, *, default: bool = True) -> bool:
        while True:
            answer = self.ask(prompt).lower()
            if not answer:
                return default
            if answer in {"s", "si", "sí", "y", "yes"}:
                return True
            if answer in {"n", "no"}:
                return False
            self.console.print("[yellow]Responda 's' (sí) o 'n' (no).[/yellow]")

    # -- actions ---------------------------------------------------------------

    def _ping(self, *, with_status: bool = False) -> list[WorkerHealth]:
        with self.console.status("Enviando ping a los workers..."):
            return ping_all(self.config, with_status=with_status, token=self.token)

    def _active_or_warn(self, healths: list[WorkerHealth]) -> list[WorkerHealth]:
        active = [h for h in healths if h.active]
        if not active:
            self.console.print(views.no_active_workers(self.config.path, self.config.workers))
        return active

    def verify_workers(self) -> None:
        healths = self._ping()
        self.console.print(views.ping_table(healths))
        active = self._active_or_warn(healths)
        if active:
            self.console.print(f"Workers activos: {len(active)}/{len(healths)}")

    def detailed_status(self) -> None:
        healths = self._ping(with_status=True)
        if self._active_or_warn(healths):
            self.console.print(views.status_table(healths))

    def demo(self) -> None:
        run_demo(self.config, self.console, token=self.token)

    def show_config(self) -> None:
        self.console.print(views.config_table(self.config))

    def reload_config(self) -> None:
        try:
            self.config = load_config(self.config.path or DEFAULT_CONFIG_PATH)
        except ConfigError as exc:
            self.console.print(f"[red]Error:[/red] {exc}")
            self.console.print("Se mantiene la configuración anterior.")
            return
        self.console.print(f"Configuración recargada: {self._workers()} en {self.config.path}")

    def _workers(self) -> str:
        return numbers.count(len(self.config.workers), "worker", "workers")

    def quit(self) -> None:
        raise MenuExit(0)

    def run_task(self) -> None:
        active = self._active_or_warn(self._ping())
        if not active:
            return
        worker = active[
            self._pick(
                "Workers activos",
                [f"{h.id} ({h.address}, {views.fmt_latency(h.latency_ms)})" for h in active],
                "worker [1-{n}] o su id",
                [h.id for h in active],
            )
        ]
        engine = BENCHMARKS[
            self._pick(
                "Benchmarks", [label for _, label in BENCHMARKS], "benchmark [1-{n}]", [name for name, _ in BENCHMARKS]
            )
        ][0]

        params = self._ask_params()
        label = ENGINE_LABELS.get(engine, engine)
        try:
            self.console.print("[dim]Ctrl-C deja de esperar; la tarea seguirá en el worker.[/dim]")
            with self.console.status(f"Ejecutando {label} en {worker.id}..."):
                result = execute_any(
                    worker.url,
                    engine,
                    params,
                    connect_timeout=self.config.orchestrator.timeout,
                    token=worker_tokens(self.config, self.token)[worker.id],
                    ca_file=self.config.ca_file(),
                )
        except KeyboardInterrupt:
            self.console.print(
                f"\n[yellow]Espera interrumpida: la tarea sigue ejecutándose en {worker.id} hasta terminar "
                "(o hasta su tiempo límite); su resultado no se mostrará aquí.[/yellow]"
            )
            return
        except Exception as exc:  # a dead or refusing worker is reported, never a crash
            log.debug("tarea fallida", exc_info=True)
            self.console.print(f"[red]No se pudo completar la tarea:[/red] {explain_task_error(worker.id, exc)}")
            if isinstance(exc, WorkerUnavailable):
                self.console.print("Use la opción 1 para ver qué workers siguen activos.")
            return
        if isinstance(result, ForeignResult):
            self.console.print(views.foreign_result_table(result))
        else:
            self.console.print(views.result_table(result))

    # -- the queue of partisim serve -----------------------------------------------

    def _with_server(self, action: Callable[[ServerClient], None]) -> Callable[[], None]:
        """Run ``action`` with a client of serve; its errors are printed, never raised."""

        def run() -> None:
            from partisim.serve.client import ServerClient

            try:
                with ServerClient() as client:
                    action(client)
            except PartisimError as exc:
                self.console.print(f"[red]Error:[/red] {exc.message}")
            except TimeoutError:
                self.console.print("[yellow]El lote sigue en curso; consúltelo con «Estado de la cola».[/yellow]")

        return run

    def _after_submit(self, client: ServerClient, answer: Submitted) -> None:
        from partisim.orchestrator.batches import wait_batch

        self.console.print(f"{views.count(answer.count, 'tarea', 'tareas')} en cola · lote [bold]{answer.batch}[/]")
        if answer.warning:
            self.console.print(f"[bold yellow]AVISO:[/] {escape(answer.warning)}")
        for text in answer.warnings:
            self.console.print(f"[bold yellow]AVISO:[/] {escape(text)}")
        if self.ask_yes("¿Esperar a que termine el lote? [S/n]: "):
            try:
                with views.BatchProgress(self.console, f"lote {answer.batch}") as bar:
                    state = wait_batch(client, answer.batch, on_progress=bar.update)
            except KeyboardInterrupt:
                self.console.print(
                    f"\n[yellow]Espera interrumpida; el lote {answer.batch} sigue en la cola. "
                    "Consúltelo con «Cola: estado de la cola y de los lotes».[/yellow]"
                )
                return
            self.console.print(f"Éxito {state.success} · fallidas {state.failed} · canceladas {state.cancelled}")

    def queue_submit(self, client: ServerClient) -> None:
        from pathlib import Path

        from partisim.orchestrator.batches import submit_file

        while True:  # a path that is not there is asked again; Enter goes back
            path = self.ask("Ruta del archivo JSON de tareas (Enter = volver): ")
            if not path:
                self.console.print("[yellow]No se indicó ningún archivo.[/yellow]")
                return
            if Path(path).is_file():
                break
            self.console.print(f"[yellow]No existe el archivo {escape(path)}; escriba otra ruta.[/yellow]")
        self._after_submit(client, submit_file(client, path))

    def queue_sweep(self, client: ServerClient) -> None:
        """Each answer is checked when given, as option 2 does, and asked again when
        wrong; the answers are kept as the next sweep's defaults."""
        from partisim.orchestrator.batches import task_objects
        from partisim.serve.client import sweep

        answers = self.sweep_answers
        for key, question, alias in SWEEP_QUESTIONS:
            answers[key] = self._ask_sweep_list(question, alias, answers[key])
        lists = {key: self._sweep_list(question, alias, answers[key]) for key, question, alias in SWEEP_QUESTIONS}
        specs = sweep(
            [str(e) for e in lists["engines"]],
            *(list(map(int, lists[k])) for k in ("particles", "steps", "seeds")),
            names={alias: question for _, question, alias in SWEEP_QUESTIONS if alias},
        )
        self._after_submit(client, client.submit(task_objects(specs)))

    @staticmethod
    def _sweep_list(question: str, alias: str | None, text: str) -> list[str] | list[int]:
        """One sweep answer as its list (engines, or integers each valid for ``alias``)."""
        from partisim.serve.client import parse_engine_list, parse_int_list

        if alias is None:
            return parse_engine_list(text, question)
        values = parse_int_list(text, question)
        for value in values:
            try:
                parse_params({alias: value})
            except ParamsError as exc:
                raise exc.renamed({alias: question}) from None
        return values

    def _ask_sweep_list(self, question: str, alias: str | None, default: str) -> str:
        """Ask one sweep list until it is valid (Enter keeps ``default``)."""
        while True:
            answer = self.ask(f"{question} {escape(f'[{default}]')}: ") or default
            try:
                self._sweep_list(question, alias, answer)
            except ParamsError as exc:
                self.console.print(f"[yellow]{escape(exc.message)}[/yellow]")
                continue
            return answer

    def queue_status(self, client: ServerClient) -> None:
        self.console.print(views.queue_status(client.summary(), client.workers(), client.batches(limit=10)))

    def _pick(self, title: str, labels: list[str], what: str, names: list[str]) -> int:
        """List ``labels`` numbered under ``title``; ask for a number or one of ``names``
        (Enter = the first); return a 0-based index."""
        self.console.print(f"[bold]{title}:[/bold]")
        for number, label in enumerate(labels, start=1):
            self.console.print(f"  {number}. {label}")
        return self.ask_choice(
            f"Elija {what.format(n=len(labels))} (Enter = 1; 0 = volver): ",
            len(labels),
            default=0,
            names={name.lower(): i for i, name in enumerate(names)},
        )

    def _ask_params(self) -> SimParams:
        defaults = dict(DEFAULT_PARAMS)
        summary = (
            f"{views.count(defaults['NUM_PARTICULAS'], 'partícula', 'partículas')}, "
            f"{views.count(defaults['NUM_PASOS'], 'paso', 'pasos')}, semilla {defaults['SEMILLA']}"
        )
        if self.ask_yes(f"¿Usar parámetros por defecto ({summary})? [S/n]: "):
            return parse_params(defaults)
        values: dict[str, Any] = dict(defaults)
        for key, label in PARAM_QUESTIONS:
            while True:
                answer = self.ask(f"{label} [{values[key]}]: ")
                if not answer:
                    break
                try:
                    candidate = int(answer)
                except ValueError:
                    self.console.print(
                        f"[yellow]Valor no válido para {label.lower()}: {escape(repr(answer))}. "
                        "Escriba un número entero.[/yellow]"
                    )
                    continue
                try:
                    parse_params({**values, key: candidate})
                except ParamsError as exc:
                    self.console.print(f"[yellow]{escape(exc.renamed({key: label}).message)}[/yellow]")
                    continue
                values[key] = candidate
                break
        return parse_params(values)
