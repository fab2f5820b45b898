"""Task specifications: task files, ``repeat``, sweeps -> lists of `TaskSpec`.

A task object is ``{"benchmark": "python", "params": {"NUM_PARTICULAS": 100, ...},
"repeat": 3, "timeout": 60, "threads": 2, "priority": 5, "label": "mi-tarea"}`` (``engine``
is accepted for ``benchmark``; ``threads``, the threads of the one simulation, is 1 when
absent; ``priority``, higher first, 0 when absent; ``description`` is accepted and
ignored). A file or an API body holds a list of them, or ``{"tasks": [...]}``; the
users' ETAPA-6 files and task objects are read too (`etapa6`). Everything is validated here,
with `partisim.sim.parse_params` and `resolve_engine`, so a bad value is refused before
it reaches the queue, with a Spanish message naming the task and the field.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import JsonValue

from partisim.errors import ParamsError, explain_json_error, explain_os_error
from partisim.listen.guards import JsonRefused, loads_json
from partisim.serve.queue.etapa6 import etapa6_wrapper, is_etapa6_task, parse_label, parse_priority, task_fields
from partisim.serve.queue.task import TaskSpec
from partisim.sim import ENGINES, parse_params, resolve_engine
from partisim.sim.params import PARTICLES_KEY, SEED_KEY, STEPS_KEY, ApiParams, number_from_text
from partisim.sim.theory import coarse_step_warnings

__all__ = [
    "MAX_TASKS",
    "MAX_THREADS",
    "MAX_REPEAT",
    "positive_int",
    "parse_task",
    "parse_tasks",
    "TaskDocument",
    "read_tasks",
    "load_task_document",
    "parse_submission",
    "read_submission",
    "load_task_file",
    "sweep",
    "parse_int_list",
    "parse_int_values",
    "IntValues",
    "parse_engine_list",
    "decode_json",
    "step_warnings",
]

#: Most tasks one submission may create (after ``repeat`` and sweeps are expanded).
MAX_TASKS = 100_000
MAX_REPEAT = 10_000
MAX_TIMEOUT = 7 * 24 * 3600.0
#: most threads a task may ask for (a worker gives it at most its own max_threads)
MAX_THREADS = 1024
_TASK_KEYS = ("benchmark", "engine", "params", "repeat", "timeout", "threads", "priority", "label", "description")


def positive_int(value: object, what: str, *, high: int) -> int:
    """``value`` if it is a whole number in [1, ``high``]; else `ParamsError` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamsError(f"{what} debe ser un número entero (recibido {value!r})", field=what)
    if not 1 <= value <= high:
        raise ParamsError(f"{what} debe estar entre 1 y {high} (recibido {value})", field=what)
    return value


