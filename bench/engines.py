#!/usr/bin/env python3
"""Speed of the three engines, and of the cython engine on several threads, measured in one run.

    python bench/engines.py [--quick] [--threads-only]

Boxes are scaled with sqrt(n / 100) so every size keeps the default packing
fraction (100 particles in 800 x 600). Ratios are computed from this run's own
figures; nothing is compared against numbers from elsewhere. Memory is the peak
RSS growth of one cython run at n = 1 000 000, in a fresh process.

Threads (issue 20): the same simulation on 1 and 2 threads at every size from 10^2 to
10^6, as `simulate` runs it (small runs use one thread, `thread_plan`), on the machine as
it is and beside two processes that burn a core each; runs last 0.5 s or more. Then the
spread of the 2-thread speed-up at 10^5 and 10^6 over several paired runs, the size
where a second thread stops costing time (`MIN_PARTICLES_FOR_THREADS`), and the wait
policy: ACTIVE and PASSIVE against the engine's bounded spin, idle and beside the burners.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from partisim.sim import SimParams, engine_threads, simulate
from partisim.sim.engines import MIN_PARTICLES_FOR_THREADS, WAIT_POLICY, _cython
from partisim.sim.environment import load_1min
from partisim.sim.state import initial_state

# targets of issue 15
SINGLE_1E5 = 3e7  # particle-steps/s, one thread, n = 100 000
SINGLE_1E6 = 2e7  # particle-steps/s, one thread, n = 1 000 000
TWO_THREADS = 1.7  # speed-up of 2 threads over 1 at n >= 100 000
NEVER_SLOWER = 1.10  # issue 20: 2 threads at most 10% slower than 1, at every size, even beside load
MIN_RUN_S = 0.5  # issue 20: runs of at least half a second
BYTES_PER_PARTICLE = 200

# Peak RSS in KiB: VmHWM where /proc has it (ru_maxrss survives exec on Linux, so a
# child would start from the parent's peak), else ru_maxrss.
MEMORY_PROBE = """
import os, resource, sys
from partisim.sim import get_engine, simulate
sys.path.insert(0, {bench!r})
from engines import params_for

def peak_kib():
    if os.path.exists("/proc/self/status"):
        with open("/proc/self/status") as fh:
            return int(fh.read().split("VmHWM:")[1].split()[0])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

get_engine("cython")
params = params_for({n}, {steps})
before = peak_kib()
simulate(params, "cython")
print((peak_kib() - before) * 1024 / {n})
"""


def params_for(n: int, steps: int) -> SimParams:
    scale = math.sqrt(n / 100)
    return SimParams(particles=n, steps=steps, width=800.0 * scale, height=600.0 * scale, seed=42)


def best_of(params: SimParams, engine: str, repeats: int) -> float:
    """Best stepping-loop time over a few repeats (the machine is noisy)."""
    return min(simulate(params, engine).simulation_time for _ in range(repeats))


def thread_times(params: SimParams, counts: list[int], repeats: int) -> dict[int, float]:
    """Best time per thread count, the counts interleaved so a noisy spell hits them alike;
    checks that every count gives the same checksum."""
    best = {t: math.inf for t in counts}
    sums = set()
    for _ in range(repeats):
        for t in counts:
            result = simulate(params, "cython", threads=t)
            best[t] = min(best[t], result.simulation_time)
            sums.add((result.particle_collisions, result.wall_collisions, result.checksum))
    if len(sums) != 1:
        raise SystemExit(f"los resultados difieren entre números de hilos: {sums}")
    return best


@contextmanager
def burners(count: int = 2) -> Iterator[None]:
    """`count` processes spinning on the CPU while the block runs."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(1.0)  # a bench, not a test: give them a moment to be scheduled
        yield
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def steps_for(n: int, seconds: float = MIN_RUN_S) -> int:
    """Steps that make a one-thread run of n particles last about `seconds` or more: the
    time of one step from two probes (their difference leaves the set-up out)."""
    probe = max(2, int(1e6 / n))
    short = min(simulate(params_for(n, probe), "cython").simulation_time for _ in range(2))
    long = min(simulate(params_for(n, 2 * probe), "cython").simulation_time for _ in range(2))
    per_step = max((long - short) / probe, long / (2 * probe) / 2, 1e-9)
    return max(probe, math.ceil(1.3 * seconds / per_step))


