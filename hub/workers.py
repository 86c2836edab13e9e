"""What the hub's health and stats endpoints say about each of its worker threads, and the
periodic sweeper thread several areas run."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


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


class Sweeper:
    """A daemon thread ``hub-<name>`` that calls ``tick`` every ``interval_s()`` seconds until
    stopped (read each time: a config swapped at run time applies at the next wait), or at
    once after :meth:`wake`. A tick that raises is counted through ``on_error`` and logged; the
    next one retries after ``error_interval_s()`` (default: the usual interval), since the
    usual cause is a database that is away for a while."""

    def __init__(
        self,
        name: str,
        tick: Callable[[], object],
        interval_s: Callable[[], float],
        on_error: Callable[[], None],
        error_interval_s: Callable[[], float] | None = None,
    ) -> None:
        self.name = name
        self._tick = tick
        self._interval_s = interval_s
        self._error_interval_s = error_interval_s or interval_s
        self._on_error = on_error
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"hub-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self._interval_s
            try:
                self._tick()
            except Exception:  # the database may be away; the next tick retries
                self._on_error()
                log.exception("%s sweep failed", self.name)
                wait = self._error_interval_s  # not at once: no tight loop of retries and logs
            if self._stop.is_set():
                return
            self._wake.wait(wait())
            self._wake.clear()

    def wake(self) -> None:
        """Tick now rather than at the end of the wait (a change the sweeper acts on)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def stopping(self) -> bool:
        """True once ``stop`` was called: a long tick may end early."""
        return self._stop.is_set()

    def status(self) -> WorkerStatus:
        return WorkerStatus(self.name, thread_alive(self._thread))
