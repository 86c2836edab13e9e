"""One guarded runner for every agent's sensing loop.

A sensing loop (the camera frame loop, the LiDAR scan processor, the wristband advert loop) is a
function that runs until its agent stops. :class:`SupervisedLoop` runs it on its own thread and
catches anything it raises: the crash is logged at error level with its traceback (in the local
log only; health carries the exception class, never its message, which may quote the data
being processed), counted, and the loop restarts after an exponential backoff. A loop that
crashes ``max_crashes`` times within ``crash_window_s`` is given up on and marked dead, so a
permanent fault (a broken model file, a bug hit by every scan) shows in health instead of
spinning; the agent's health then says ``ok: false`` with the loop ``dead``.

Time is injectable: ``clock`` measures the crash window and ``wait`` sleeps through a backoff
(returning True when the loop is asked to stop), so tests run restarts without sleeping.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable

from edge.config import SupervisionConfig
from edge.protocol import LoopHealth, LoopState

log = logging.getLogger(__name__)

_NOT_NAME = re.compile(r"[^A-Za-z0-9_.]")


def error_class(err: BaseException) -> str:
    """What health may say about a crash: the exception's class name only (its message may
    quote the data being processed), reduced to the characters of an identifier."""
    name = _NOT_NAME.sub("_", type(err).__name__)[:64]
    return name if name[:1].isalpha() or name[:1] == "_" else f"_{name}"[:64]


LoopBody = Callable[[], None]


class SupervisedLoop:
    """Runs ``body`` on a thread until ``stop_event`` is set, restarting it when it raises.

    ``body`` returning normally ends the loop (state ``stopped``): that is how a finite source
    (a video file) says it is done. ``on_dead`` is called once, from the loop's thread, when the
    loop is given up on.
    """

    def __init__(
        self,
        name: str,
        body: LoopBody,
        *,
        stop_event: threading.Event | None = None,
        config: SupervisionConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool] | None = None,
        on_dead: Callable[[SupervisedLoop], None] | None = None,
    ) -> None:
        self.name = name
        self._body = body
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self.config = config or SupervisionConfig()
        self._clock = clock
        self._wait = wait if wait is not None else self.stop_event.wait
        self._on_dead = on_dead
        self._lock = threading.Lock()
        self._state = LoopState.STOPPED
        self._crashes = 0
        self._restarts = 0
        self._last_error: str | None = None
        self._recent: deque[float] = deque()
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"loop {self.name} already started")
        with self._lock:
            self._state = LoopState.ALIVE
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self.stop_event.set()
        self.join(timeout_s)

    def join(self, timeout_s: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            if not self._thread.is_alive():
                self._thread = None

    def run(self) -> None:
        """The supervision itself; :meth:`start` runs it on a thread, tests may call it."""
        with self._lock:
            self._state = LoopState.ALIVE
        while not self.stop_event.is_set():
            try:
                self._body()
            except Exception as err:  # noqa: BLE001 - logged with its traceback in _crashed
                if self._crashed(err):
                    return
                delay = self._backoff_s()
                if self._wait(delay) or self.stop_event.is_set():
                    break
                with self._lock:
                    self._state = LoopState.ALIVE
                    self._restarts += 1
                log.warning("loop %s restarted (crash %d)", self.name, self._crashes)
                continue
            break  # a normal return: the loop is done
        with self._lock:
            if self._state is not LoopState.DEAD:
                self._state = LoopState.STOPPED

    # -- state ------------------------------------------------------------------------------

    @property
    def state(self) -> LoopState:
        with self._lock:
            return self._state

    @property
    def crashes(self) -> int:
        with self._lock:
            return self._crashes

    def health(self) -> LoopHealth:
        with self._lock:
            return LoopHealth(state=self._state, crashes=self._crashes,
                              restarts=self._restarts, last_error=self._last_error)

    # -- internals --------------------------------------------------------------------------

    def _crashed(self, err: Exception) -> bool:
        """Count a crash; True when the loop is now dead."""
        now = self._clock()
        cfg = self.config
        error = error_class(err)
        with self._lock:
            self._crashes += 1
            self._last_error = error
            self._recent.append(now)
            while self._recent and now - self._recent[0] > cfg.crash_window_s:
                self._recent.popleft()
            dead = len(self._recent) >= cfg.max_crashes
            self._state = LoopState.DEAD if dead else LoopState.RESTARTING
        if dead:
            log.error("loop %s crashed %d times in %.0f s (%s); giving up, the loop is dead",
                      self.name, cfg.max_crashes, cfg.crash_window_s, error, exc_info=err)
            if self._on_dead is not None:
                try:
                    self._on_dead(self)
                except Exception:
                    log.exception("on_dead hook of loop %s failed", self.name)
            return True
        log.error("loop %s crashed (%s); restarting", self.name, error, exc_info=err)
        return False

    def _backoff_s(self) -> float:
        cfg = self.config
        with self._lock:
            n = len(self._recent)
        return float(min(cfg.restart_max_s, cfg.restart_min_s * 2 ** max(0, n - 1)))