def paired(n: int, steps: int, repeats: int) -> list[tuple[float, float, int, str]]:
    """(time on 1 thread, time on 2 asked, threads used, why) per repeat, back to back."""
    p = params_for(n, steps)
    out = []
    for _ in range(repeats):
        one = simulate(p, "cython", threads=1)
        two = simulate(p, "cython", threads=2)
        if (one.checksum, one.particle_collisions) != (two.checksum, two.particle_collisions):
            raise SystemExit(f"los resultados difieren entre 1 y 2 hilos a n={n}")
        out.append((one.simulation_time, two.simulation_time, two.threads, two.threads_reason))
    return out


def threads_table(title: str, sizes: list[tuple[int, int]], repeats: int) -> float:
    """Print 1 vs 2 threads at each size (as `simulate` runs them); return the worst ratio
    of the best times, 2/1 (the best of a few repeats: the least disturbed run)."""
    print(f"\n{title} (carga de 1 min al empezar: {load_1min()})")
    print(
        f"{'n':>8} {'pasos':>6} {'usados':>6} {'1 hilo (s)':>11} {'2 hilos (s)':>12}"
        f" {'2/1 mejor':>10} {'2/1 mediana':>12} {'2/1 peor':>9}  motivo"
    )
    worst = 0.0
    for n, steps in sizes:
        runs = paired(n, steps, repeats)
        ratios = [b / a for a, b, _, _ in runs]
        best = min(b for _, b, _, _ in runs) / min(a for a, _, _, _ in runs)
        worst = max(worst, best)
        used = "/".join(sorted({str(u) for _, _, u, _ in runs}))
        why = ",".join(sorted({r for _, _, _, r in runs}))
        print(
            f"{n:>8} {steps:>6} {used:>6} {min(a for a, _, _, _ in runs):>11.4f}"
            f" {min(b for _, b, _, _ in runs):>12.4f} {best:>10.3f} {statistics.median(ratios):>12.3f}"
            f" {max(ratios):>9.3f}  {why}"
        )
    return worst


def raw_ratio(n: int, steps: int, repeats: int) -> tuple[float, float]:
    """Best times on 1 and 2 threads of the engine itself (no `thread_plan`)."""
    p = params_for(n, steps)
    best = {1: math.inf, 2: math.inf}
    for _ in range(repeats):
        for t in (1, 2):
            state = initial_state(p)
            start = time.perf_counter()
            _cython.run(p, state, threads=t)
            best[t] = min(best[t], time.perf_counter() - start)
    return best[1], best[2]


# The engine loaded without its package (which sets its bounded spin), so the OpenMP
# runtime reads OMP_WAIT_POLICY / GOMP_SPINCOUNT from this child's environment.
POLICY_PROBE = """
import importlib.util, sys, time
sys.path.insert(0, {bench!r})
spec = importlib.util.spec_from_file_location("partisim.sim.engines._cython", {path!r})
engine = importlib.util.module_from_spec(spec)
spec.loader.exec_module(engine)
from partisim.sim.state import initial_state
from engines import params_for
p = params_for({n}, {steps})
best = {{1: 1e9, 2: 1e9}}
for _ in range({repeats}):
    for t in (1, 2):
        state = initial_state(p)
        start = time.perf_counter()
        engine.run(p, state, threads=t)
        best[t] = min(best[t], time.perf_counter() - start)
print(best[1], best[2])
"""


