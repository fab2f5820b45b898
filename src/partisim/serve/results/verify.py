"""Checksum comparisons for ``--verify``: a task run again on another worker, paired with
its original."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from partisim.protocol import TaskView
from partisim.serve.results.rows import STATUS_LABELS

__all__ = ["Check", "compare_checksums"]


@dataclass(frozen=True)
class Check:
    """A task run again on another worker: did the checksum agree?"""

    original_id: str
    verify_id: str
    original_worker: str | None
    verify_worker: str | None
    original_checksum: str | None
    verify_checksum: str | None
    verify_status: str

    @property
    def match(self) -> bool | None:
        if self.verify_status != "success" or not self.original_checksum or not self.verify_checksum:
            return None
        return self.original_checksum == self.verify_checksum

    @property
    def label(self) -> str:
        if self.match is None:
            return f"sin verificar ({STATUS_LABELS.get(self.verify_status, self.verify_status)})"
        where = f"{self.original_worker} vs {self.verify_worker}"
        return f"coincide ({where})" if self.match else f"¡NO COINCIDE! ({where})"


def compare_checksums(originals: dict[str, TaskView], reruns: Iterable[TaskView]) -> list[Check]:
    """Pair each re-run (``verify_of``) with its original task."""
    checks = []
    for rerun in reruns:
        original = originals.get(rerun.verify_of or "")
        if original is None:
            continue
        checks.append(
            Check(
                original_id=original.id,
                verify_id=rerun.id,
                original_worker=original.worker,
                verify_worker=rerun.worker,
                original_checksum=original.result.checksum if original.result else None,
                verify_checksum=rerun.result.checksum if rerun.result else None,
                verify_status=rerun.status,
            )
        )
    return checks
