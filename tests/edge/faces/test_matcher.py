"""The per-track matcher: k of the last n observations, one alert per entry per cool-down,
the threshold floor, and tracks that end leave nothing behind."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pydantic import ValidationError

from edge.config import ConfigError
from edge.faces.matcher import (
    FaceMatcher,
    MatcherConfig,
    ThresholdBelowFloorError,
    effective_threshold,
)


@dataclass(frozen=True)
class Cand:
    entry_id: str
    score: float


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def matcher(clock: Clock | None = None, **kw: float) -> FaceMatcher:
    config = MatcherConfig.model_validate({"k_frames": 3, "n_frames": 5, "cooldown_s": 60, **kw})
    return FaceMatcher(config, threshold=0.5, clock=clock or Clock())


HIT = [Cand("obama", 0.7), Cand("other", 0.2)]
MISS = [Cand("obama", 0.3)]


def test_k_of_the_last_n_declares_on_the_kth_hit() -> None:
    m = matcher()
    assert m.observe("t1", HIT) is None
    assert m.observe("t1", MISS) is None
    assert m.observe("t1", HIT) is None
    decision = m.observe("t1", [Cand("obama", 0.9)])
    assert decision is not None
    assert (decision.entry_id, decision.track_id) == ("obama", "t1")
    assert (decision.frames_matched, decision.frames_seen) == (3, 4)
    assert decision.score == pytest.approx(0.9)
    assert decision.threshold == 0.5


def test_hits_older_than_n_observations_do_not_count() -> None:
    m = matcher()
    sequence = [HIT, HIT, MISS, MISS, MISS, HIT]  # the first two hits fall out of the window
    assert all(m.observe("t1", c) is None for c in sequence)
    assert m.observe("t1", HIT) is None  # window: MISS MISS MISS HIT HIT -> 2 of 5
    assert m.observe("t1", HIT) is not None  # MISS MISS HIT HIT HIT -> 3 of 5


def test_score_exactly_at_threshold_counts_and_just_below_does_not() -> None:
    m = matcher(k_frames=1, n_frames=1)
    assert m.observe("t1", [Cand("e", 0.4999)]) is None
    assert m.observe("t2", [Cand("e", 0.5)]) is not None


def test_hits_of_different_tracks_are_not_pooled() -> None:
    m = matcher()
    for track in ("a", "b", "c", "d", "e", "f"):
        assert m.observe(track, HIT) is None
        assert m.observe(track, HIT) is None


def test_different_entries_in_one_track_are_not_pooled() -> None:
    m = matcher()
    for entry in ("x", "y", "x", "y"):
        assert m.observe("t1", [Cand(entry, 0.9)]) is None


def test_cooldown_is_per_entry_across_tracks() -> None:
    clock = Clock()
    m = matcher(clock)
    assert [m.observe("t1", HIT) for _ in range(3)][-1] is not None
    clock.t += 59
    # a different track of the same entry inside the cool-down: no second alert
    assert all(m.observe("t2", HIT) is None for _ in range(6))
    assert m.suppressed == 2
    # another entry is not held back by obama's cool-down
    assert [m.observe("t3", [Cand("biden", 0.8)]) for _ in range(3)][-1] is not None
    clock.t += 1  # 60 s after the first alert
    assert [m.observe("t2", HIT) for _ in range(3)][-1] is not None
    assert m.matches == 3


def test_a_declared_window_votes_again_from_scratch() -> None:
    m = matcher(cooldown_s=0)
    assert [m.observe("t1", HIT) for _ in range(3)][-1] is not None
    # with no cool-down the same frames still never declare twice: k fresh hits are needed
    assert m.observe("t1", HIT) is None
    assert m.observe("t1", HIT) is None
    assert m.observe("t1", HIT) is not None


def test_the_entry_with_most_hits_wins_a_contested_window() -> None:
    m = matcher(k_frames=2, n_frames=4)
    assert m.observe("t1", [Cand("a", 0.6), Cand("b", 0.55)]) is None
    assert m.observe("t1", [Cand("b", 0.55)]) is not None
    m2 = matcher(k_frames=2, n_frames=4)
    m2.observe("t1", [Cand("a", 0.6), Cand("b", 0.9)])
    decision = m2.observe("t1", [Cand("a", 0.6), Cand("b", 0.7)])
    assert decision is not None
    assert decision.entry_id == "b"  # equal counts: the better score


def test_ended_tracks_are_forgotten_with_all_they_held() -> None:
    m = matcher()
    m.observe("t1", HIT)
    m.observe("t1", HIT)
    m.observe("t2", [Cand("biden", 0.8)])
    assert m.held_entries() == {"obama", "biden"}
    m.retain({"t2"})
    assert m.track_count == 1
    assert m.held_entries() == {"biden"}
    # t1 comes back (a reused id would be a bug elsewhere, but even so): it starts from zero
    assert m.observe("t1", HIT) is None
    assert m.observe("t1", HIT) is None
    m.retain(set())
    assert m.track_count == 0
    assert m.held_entries() == set()


def test_non_matching_observations_hold_no_entry() -> None:
    m = matcher()
    for _ in range(10):
        m.observe("t1", MISS)
    assert m.held_entries() == set()


def test_tracks_are_bounded() -> None:
    m = matcher(max_tracks=3)
    for i in range(10):
        m.observe(f"t{i}", HIT)
    assert m.track_count == 3


def test_reset_forgets_windows_but_keeps_cooldowns() -> None:
    m = matcher()
    assert [m.observe("t1", HIT) for _ in range(3)][-1] is not None
    m.observe("t2", HIT)
    m.reset()
    assert m.track_count == 0
    assert all(m.observe("t2", HIT) is None for _ in range(3))
    assert m.suppressed == 1


def test_threshold_below_the_floor_is_refused_naming_the_floor() -> None:
    config = MatcherConfig(threshold=0.2)
    with pytest.raises(ThresholdBelowFloorError, match=r"floor 0\.3") as err:
        effective_threshold(config, default=0.36, floor=0.3, backend="yunet-sface")
    assert isinstance(err.value, ConfigError)
    assert err.value.floor == 0.3
    assert effective_threshold(MatcherConfig(threshold=0.3), default=0.36, floor=0.3,
                               backend="yunet-sface") == 0.3
    assert effective_threshold(MatcherConfig(), default=0.36, floor=0.3,
                               backend="yunet-sface") == 0.36
    # a backend whose default sits below its own floor is refused too
    with pytest.raises(ThresholdBelowFloorError):
        effective_threshold(MatcherConfig(), default=0.2, floor=0.3, backend="x")


def test_k_above_n_is_refused() -> None:
    with pytest.raises(ValidationError, match="k_frames"):
        MatcherConfig(k_frames=6, n_frames=5)