def _timeout(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ParamsError(f"{where}: timeout debe ser un número de segundos", field="timeout")
    if not 0 < value <= MAX_TIMEOUT:
        raise ParamsError(f"{where}: timeout debe estar entre 0 y {MAX_TIMEOUT:.0f} s", field="timeout")
    return float(value)


def parse_task(obj: object, where: str = "tarea") -> list[TaskSpec]:
    """One task object (partisim's or an ETAPA-6 one) -> its specs (``repeat`` copies
    of the same task)."""
    if not isinstance(obj, Mapping):
        raise ParamsError(f"{where}: cada tarea debe ser un objeto JSON con benchmark y params")
    etapa6 = is_etapa6_task(obj)
    if etapa6:
        obj = task_fields(obj, where)
    unknown = [k for k in obj if k not in _TASK_KEYS]
    if unknown:
        raise ParamsError(
            f"{where}: clave desconocida {unknown[0]!r}; claves válidas: benchmark (o engine), "
            "params, repeat, timeout, threads, priority, label, description",
            field=str(unknown[0]),
        )
    if obj.get("description") is not None and not isinstance(obj["description"], str):
        raise ParamsError(f"{where}: description debe ser un texto", field="description")
    if "benchmark" in obj and "engine" in obj:
        raise ParamsError(f"{where}: use benchmark o engine, no ambos", field="benchmark")
    name = obj.get("benchmark", obj.get("engine"))
    if name is None:
        raise ParamsError(
            f"{where}: falta benchmark (uno de {', '.join(ENGINES)}, benchmark.py, benchmark_cython.py)",
            field="benchmark",
        )
    try:
        engine = resolve_engine(name)
        raw = obj.get("params")
        if raw is not None and not isinstance(raw, Mapping):
            raise ParamsError(
                f"params debe ser un objeto JSON (clave: valor); se recibió {str(raw)[:60]}", field="params"
            )
        params = parse_params({k: number_from_text(v) for k, v in (raw or {}).items()}).to_api()
    except ParamsError as exc:
        raise ParamsError(f"{where}: {exc.message}", field=exc.field) from None
    repeat = positive_int(obj.get("repeat", 1), f"{where}: repeat", high=MAX_REPEAT)
    timeout = _timeout(obj.get("timeout"), where)
    threads = positive_int(obj.get("threads", 1), f"{where}: threads", high=MAX_THREADS)
    priority = parse_priority(obj["priority"], where) if obj.get("priority") is not None else 0
    label = parse_label(obj.get("label"), where, "task_id" if etapa6 else "label")
    spec = TaskSpec(benchmark=engine, params=params, timeout=timeout, threads=threads, priority=priority, label=label)
    return [spec] * repeat


@dataclass
class TaskDocument:
    """A task file or body, validated: its specs, and what the user should know about
    it (a task count in an ETAPA-6 wrapper that disagrees with the list)."""

    specs: list[TaskSpec]
    warnings: list[str] = field(default_factory=list)


def parse_tasks(data: object, source: str = "la petición") -> list[TaskSpec]:
    """A list of task objects, or ``{"tasks": [...]}`` -> all their specs."""
    return read_tasks(data, source).specs


def read_tasks(data: object, source: str = "la petición") -> TaskDocument:
    """A list of task objects, ``{"tasks": [...]}`` or an ETAPA-6 wrapper -> their specs
    and warnings. A label (an ETAPA-6 ``task_id``) used by two tasks is an error."""
    warnings: list[str] = []
    wrapped = etapa6_wrapper(data, source) if isinstance(data, Mapping) else None
    if wrapped is not None:
        data, warnings = wrapped
    elif isinstance(data, Mapping):
        extra = [k for k in data if k not in ("tasks", "batch")]
        if "tasks" not in data or extra:
            raise ParamsError(
                f'{source}: se esperaba una lista de tareas o un objeto {{"tasks": [...]}}'
                + (f" (clave desconocida {extra[0]!r})" if extra else "")
            )
        data = data["tasks"]
    if not isinstance(data, list):
        raise ParamsError(f'{source}: se esperaba una lista de tareas o un objeto {{"tasks": [...]}}')
    if not data:
        raise ParamsError(f"{source}: la lista de tareas está vacía")
    specs: list[TaskSpec] = []
    if len(data) > MAX_TASKS:
        raise ParamsError(f"{source}: {len(data)} tareas (máximo {MAX_TASKS} por envío)")
    labels: dict[str, int] = {}
    for k, obj in enumerate(data, start=1):
        found = parse_task(obj, f"{source}, tarea {k}")
        label = found[0].label if found else None
        if label is not None:
            if label in labels:
                raise ParamsError(
                    f"{source}: el identificador {label!r} se repite (tareas {labels[label]} y {k}); "
                    "cada tarea de un lote necesita uno distinto",
                    field="task_id",
                )
            labels[label] = k
        if len(specs) + len(found) > MAX_TASKS:
            raise ParamsError(
                f"{source}: al menos {len(specs) + len(found)} tareas contando repeat (máximo {MAX_TASKS} por envío)"
            )
        specs.extend(found)
    return TaskDocument(specs, warnings)


def step_warnings(specs: Iterable[TaskSpec]) -> list[str]:
    """The distinct coarse-step warnings of these tasks (`coarse_step_warnings`), in
    order. Seeds and step counts change nothing, so each configuration is parsed once."""
    configurations: dict[str, ApiParams] = {}
    for spec in {id(spec): spec for spec in specs}.values():  # ``repeat`` copies are one object
        rest = {k: v for k, v in spec.params.items() if k not in (STEPS_KEY, SEED_KEY)}
        configurations.setdefault(json.dumps(rest, sort_keys=True), spec.params)
    return coarse_step_warnings(parse_params(params) for params in configurations.values())


def parse_submission(body: object) -> tuple[list[TaskSpec], str | None]:
    """The body of ``POST /api/tasks``: one task, a list, or ``{"tasks": [...], "batch"?}``."""
    document, batch = read_submission(body)
    return document.specs, batch


def read_submission(body: object) -> tuple[TaskDocument, str | None]:
    """`parse_submission` with the document's warnings; an ETAPA-6 file is read as it is."""
    batch = None
    if isinstance(body, Mapping) and "tasks" in body:
        batch = body.get("batch")
        if batch is not None and not _valid_batch(batch):
            raise ParamsError(
                "batch debe ser un texto de 1 a 64 caracteres (letras, dígitos, '-', '_', '.')",
                field="batch",
            )
        return read_tasks(body), batch
    if isinstance(body, Mapping):
        return TaskDocument(parse_task(body, "la tarea")), None
    return read_tasks(body), None


def _valid_batch(batch: object) -> bool:
    return isinstance(batch, str) and 1 <= len(batch) <= 64 and all(c.isalnum() or c in "-_." for c in batch)


def load_task_file(path: str | Path) -> list[TaskSpec]:
    """Read and validate a JSON task file."""
    return load_task_document(path).specs


def load_task_document(path: str | Path) -> TaskDocument:
    """Read and validate a JSON task file (partisim's format or ETAPA 6's)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError(f"no existe el archivo de tareas {p}") from None
    except UnicodeDecodeError as exc:
        raise ParamsError(
            f"{p} no es texto UTF-8 (byte {exc.start}): guárdelo como UTF-8, como lo escribe un editor de JSON"
        ) from None
    except OSError as exc:
        raise ParamsError(f"no se puede leer {p}: {explain_os_error(exc)}") from None
    return read_tasks(decode_json(text, str(p)), str(p))


def decode_json(text: str, source: str) -> JsonValue:
    """A task file's JSON; `ParamsError` naming the file when it is not JSON or nests too deep."""
    try:
        return loads_json(text)
    except JsonRefused as exc:
        cause = exc.__context__
        if isinstance(cause, json.JSONDecodeError):
            raise ParamsError(f"{source}: {explain_json_error(cause)}") from None
        raise ParamsError(f"{source}: {exc}") from None


# -- sweeps -------------------------------------------------------------------------


class IntValues:
    """Integers given as values and ranges (``"1-3,7"``), held as ranges: their number
    is known without listing them, so a sweep is counted before anything is built.
    Iterating yields each distinct value once, in the order given."""

    def __init__(self, spans: Sequence[tuple[int, int]]) -> None:
        self.spans = tuple(spans)
        merged: list[list[int]] = []
        for low, high in sorted(self.spans):
            if merged and low <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], high)
            else:
                merged.append([low, high])
        self._count = sum(high - low + 1 for low, high in merged)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[int]:
        if len(self.spans) == 1:
            low, high = self.spans[0]
            yield from range(low, high + 1)
            return
        seen: set[int] = set()
        for low, high in self.spans:
            for value in range(low, high + 1):
                if value not in seen:
                    seen.add(value)
                    yield value

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and any(low <= value <= high for low, high in self.spans)


