"""What recording frames costs, in one run (no timed assertions anywhere).

For a few sizes at the viewer's limit of `VIEW_MAX_WORK` particle-steps, prints the
seconds of a plain cython run (`simulate`), of the same run recorded in 200 frames
(`record_frames`: the engine in chunks of k steps, positions copied out after each)
and their ratio, plus the bytes the frames take on the wire (base64 JSON of
``GET /api/tasks/{id}/frames``). The checksums must agree; the script says so.

Run: ``.venv/bin/python bench/frames.py [--repeat 3]``
"""

from __future__ import annotations

import argparse
import time

from partisim.serve.web.frames import VIEW_MAX_WORK, frames_view
from partisim.sim import parse_params, simulate
from partisim.sim.frames import record_frames


def _best(fn, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"límite del visor: {VIEW_MAX_WORK:,} partículas-paso".replace(",", " "))
    print(f"{'partículas':>10} {'pasos':>7} {'simple s':>9} {'200 fotog. s':>12} {'razón':>6} {'JSON MB':>8}  checksum")
    for n in (500, 2000, 5000, 20000):
        steps = VIEW_MAX_WORK // n
        side = (n * 3.1416 * 25 / 0.1) ** 0.5  # packing fraction 0.1
        params = parse_params({"NUM_PARTICULAS": n, "NUM_PASOS": steps, "ANCHO_MUNDO": side, "ALTO_MUNDO": side})
        plain_s, plain = _best(lambda p=params: simulate(p, "cython"), args.repeat)
        rec_s, rec = _best(lambda p=params: record_frames(p, "cython", max_frames=200), args.repeat)
        size = len(frames_view(rec).model_dump_json()) / 1e6  # type: ignore[arg-type]
        same = "igual" if rec.result.checksum == plain.checksum else "DISTINTO"  # type: ignore[attr-defined]
        print(f"{n:>10} {steps:>7} {plain_s:>9.3f} {rec_s:>12.3f} {rec_s / plain_s:>6.2f} {size:>8.2f}  {same}")


if __name__ == "__main__":
    main()
