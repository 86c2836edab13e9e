"""The shared geofence engine: GeoJSON rules, schedules, dwell and spatial hysteresis."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.geofence import (
    EventKind,
    GeofenceEngine,
    GeofenceError,
    LocalProjection,
    naive_violations,
    zones_from_geojson,
)

ORIGIN = (114.057, 22.543)
P = LocalProjection(*ORIGIN)


def ll(x: float, y: float) -> tuple[float, float]:
    return P.to_lonlat(x, y)


def square(half: float, cx: float = 0, cy: float = 0) -> list[list[list[float]]]:
    ring = [list(ll(cx + dx, cy + dy)) for dx, dy in
            ((-half, -half), (half, -half), (half, half), (-half, half), (-half, -half))]
    return [ring]


def fc(*features: tuple[dict[str, Any], list[list[list[float]]]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": props, "geometry": {"type": "Polygon",
                                                               "coordinates": coords}}
        for props, coords in features]}


def engine(**rule: Any) -> GeofenceEngine:
    props = {"id": "home", "kind": "inclusion", **rule}
    return GeofenceEngine.from_geojson(fc((props, square(50))), origin=ORIGIN)


T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()  # a Monday, 20:00 in Shanghai


def test_exit_needs_dwell_and_return_clears() -> None:
    eng = engine(min_dwell_s=5)
    assert eng.check("w1", *ll(0, 0), T0) == []
    assert eng.check("w1", *ll(80, 0), T0 + 1) == []  # outside, dwell starts
    assert eng.check("w1", *ll(80, 0), T0 + 4) == []
    [ev] = eng.check("w1", *ll(80, 0), T0 + 6)
    assert (ev.kind, ev.violation, ev.alert, ev.zone) == (EventKind.EXIT, True, True, "home")
    assert eng.check("w1", *ll(90, 0), T0 + 7) == []  # still out: no second alert
    assert eng.check("w1", *ll(0, 0), T0 + 8) == []
    [back] = eng.check("w1", *ll(0, 0), T0 + 13)
    assert (back.kind, back.violation, back.alert) == (EventKind.RETURN, False, False)


def test_short_excursion_is_absorbed_by_dwell() -> None:
    eng = engine(min_dwell_s=10)
    for i, x in enumerate([0, 80, 80, 0, 80, 0]):
        assert eng.check("w1", *ll(x, 0), T0 + i * 3) == []


def test_boundary_walk_does_not_flap_with_buffer() -> None:
    eng = engine(buffer_m=5)
    rng = np.random.default_rng(1)
    events = []
    for i in range(200):  # jitter +-4 m around the eastern fence at x=50
        events += eng.check("w1", *ll(50 + rng.uniform(-4, 4), 0), T0 + i)
    assert events == []
    [ev] = eng.check("w1", *ll(56, 0), T0 + 300)
    assert ev.kind is EventKind.EXIT
    assert eng.check("w1", *ll(47, 0), T0 + 301) == []  # inside the band: still out
    [back] = eng.check("w1", *ll(44, 0), T0 + 302)
    assert back.kind is EventKind.RETURN


def test_same_jitter_without_buffer_flaps() -> None:
    eng = engine()
    rng = np.random.default_rng(1)
    events = []
    for i in range(200):
        events += eng.check("w1", *ll(50 + rng.uniform(-4, 4), 0), T0 + i)
    assert len(events) > 20  # what the buffer above prevents


def test_exclusion_entry_and_applies_to() -> None:
    eng = GeofenceEngine.from_geojson(fc(
        ({"id": "road", "kind": "exclusion", "applies_to": ["w1"], "severity": "critical"},
         square(10, cx=100)),
    ), origin=ORIGIN)
    assert eng.check("w2", *ll(100, 0), T0) == []  # not bound by this zone
    [ev] = eng.check("w1", *ll(100, 0), T0)
    assert (ev.kind, ev.alert, ev.severity) == (EventKind.ENTRY, True, "critical")
    [left] = eng.check("w1", *ll(0, 0), T0 + 1)
    assert left.kind is EventKind.LEAVE
    assert eng.state_of("w1") == {}  # settled exclusion states are dropped


def test_curfew_schedule_in_local_time() -> None:
    # Curfew 21:00-07:00 Asia/Shanghai (UTC+8): T0 is 20:00 local, so not yet active.
    eng = engine(schedule=[{"start": "21:00", "end": "07:00"}], timezone="Asia/Shanghai")
    [ev] = eng.check("w1", *ll(80, 0), T0)
    assert (ev.kind, ev.violation, ev.alert) == (EventKind.EXIT, True, False)
    assert eng.check("w1", *ll(80, 0), T0 + 1800) == []  # 20:30
    [late] = eng.check("w1", *ll(80, 0), T0 + 3600 + 60)  # 21:01: curfew opens, still out
    assert (late.kind, late.alert) == (EventKind.EXIT, True)
    assert eng.check("w1", *ll(80, 0), T0 + 3600 + 120) == []
    # the next morning at 07:30 the window is closed again
    assert eng.check("w1", *ll(80, 0), T0 + 11.5 * 3600) == []


def test_schedule_days_and_midnight_crossing() -> None:
    eng = engine(schedule=[{"days": ["sat"], "start": "22:00", "end": "02:00"}])
    sat_23 = datetime(2026, 3, 7, 23, 0, tzinfo=UTC).timestamp()
    sun_01 = datetime(2026, 3, 8, 1, 0, tzinfo=UTC).timestamp()
    sun_23 = datetime(2026, 3, 8, 23, 0, tzinfo=UTC).timestamp()
    assert eng.schedule_active(0, sat_23)
    assert eng.schedule_active(0, sun_01)
    assert not eng.schedule_active(0, sun_23)
    day = engine(schedule=[{"days": ["mon"], "start": "09:00", "end": "17:00"}])
    assert day.schedule_active(0, datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp())
    assert not day.schedule_active(0, datetime(2026, 3, 2, 17, 0, tzinfo=UTC).timestamp())


def test_check_many_matches_single_checks_and_naive() -> None:
    feats = [({"id": f"z{i}", "kind": "exclusion"}, square(20, cx=i * 30 - 60, cy=0))
             for i in range(5)]
    zones = zones_from_geojson(fc(*feats))
    eng_batch = GeofenceEngine(zones, origin=ORIGIN)
    eng_single = GeofenceEngine(zones, origin=ORIGIN)
    rng = np.random.default_rng(3)
    xs, ys = rng.uniform(-100, 100, 300), rng.uniform(-40, 40, 300)
    lonlat = [ll(x, y) for x, y in zip(xs, ys, strict=True)]
    ents = [f"e{i}" for i in range(300)]
    batch = eng_batch.check_many(ents, np.array([p[0] for p in lonlat]),
                                 np.array([p[1] for p in lonlat]), T0)
    single = [ev for e, (lon, lat) in zip(ents, lonlat, strict=True)
              for ev in eng_single.check(e, lon, lat, T0)]
    assert sorted((e.entity, e.zone) for e in batch) == sorted((e.entity, e.zone) for e in single)
    naive = sorted((e, z) for e, (lon, lat) in zip(ents, lonlat, strict=True)
                   for z in naive_violations(zones, lon, lat))
    assert sorted((e.entity, e.zone) for e in batch) == naive
    assert len(naive) > 50


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(-120, 120), st.floats(-120, 120)), min_size=1, max_size=30))
def test_no_alert_without_a_confirmed_state_change(path: list[tuple[float, float]]) -> None:
    """Alerts alternate with clears: never two violations in a row for one zone."""
    eng = engine(buffer_m=3, min_dwell_s=2)
    last_violation = False
    for i, (x, y) in enumerate(path):
        for ev in eng.check("w", *ll(x, y), T0 + i * 1.5):
            assert ev.violation != last_violation
            last_violation = ev.violation


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ("not json", "not JSON"),
        (json.dumps({"type": "Feature"}), "FeatureCollection"),
        (json.dumps({"type": "FeatureCollection", "features": {}}), "must be a list"),
        (json.dumps(fc(({"id": "a", "kind": "sideways"}, square(5)))), "kind"),
        (json.dumps(fc(({"id": "a/b", "kind": "inclusion"}, square(5)))), "id"),
        (json.dumps(fc(({"id": "a", "kind": "inclusion", "timezone": "Mars/Olympus"},
                        square(5)))), "unknown time zone"),
        (json.dumps(fc(({"id": "a", "kind": "inclusion",
                         "schedule": [{"start": "21:00:30", "end": "07:00"}]}, square(5)))),
         "HH:MM"),
        (json.dumps(fc(({"id": "a", "kind": "inclusion", "extra": 1}, square(5)))), "extra"),
        (json.dumps(fc(({"id": "a", "kind": "inclusion"}, square(5)),
                       ({"id": "a", "kind": "inclusion"}, square(5)))), "used twice"),
        (json.dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"id": "a", "kind": "inclusion"},
             "geometry": {"type": "Point", "coordinates": [0, 0]}}]}), "Polygon"),
        (json.dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"id": "bow", "kind": "inclusion"},
             "geometry": {"type": "Polygon",
                          "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}}]}),
         "invalid polygon"),
    ],
)
def test_bad_zone_files_say_what_to_fix(doc: str, match: str) -> None:
    with pytest.raises(GeofenceError, match=match):
        zones_from_geojson(doc, "zones.geojson")


def test_zones_containing_and_empty_engine() -> None:
    eng = engine()
    assert eng.zones_containing(*ll(0, 0)) == ["home"]
    assert eng.zones_containing(*ll(80, 0)) == []
    assert GeofenceEngine([]).check("w", 0, 0, T0) == []
    with pytest.raises(ValueError, match="same length"):
        eng.check_many(["a"], np.array([1.0, 2.0]), np.array([1.0]), T0)