def parse_int_values(text: str, what: str) -> IntValues:
    """``"100,1000"`` or ``"1-10"`` or ``"1-3,7"`` -> the integers, as ranges (nothing listed)."""
    text = str(text)
    listed = text.count(",") + 1
    if listed > MAX_TASKS:  # counted before splitting: a long list must not cost memory first
        raise ParamsError(f"{what}: {listed} valores (máximo {MAX_TASKS} tareas por envío)")
    spans: list[tuple[int, int]] = []
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > 1 and not all(parts):
        raise ParamsError(f"{what}: hay un valor vacío entre comas en {str(text).strip()[:80]!r}")
    for part in parts:
        if not part:
            continue
        if len(part) > 41:  # two 20-digit numbers and a dash
            raise ParamsError(f"{what}: valor demasiado largo {part[:40]!r}...")
        try:
            if "-" in part[1:]:
                low_s, high_s = part.split("-", 1) if not part.startswith("-") else (part, "")
                low, high = int(low_s), int(high_s)
                if high < low:
                    raise ParamsError(f"{what}: rango vacío {part!r} (el inicio supera al final)")
                if high - low >= MAX_TASKS:
                    raise ParamsError(f"{what}: rango demasiado grande {part!r}")
                spans.append((low, high))
            else:
                value = int(part)
                spans.append((value, value))
        except ValueError:
            raise ParamsError(
                f"{what}: valor inválido {part[:40]!r}; use enteros separados por comas o un rango como 1-10"
            ) from None
    if not spans:
        raise ParamsError(f"{what}: indique al menos un valor")
    values = IntValues(spans)
    if len(values) > MAX_TASKS:
        raise ParamsError(f"{what}: {len(values)} valores (máximo {MAX_TASKS} tareas por envío)")
    return values


