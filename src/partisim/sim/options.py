"""The simulation parameters as command-line options: one table that `partisim run`
builds its options from and that the Docker runner uses to write a `partisim run`
command line, so both always agree on the flag of each parameter."""

from __future__ import annotations

from partisim.sim.numbers import integer

__all__ = ["OPTIONS", "INT_FIELDS", "SHORT_FLAGS"]

#: field -> (command-line option, Spanish help)
OPTIONS: dict[str, tuple[str, str]] = {
    "particles": ("--particles", f"número de partículas (NUM_PARTICULAS, 1..{integer(1_000_000)}; por defecto 100)"),
    "steps": ("--steps", f"número de pasos (NUM_PASOS, 1..{integer(10_000_000)}; por defecto 1000)"),
    "seed": ("--seed", "semilla aleatoria (SEMILLA; por defecto 42)"),
    "width": ("--width", "ancho del mundo (ANCHO_MUNDO; por defecto 800)"),
    "height": ("--height", "alto del mundo (ALTO_MUNDO; por defecto 600)"),
    "radius": ("--radius", "radio de las partículas (RADIO_PARTICULA; por defecto 5)"),
    "dt": ("--dt", "paso de tiempo (DT; por defecto 0,1)"),
    "max_speed": ("--max-speed", "velocidad inicial máxima (VELOCIDAD_INICIAL_MAX; por defecto 20)"),
    "wall_restitution": ("--wall-restitution", "coeficiente de restitución con la pared (0..1; por defecto 0,8)"),
    "particle_restitution": (
        "--particle-restitution",
        "coeficiente de restitución entre partículas (0..1; por defecto 0,9)",
    ),
}
INT_FIELDS = frozenset({"particles", "steps", "seed"})
SHORT_FLAGS = {"particles": "-n", "steps": "-s"}
