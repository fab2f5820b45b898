"""Read a Prometheus exposition the way Prometheus does (prometheus_client's parser), so
tests do not depend on the order of labels or on how a number is written.

    from helpers.metrics import metric, samples

    metric(text, "partisim_worker_tasks_total", worker_id="w1", status="success")  # 3.0, or None
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Samples", "samples", "metric", "series"]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def metric(text: str | Samples, name: str, **labels: str) -> float | None:
    """The value of the sample ``name`` with exactly ``labels`` (None when there is none)."""
    found = samples(text) if isinstance(text, str) else text
    return found.get((name, tuple(sorted(labels.items()))))


def series(text: str | Samples, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample named ``name``: (labels, value)."""
    found = samples(text) if isinstance(text, str) else text
    return [(dict(labels), v) for (n, labels), v in found.items() if n == name]
