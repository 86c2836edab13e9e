"""What the hub's health and stats endpoints say about each of its worker threads."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """One hub worker thread. ``queue_depth``/``queue_max`` are None for a worker without a
    queue. A worker that should run but is not alive makes the hub ``degraded``."""

    name: str
    alive: bool
    queue_depth: int | None = None
    queue_max: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {"alive": self.alive, "queue_depth": self.queue_depth, "queue_max": self.queue_max}


def thread_alive(thread: threading.Thread | None) -> bool:
    return thread is not None and thread.is_alive()
