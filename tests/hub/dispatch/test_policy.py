"""The selection policy on plain data: who is available, who each ring asks, in what order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hub.dispatch.config import DispatchConfig, Ring
from hub.dispatch.policy import (
    Availability,
    Fix,
    OfficerStatus,
    availability,
    choose_ring,
    distance_m,
    needs_response,
    next_in_rings,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ORIGIN = (114.0570, 22.5430)
M_PER_DEG_LAT = 111_195.0  # metres per degree of latitude on the mean sphere
RINGS = DispatchConfig().rings


def at(north_m: float, age_s: float = 0.0) -> Fix:
    return Fix(ORIGIN[0], ORIGIN[1] + north_m / M_PER_DEG_LAT, NOW - timedelta(seconds=age_s))


def officer(name: str, north_m: float | None = 0.0, **kw: object) -> OfficerStatus:
    values: dict[str, object] = {
        "username": name,
        "device": f"gl-{name}",
        "on_duty": True,
        "device_offline": False,
        "fix": at(north_m) if north_m is not None else None,
        "busy_with": None,
    }
    values.update(kw)
    return OfficerStatus(**values)  # type: ignore[arg-type]


def ring(index: int, officers: list[OfficerStatus], **kw: object) -> list[str]:
    args: dict[str, object] = {"team": (), "asked": (), "point": ORIGIN}
    args.update(kw)
    chosen = choose_ring(
        officers,
        index,
        RINGS,
        args["point"],  # type: ignore[arg-type]
        args["team"],  # type: ignore[arg-type]
        args["asked"],  # type: ignore[arg-type]
        NOW,
        120.0,
        incident_id="inc-1",
    )
    return [c.username for c in chosen]


def test_distance_is_haversine_metres() -> None:
    assert distance_m(*ORIGIN, *ORIGIN) == 0
    north = distance_m(ORIGIN[0], ORIGIN[1], ORIGIN[0], ORIGIN[1] + 1)
    assert north == pytest.approx(111_195, rel=1e-3)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (officer("a"), Availability.AVAILABLE),
        (officer("a", on_duty=False), Availability.OFF_DUTY),
        (officer("a", on_duty=False, device_offline=True), Availability.OFF_DUTY),
        (officer("a", device_offline=True), Availability.OFFLINE),
        (officer("a", device=None), Availability.OFFLINE),
        (officer("a", north_m=None), Availability.OFFLINE),
        (officer("a", fix=at(0, age_s=121)), Availability.OFFLINE),
        (officer("a", fix=at(0, age_s=120)), Availability.AVAILABLE),
        (officer("a", busy_with="inc-2"), Availability.BUSY),
        (officer("a", busy_with="inc-1"), Availability.AVAILABLE),  # on this very incident
        (officer("a", busy_with="inc-2", device_offline=True), Availability.OFFLINE),
    ],
)
def test_availability(status: OfficerStatus, expected: Availability) -> None:
    assert availability(status, NOW, 120.0, incident_id="inc-1") is expected


@pytest.mark.parametrize(
    ("level", "category", "config", "expected"),
    [
        ("high", "intrusion", {}, True),
        ("critical", "intrusion", {}, True),
        ("medium", "intrusion", {}, False),
        ("medium", "intrusion", {"min_level": "medium"}, True),
        ("high", "noise", {"categories": ["intrusion"]}, False),
        ("high", "intrusion", {"categories": ["intrusion"]}, True),
        ("high", "intrusion", {"enabled": False}, False),
        ("bogus", "intrusion", {}, False),
    ],
)
def test_needs_response(
    level: str, category: str, config: dict[str, object], expected: bool
) -> None:
    assert needs_response(DispatchConfig.model_validate(config), level, category) is expected


def test_ring_zero_is_the_team_plus_the_near_nearest_first() -> None:
    officers = [
        officer("far-team", 9000),
        officer("near", 300),
        officer("nearer", 100),
        officer("outside", 600),
    ]
    # at most 2 in ring 0: the two nearest of (team + within 500 m)
    assert ring(0, officers, team={"far-team"}) == ["nearer", "near"]
    assert ring(0, [*officers[:1], officers[3]], team={"far-team"}) == ["far-team"]
    assert ring(0, officers) == ["nearer", "near"]
    assert ring(0, [officers[3]]) == []


def test_later_rings_widen_and_skip_those_asked() -> None:
    officers = [officer(f"o{i}", 390 * i) for i in range(1, 8)]  # 390 m .. 2730 m
    assert ring(0, officers) == ["o1"]
    assert ring(1, officers, asked={"o1"}) == ["o2", "o3", "o4", "o5"]  # <= 2000 m, at most 4
    assert ring(2, officers, asked={"o1", "o2", "o3", "o4", "o5"}) == ["o6", "o7"]
    # team membership counts only in ring 0
    assert ring(1, [officer("t", 5000)], team={"t"}) == []


def test_unavailable_officers_are_never_chosen() -> None:
    officers = [
        officer("busy", 10, busy_with="inc-2"),
        officer("off", 20, on_duty=False),
        officer("stale", 30, fix=at(30, age_s=600)),
        officer("gone", 40, device_offline=True),
        officer("unbound", 50, device=None),
        officer("ok", 450),
    ]
    assert ring(0, officers) == ["ok"]


def test_without_a_place_ring_zero_is_the_team_and_later_rings_anyone() -> None:
    officers = [officer("b", 10), officer("a", 9000), officer("t", 20)]
    assert ring(0, officers, point=None, team={"t"}) == ["t"]
    assert ring(1, officers, point=None, asked={"t"}) == ["a", "b"]  # by name: no distance


def test_next_in_rings_looks_outwards() -> None:
    officers = [officer("near", 100), officer("mid", 1500)]
    found = next_in_rings(officers, 0, RINGS, ORIGIN, (), {"near"}, NOW, 120.0)
    assert found is not None and found[0] == 1 and found[1].username == "mid"
    assert next_in_rings(officers, 0, RINGS, ORIGIN, (), {"near", "mid"}, NOW, 120.0) is None


fixes = st.lists(
    st.tuples(st.floats(0, 20_000), st.floats(0, 300), st.booleans(), st.booleans()),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(fixes, st.integers(0, len(RINGS) - 1), st.sets(st.integers(0, 29)))
def test_choice_properties(
    specs: list[tuple[float, float, bool, bool]], index: int, asked_ix: set[int]
) -> None:
    officers = [
        officer(f"o{i:02d}", north, fix=at(north, age), on_duty=duty, device_offline=off)
        for i, (north, age, duty, off) in enumerate(specs)
    ]
    asked = {f"o{i:02d}" for i in asked_ix}
    chosen = choose_ring(officers, index, RINGS, ORIGIN, (), asked, NOW, 120.0)
    names = [c.username for c in chosen]
    assert len(names) == len(set(names)) <= RINGS[index].officers
    assert not set(names) & asked
    by_name = {o.username: o for o in officers}
    for c in chosen:
        assert availability(by_name[c.username], NOW, 120.0) is Availability.AVAILABLE
        assert c.distance_m is not None and c.distance_m <= RINGS[index].radius_m + 1e-6
    dists = [c.distance_m for c in chosen]
    assert dists == sorted(dists)  # type: ignore[type-var]
    # nobody left out is nearer than someone chosen, unless asked or unavailable
    if len(chosen) == RINGS[index].officers:
        worst = max(dists)  # type: ignore[type-var]
        for o in officers:
            if o.username in names or o.username in asked:
                continue
            if availability(o, NOW, 120.0) is not Availability.AVAILABLE:
                continue
            d = distance_m(*ORIGIN, o.fix.lon, o.fix.lat)  # type: ignore[union-attr]
            assert d >= worst - 1e-6


@pytest.mark.parametrize(
    ("rings", "message"),
    [
        ([{"radius_m": 500, "officers": 2}, {"radius_m": 500, "officers": 4}], "must be larger"),
        ([{"radius_m": 900, "officers": 2}, {"radius_m": 500, "officers": 4}], "widens"),
        ([{"radius_m": 500, "officers": 0}], "greater than or equal to 1"),
        ([{"radius_m": 0, "officers": 2}], "greater than 0"),
        ([], "at least 1"),
    ],
)
def test_config_refuses_nonsense(rings: list[dict[str, object]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DispatchConfig.model_validate({"rings": rings})


def test_config_defaults_and_unknown_keys() -> None:
    config = DispatchConfig()
    assert config.enabled and config.min_level == "high" and config.ack_timeout_s == 60
    assert [(r.radius_m, r.officers) for r in config.rings] == [(500, 2), (2000, 4), (10_000, 8)]
    assert config.offline_after_s == 120 and config.sweep_interval_s == 1.0
    with pytest.raises(ValidationError, match="Extra inputs"):
        DispatchConfig.model_validate({"ack_timeout": 5})
    with pytest.raises(ValidationError, match="twice"):
        DispatchConfig.model_validate({"categories": ["a", "a"]})
    assert Ring(radius_m=1, officers=1).officers == 1