def parse_int_list(text: str, what: str) -> list[int]:
    """``"100,1000"`` or ``"1-10"`` or ``"1-3,7"`` -> integers, in order, without repeats."""
    return list(parse_int_values(text, what))


def parse_engine_list(text: str, what: str = "--engines") -> list[str]:
    """``"python,cython"`` -> canonical engine names, in order, without repeats."""
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    if not names:
        raise ParamsError(f"{what}: elija al menos un motor (python, numpy, cython)", field="engines")
    try:
        return list(dict.fromkeys(resolve_engine(n) for n in names))
    except ParamsError as exc:
        raise ParamsError(f"{what}: {exc.message}", field="engines") from None


def _factors(engines: Sized, particles: Sized, steps: Sized, seeds: Sized, repeat: int) -> str:
    text = f"{len(engines)} motores x {len(particles)} partículas x {len(steps)} pasos x {len(seeds)} semillas"
    return text + (f" x {repeat} repeticiones" if repeat > 1 else "")


def sweep(
    engines: Sequence[str],
    particles: Collection[int],
    steps: Collection[int],
    seeds: Collection[int],
    *,
    repeat: int = 1,
    timeout: float | None = None,
    threads: int = 1,
    params: Mapping[str, object] | None = None,
    names: Mapping[str, str] | None = None,
) -> list[TaskSpec]:
    """The cartesian product engines x particles x steps x seeds, each ``repeat`` times,
    each simulation on ``threads`` threads.

    ``names``: what the user called each parameter (``{"NUM_PARTICULAS": "--particles"}``),
    so a value out of range is reported under that name."""
    repeat = positive_int(repeat, "--repeat", high=MAX_REPEAT)
    threads = positive_int(threads, "--threads", high=MAX_THREADS)
    timeout = _timeout(timeout, "--timeout")
    engines = list(dict.fromkeys(resolve_engine(e) for e in engines))
    # counted before anything is built: 1-99999 x 1-99999 is 10^10 tasks, refused here
    count = len(engines) * len(particles) * len(steps) * len(seeds) * repeat
    if count == 0:
        raise ParamsError("el barrido no produce ninguna tarea")
    if count > MAX_TASKS:
        raise ParamsError(
            f"el barrido produce {count} tareas ({_factors(engines, particles, steps, seeds, repeat)}); "
            f"el máximo es {MAX_TASKS} por envío",
            field="sweep",
        )
    combos = itertools.product(engines, particles, steps, seeds)
    base = dict(params or {})
    specs: list[TaskSpec] = []
    for engine, n, s, seed in combos:
        try:
            checked = parse_params({**base, PARTICLES_KEY: n, STEPS_KEY: s, SEED_KEY: seed})
        except ParamsError as exc:
            raise exc.renamed(names or {}) from None
        specs.extend([TaskSpec(benchmark=engine, params=checked.to_api(), timeout=timeout, threads=threads)] * repeat)
    return specs