def policy_ratio(policy: str, n: int, steps: int, repeats: int) -> tuple[float, float]:
    code = POLICY_PROBE.format(
        bench=os.path.dirname(os.path.abspath(__file__)), path=_cython.__file__, n=n, steps=steps, repeats=repeats
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if policy.startswith("spin-"):  # the engine's own: a bounded spin, then sleep
        env["GOMP_SPINCOUNT"] = policy.removeprefix("spin-")
    else:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    one, two = out.stdout.split()
    return float(one), float(two)


def threads_report(q: float) -> None:
    """Issue 20's figures: threads never slower, the spread at 1e5 and 1e6, the threshold, the policy."""
    if engine_threads("cython", 2) < 2:
        print("\nHilos: el motor cython no puede usar dos hilos aquí (un núcleo, o sin OpenMP)")
        return
    repeats = 3
    sizes = [(n, steps_for(n)) for n in (100, 1_000, 10_000, 100_000, 1_000_000)]
    idle = threads_table("Hilos: 1 frente a 2, máquina tal como está", sizes, repeats)
    with burners():
        loaded = threads_table("Hilos: 1 frente a 2, con dos procesos que ocupan un núcleo cada uno", sizes, repeats)
    print(
        f"\nSpread de la aceleración con 2 hilos (el motor solo, sin thread_plan; ejecuciones de >= {MIN_RUN_S} s,"
        f" pares seguidos; carga de 1 min: {load_1min()})"
    )
    spread = {}
    for n, steps in sizes[-2:]:
        ups = sorted(one / two for one, two in (raw_ratio(n, steps, 1) for _ in range(max(3, int(5 * q)))))
        spread[n] = ups
        print(
            f"  n={n:>8}: {len(ups)} pares; mín x{ups[0]:.2f}, mediana x{statistics.median(ups):.2f}, "
            f"máx x{ups[-1]:.2f}"
        )
    print(
        f"\nUmbral: el motor solo (sin thread_plan), 2 hilos / 1 hilo; por debajo de {MIN_PARTICLES_FOR_THREADS} "
        "partículas se usa 1 hilo"
    )
    for n in (1_000, 3_000, 10_000, 20_000, 50_000):
        one, two = raw_ratio(n, max(5, int(3e6 / n)), 3)
        print(f"  n={n:>6}: 1 hilo {one:.4f} s, 2 hilos {two:.4f} s, 2/1 = {two / one:.2f}")
    policies = ("ACTIVE", "PASSIVE", WAIT_POLICY)
    for label, loaded_run in (("máquina tal como está", False), ("con dos procesos ocupando los núcleos", True)):
        print(f"\nPolítica de espera de OpenMP, {label} (el motor solo, 2/1; {WAIT_POLICY} es la del motor)")
        with burners() if loaded_run else contextlib.nullcontext():
            for n, steps in ((1_000, 2000), (10_000, 300), (100_000, max(5, sizes[3][1] // 2))):
                for policy in policies:
                    one, two = policy_ratio(policy, n, steps, 3)
                    print(f"  n={n:>6} {policy:<10}: 1 hilo {one:.4f} s, 2 hilos {two:.4f} s, 2/1 = {two / one:.2f}")
    print("\nObjetivos del issue 20:")
    for label, worst in (("máquina tal como está", idle), ("con dos procesos de carga", loaded)):
        print(
            f"  2 hilos nunca más de un 10 % más lentos que 1 ({label}): peor 2/1 de los mejores tiempos = {worst:.3f} "
            f"(objetivo <= {NEVER_SLOWER}): {verdict(worst <= NEVER_SLOWER)}"
        )
    for n, ups in spread.items():
        med = statistics.median(ups)
        print(
            f"  2 hilos frente a 1 a n={n:,}: mediana x{med:.2f} (de x{ups[0]:.2f} a x{ups[-1]:.2f}; "
            f"objetivo >= {TWO_THREADS} en la máquina en reposo): {verdict(med >= TWO_THREADS)}".replace(",", " ")
        )


def bytes_per_particle(n: int, steps: int) -> float:
    code = MEMORY_PROBE.format(bench=os.path.dirname(os.path.abspath(__file__)), n=n, steps=steps)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def verdict(ok: bool) -> str:
    return "CUMPLIDO" if ok else "NO CUMPLIDO"


def rate(n: int, steps: int, seconds: float) -> str:
    return f"{n * steps / seconds:,.0f}".replace(",", " ")


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark de los motores de simulación.")
    parser.add_argument("--quick", action="store_true", help="menos pasos y repeticiones (prueba rápida)")
    parser.add_argument("--threads-only", action="store_true", help="solo las tablas de hilos (issue 20)")
    args = parser.parse_args()
    if "OPENBLAS_NUM_THREADS" not in os.environ:
        # numpy's dot product (the energy) wakes OpenBLAS's threads, which then spin for a
        # while and take a core from the next multi-threaded run: start again without them
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    q = 0.2 if args.quick else 1.0
    if args.threads_only:
        threads_report(q)
        return 0

    # (n, steps for python/numpy, steps for cython, engines)
    plan = [
        (100, 500, 500, ("python", "numpy", "cython")),
        (1_000, max(10, int(100 * q)), 500, ("python", "numpy", "cython")),
        (10_000, max(2, int(10 * q)), 100, ("python", "numpy", "cython")),
        (100_000, 0, max(5, int(50 * q)), ("cython",)),
    ]
    rows = []
    cython_fit = []
    for n, slow_steps, fast_steps, engines in plan:
        rate_of = {}
        for engine in engines:
            steps = fast_steps if engine == "cython" else slow_steps
            p = params_for(n, steps)
            t = best_of(p, engine, repeats=3 if engine == "cython" else 1)
            rate_of[engine] = n * steps / t
            rows.append((n, engine, steps, t, rate_of[engine]))
            if engine == "cython":
                cython_fit.append((n, t / steps))
        if "python" in rate_of:
            rows.append((n, "cython/python", None, None, rate_of["cython"] / rate_of["python"]))
            rows.append((n, "cython/numpy", None, None, rate_of["cython"] / rate_of["numpy"]))

    print(f"{'n':>8}  {'motor':<14} {'pasos':>6} {'segundos':>10} {'partículas-paso/s':>20}")
    for n, engine, steps, t, value in rows:
        if steps is None:
            print(f"{n:>8}  {engine:<14} {'':>6} {'':>10} {'x ' + format(value, '.1f'):>20}")
        else:
            print(f"{n:>8}  {engine:<14} {steps:>6} {t:>10.4f} {value:>20,.0f}".replace(",", " "))
    logs = np.log([[n, t] for n, t in cython_fit])
    exponent = float(np.polyfit(logs[:, 0], logs[:, 1], 1)[0])
    print(f"\nExponente ajustado del tiempo por paso de cython frente a n: {exponent:.3f}")
    big = next(r for r in rows if r[0] == 100_000 and r[1] == "cython")
    speedups = [r[4] for r in rows if r[1] == "cython/python"]
    print(f"cython/python mínimo: x{min(speedups):.1f} (objetivo >= 50)")
    print(f"cython a n=100 000: {big[4]:,.0f} partículas-paso/s (objetivo >= 2e7)".replace(",", " "))
    print(f"exponente: {exponent:.3f} (objetivo <= 1.15)")

    # threads: the same simulation on 1, 2, ... cores, at n = 1e5 and 1e6
    cores = engine_threads("cython", os.cpu_count() or 1)
    counts = list(range(1, cores + 1)) if cores > 1 else [1, 2]
    # runs of half a second or more: shorter ones measure the start of the threads, not the steps
    sizes = [(100_000, max(5, int(200 * q))), (1_000_000, max(5, int(40 * q)))]
    print(f"\nHilos (motor cython; esta máquina: {os.cpu_count()} núcleos, OpenMP hasta {cores} hilos)")
    print(f"{'n':>8}  {'hilos':>5} {'pasos':>6} {'segundos':>10} {'partículas-paso/s':>20} {'aceleración':>12}")
    single, two = {}, {}
    for n, steps in sizes:
        times = thread_times(params_for(n, steps), counts, repeats=5)
        for t in counts:
            speedup = times[1] / times[t]
            print(f"{n:>8}  {t:>5} {steps:>6} {times[t]:>10.4f} {rate(n, steps, times[t]):>20} {speedup:>11.2f}x")
        single[n] = n * steps / times[1]
        two[n] = times[1] / times[2] if 2 in times else 1.0

    memory_steps = max(5, int(20 * q))
    per_particle = bytes_per_particle(1_000_000, memory_steps)

    print("\nObjetivos del issue 15:")
    for n, target in ((100_000, SINGLE_1E5), (1_000_000, SINGLE_1E6)):
        print(
            f"  1 hilo a n={n:,}: {single[n]:,.0f} partículas-paso/s (objetivo >= {target:.0e}): "
            f"{verdict(single[n] >= target)}".replace(",", " ")
        )
    for n, ratio in two.items():
        text = f"x{ratio:.2f}" if cores > 1 else "no medible (OpenMP con 1 hilo)"
        print(
            f"  2 hilos frente a 1 a n={n:,}: {text} (objetivo >= {TWO_THREADS}): "
            f"{verdict(cores > 1 and ratio >= TWO_THREADS)}".replace(",", " ")
        )
    print(
        f"  memoria a n=1 000 000: {per_particle:.0f} bytes por partícula (pico de RSS; objetivo <= "
        f"{BYTES_PER_PARTICLE}): {verdict(per_particle <= BYTES_PER_PARTICLE)}"
    )
    threads_report(q)
    return 0


if __name__ == "__main__":
    sys.exit(main())
