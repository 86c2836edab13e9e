"""Per-track face matching on a camera: k of the last n observations, a cool-down per entry,
and a threshold that can never go below the backend's validated floor. Sans-IO: it sees track
ids, watchlist entry ids and cosine scores, never an image or an embedding.

Why k of n: one frame's score is noisy (blur, pose, a half-turned head); a person who really is
the entry scores above the threshold on most of their frames, a look-alike on one or two. The
window counts the frames in which the track's face was observed (a frame without a face of
that track neither helps nor hurts).

Why a cool-down per entry rather than per track: a person leaving and re-entering the view gets
a new track id; the reviewer needs one alert for that person, not one per track.

What it holds: per live track, for each of its last n observations, the entry ids that scored at
or above the threshold and their scores (the ids of watchlist entries, never anything about a
face that matched nothing). A track that ends is forgotten entirely (:meth:`FaceMatcher.retain`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Annotated, Protocol

from pydantic import Field, model_validator

from edge.config import ConfigError, StrictModel

log = logging.getLogger(__name__)

Score = Annotated[float, Field(ge=0, le=1)]


class ScoredEntry(Protocol):
    """One gallery candidate for a face (``edge.faces.gallery.Candidate`` fits)."""

    @property
    def entry_id(self) -> str: ...

    @property
    def score(self) -> float: ...


class MatcherConfig(StrictModel):
    """How sure the camera must be before it raises a face_match alert."""

    threshold: Score | None = Field(default=None, description=(
        "cosine similarity an observation needs to count for an entry; none: the backend's "
        "default. Refused below the backend's validated floor"))
    k_frames: Annotated[int, Field(ge=1, le=100, description=(
        "observations of one track at or above the threshold for the same entry"))] = 3
    n_frames: Annotated[int, Field(ge=1, le=100, description=(
        "window: the track's last n observations (frames in which its face was seen)"))] = 5
    cooldown_s: Annotated[float, Field(ge=0, le=86_400, description=(
        "after an alert for an entry, no further alert for that entry from this camera, "
        "whatever the track, for this long"))] = 300.0
    max_tracks: Annotated[int, Field(ge=1, le=10_000, description=(
        "most tracks held at once (the longest unseen is forgotten first)"))] = 256

    @model_validator(mode="after")
    def _k_within_n(self) -> MatcherConfig:
        if self.k_frames > self.n_frames:
            raise ValueError(f"k_frames ({self.k_frames}) cannot exceed n_frames "
                             f"({self.n_frames}): a match needs k of the last n observations")
        return self


class ThresholdBelowFloorError(ConfigError):
    """A configured threshold below the backend's validated floor."""

    def __init__(self, threshold: float, floor: float, backend: str) -> None:
        super().__init__(
            f"faces.matcher.threshold {threshold:g} is below the validated floor {floor:g} of "
            f"the {backend} backend: below it the backend's false match rate was not measured "
            f"acceptable (gridward faces eval); set a threshold of at least {floor:g}")
        self.threshold = threshold
        self.floor = floor
        self.backend = backend


def effective_threshold(config: MatcherConfig, *, default: float, floor: float,
                        backend: str) -> float:
    """The threshold in force: the configured one (refused below ``floor``) or ``default``."""
    threshold = default if config.threshold is None else config.threshold
    if threshold < floor:
        raise ThresholdBelowFloorError(threshold, floor, backend)
    return threshold


@dataclass(frozen=True, slots=True)
class MatchDecision:
    """A face_match to raise: the entry, the track, and how the window voted."""

    entry_id: str
    track_id: str
    score: float  # best score of the matching observations in the window
    threshold: float
    frames_matched: int
    frames_seen: int


@dataclass(slots=True)
class _TrackWindow:
    # one item per observation: entry id -> score, only entries at or above the threshold
    observations: deque[dict[str, float]]


class FaceMatcher:
    """Feed it one observation per (track, frame); it answers with a decision when a match is
    declared. Not thread-safe: the camera's frame loop owns it."""

    def __init__(self, config: MatcherConfig, *, threshold: float,
                 clock: Callable[[], float]) -> None:
        self.config = config
        self.threshold = threshold
        self._clock = clock
        self._tracks: OrderedDict[str, _TrackWindow] = OrderedDict()
        self._last_alert: dict[str, float] = {}
        self.matches = 0
        self.suppressed = 0  # matches inside an entry's cool-down

    @property
    def track_count(self) -> int:
        return len(self._tracks)

    def held_entries(self) -> set[str]:
        """Entry ids any track's window still holds (for tests and the forgetting proof)."""
        return {e for w in self._tracks.values() for obs in w.observations for e in obs}

    def observe(self, track_id: str, candidates: Iterable[ScoredEntry]) -> MatchDecision | None:
        """One frame's candidates for the face of ``track_id``; a decision when, counting this
        frame, one entry reached k of the last n and is outside its cool-down."""
        above: dict[str, float] = {}
        for c in candidates:
            if c.score >= self.threshold and c.score > above.get(c.entry_id, -1.0):
                above[c.entry_id] = float(c.score)
        window = self._tracks.get(track_id)
        if window is None:
            window = _TrackWindow(deque(maxlen=self.config.n_frames))
            self._tracks[track_id] = window
            while len(self._tracks) > self.config.max_tracks:
                self._tracks.popitem(last=False)
        else:
            self._tracks.move_to_end(track_id)
        window.observations.append(above)
        if not above:
            return None
        best = self._best_entry(window, above)
        if best is None:
            return None
        entry, matched, score = best
        now = self._clock()
        self._expire_cooldowns(now)
        last = self._last_alert.get(entry)
        seen = len(window.observations)
        # the window votes again from scratch: the same frames never declare twice
        window.observations.clear()
        if last is not None and now - last < self.config.cooldown_s:
            self.suppressed += 1
            log.info("face match for entry %s on track %s inside its cool-down: no alert",
                     entry, track_id)
            return None
        self._last_alert[entry] = now
        self.matches += 1
        return MatchDecision(entry, track_id, score, self.threshold, matched, seen)

    def _best_entry(self, window: _TrackWindow, current: dict[str, float]
                    ) -> tuple[str, int, float] | None:
        best: tuple[str, int, float] | None = None
        for entry in current:
            scores = [obs[entry] for obs in window.observations if entry in obs]
            if len(scores) < self.config.k_frames:
                continue
            cand = (entry, len(scores), max(scores))
            if best is None or (cand[1], cand[2]) > (best[1], best[2]):
                best = cand
        return best

    def _expire_cooldowns(self, now: float) -> None:
        for entry in [e for e, t in self._last_alert.items()
                      if now - t >= self.config.cooldown_s]:
            del self._last_alert[entry]

    def retain(self, live_track_ids: Collection[str]) -> None:
        """Forget every track not in ``live_track_ids`` (ended tracks), with all it held."""
        for track_id in [t for t in self._tracks if t not in live_track_ids]:
            del self._tracks[track_id]

    def reset(self) -> None:
        """Forget every track's window (a new bundle: old votes were against other entries).
        Cool-downs stay: a re-sent bundle must not re-alert an entry just alerted."""
        self._tracks.clear()
