"""The tracking core both trackers share: id allocation, association and track lifecycle.

What differs between sensors is the measurement model (a camera tracks boxes in pixels, a LiDAR
tracks cluster centres in site metres); that lives beside each agent as a
:class:`MeasurementModel`. What is the same lives here, once:

- **ids** (:class:`TrackIds`): ``t<run>-<n>``, where ``<run>`` is a per-device run number kept in
  the data directory and advanced (durably) at every start. An agent restart therefore never
  hands out an id of an earlier run, so ``<device>-t3-1`` names one object, ever.
- **association** (:class:`TrackCore`): greedy lowest cost first over every (track, measurement)
  pair the model gates in, each track and each measurement used at most once.
- **lifecycle**: matched tracks are corrected and gain a hit, unmatched ones coast and count a
  miss, tracks the model says are over are dropped, unmatched measurements start tracks;
  a track is confirmed once it has ``confirm_hits`` hits.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _B36[r] + out
        if n == 0:
            return out


class TrackIds:
    """Hands out ``f"{prefix}{n}"`` with ``n = 1, 2, ...``; the prefix names the run."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._next = 1

    def next(self) -> str:
        ident = f"{self.prefix}{self._next}"
        self._next += 1
        return ident

    @classmethod
    def ephemeral(cls) -> TrackIds:
        """A random run prefix, for a tracker without a data directory (tests, benches, the
        offline replay): unique across runs with high probability, not with certainty."""
        return cls(f"tx{secrets.token_hex(3)}-")

    @classmethod
    def persistent(cls, path: Path, *, wall: float | None = None) -> TrackIds:
        """Advance the run number kept in ``path`` and use it as the prefix.

        The new number is on disk (fsync'd file, atomic rename, fsync'd directory) before any
        id of this run exists, so a crash cannot make two runs share a number. A missing file
        starts at run 1; an unreadable one restarts the count from the wall clock in seconds,
        which is above any count an agent could have reached by starting once per second.
        """
        previous = 0
        problem: str | None = None
        try:
            previous = int(path.read_text(encoding="ascii").strip())
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as err:
            problem = str(err)
        if problem is None and previous < 0:
            problem = "negative run number"
        if problem is not None:
            previous = int(wall if wall is not None else time.time())
            log.warning("track run file %s unreadable (%s); counting on from %d",
                        path, problem, previous)
        run = previous + 1
        try:
            _write_durably(path, f"{run}\n")
        except OSError as err:
            # Without a durable run number only a random prefix keeps ids apart across runs.
            log.warning("track run file %s not writable (%s); using a random id prefix",
                        path, err.strerror)
            return cls.ephemeral()
        return cls(f"t{_base36(run)}-")


def track_entity(device: str, track_id: str) -> str:
    """The ``entity`` of a track on the wire: ``<device>-<track id>``, unique across devices
    and runs. A device id too long for the 64-character limit is shortened, never the track
    id (which carries the uniqueness of the run)."""
    room = 64 - len(track_id) - 1
    return f"{device[:room]}-{track_id}"


def _write_durably(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="ascii") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(slots=True)
class TrackState:
    """Lifecycle fields every track carries; a sensor's track class extends this."""

    id: str
    hits: int = 1
    missed: int = 0
    confirmed: bool = False


T = TypeVar("T", bound=TrackState)
M = TypeVar("M")
P = TypeVar("P")
M_contra = TypeVar("M_contra", contravariant=True)


class MeasurementModel(Protocol[T, M_contra, P]):
    """A sensor's motion and measurement model; the core calls it in this order per update:
    ``predict`` every track, ``cost`` the pairs, ``correct`` matches, ``coast`` the rest,
    ``alive`` to prune, ``spawn`` for unmatched measurements."""

    def predict(self, track: T, t: float) -> P: ...

    def cost(self, track: T, predicted: P, measurement: M_contra) -> float | None:
        """Association cost (lower is better), or None when the pair is outside the gate."""
        ...

    def correct(self, track: T, predicted: P, measurement: M_contra, t: float) -> None: ...

    def coast(self, track: T, predicted: P, t: float) -> None: ...

    def alive(self, track: T, t: float) -> bool: ...

    def spawn(self, track_id: str, measurement: M_contra, t: float) -> T: ...


class TrackCore(Generic[T, M, P]):
    def __init__(self, model: MeasurementModel[T, M, P], *, confirm_hits: int,
                 ids: TrackIds | None = None) -> None:
        self.model = model
        self.confirm_hits = confirm_hits
        self.ids = ids if ids is not None else TrackIds.ephemeral()
        self.tracks: list[T] = []
        self.created = 0
        self.confirmed_total = 0

    def update(self, measurements: Sequence[M], t: float,
               looked: Callable[[T, P], bool] | None = None) -> list[T]:
        """Advance to ``t`` with this update's measurements; returns the confirmed live tracks
        (coasting ones included: a caller that wants only this update's matches checks
        ``missed == 0``).

        ``looked(track, predicted)`` says whether the sensor looked where the track is in this
        update (default: everywhere). An unmatched track that was not looked at is *held*: no
        miss, no coasting; not seeing something one did not look at is no evidence it left."""
        model = self.model
        predicted = [model.predict(tr, t) for tr in self.tracks]
        pairs: list[tuple[float, int, int]] = []
        for ti, tr in enumerate(self.tracks):
            for mi, meas in enumerate(measurements):
                cost = model.cost(tr, predicted[ti], meas)
                if cost is not None:
                    pairs.append((cost, ti, mi))
        pairs.sort()
        used_t: set[int] = set()
        used_m: set[int] = set()
        for _, ti, mi in pairs:
            if ti in used_t or mi in used_m:
                continue
            used_t.add(ti)
            used_m.add(mi)
            tr = self.tracks[ti]
            model.correct(tr, predicted[ti], measurements[mi], t)
            tr.hits += 1
            tr.missed = 0
            self._maybe_confirm(tr)
        for ti, tr in enumerate(self.tracks):
            if ti not in used_t and (looked is None or looked(tr, predicted[ti])):
                tr.missed += 1
                model.coast(tr, predicted[ti], t)
        self.tracks = [tr for tr in self.tracks if model.alive(tr, t)]
        for mi, meas in enumerate(measurements):
            if mi not in used_m:
                tr = model.spawn(self.ids.next(), meas, t)
                self.created += 1
                self._maybe_confirm(tr)
                self.tracks.append(tr)
        return [tr for tr in self.tracks if tr.confirmed]

    def _maybe_confirm(self, tr: TrackState) -> None:
        if not tr.confirmed and tr.hits >= self.confirm_hits:
            tr.confirmed = True
            self.confirmed_total += 1
