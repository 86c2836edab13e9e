"""Incident statistics and exports against incidents with known times, on SQLite and
PostgreSQL, with the clock moved by hand."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from hub.audit import AuditTrail
from hub.clock import ManualClock
from hub.config import HubConfig
from hub.incidents.service import IncidentService
from hub.incstats import repository
from hub.incstats.repository import IncidentFilter
from hub.incstats.service import IncidentStats, StatsRow, nearest_rank
from hub.store import Store
from tests.hub.incstats.seeding import T0, D, H, Seeder, seed_district

SITE = "s1"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0 - 2 * D)


@pytest.fixture
def seeded(store: Store, clock: ManualClock) -> tuple[IncidentStats, dict[str, str]]:
    config = HubConfig.model_validate({"site": SITE})
    service = IncidentService(store.engine, AuditTrail(store.engine), config.incidents, clock)
    ids = seed_district(Seeder(store.engine, service, SITE))
    clock.advance(T0 + 10 * D - clock.now())
    return IncidentStats(store.engine, config, clock), ids


WINDOW = IncidentFilter(site=SITE, since=T0)


def by_key(rows: list[StatsRow]) -> dict[str | None, StatsRow]:
    return {r.key: r for r in rows}


def test_counts_and_times_per_category(seeded: tuple[IncidentStats, dict[str, str]]) -> None:
    stats, _ = seeded
    rows = by_key(stats.rows("category", WINDOW))
    assert set(rows) == {"garbage", "noise", "streetlight"}
    g = rows["garbage"]
    assert (g.name, g.opened, g.open, g.resolved, g.closed, g.overdue) == (
        "Garbage or illegal dumping",
        3,
        1,
        1,
        1,
        1,
    )
    # resolved after 1 h and 2 h: nearest-rank median is the first, p90 the second
    assert (g.to_resolve.median_s, g.to_resolve.mean_s, g.to_resolve.p90_s) == (3600, 5400, 7200)
    assert (g.to_close.median_s, g.to_close.mean_s, g.to_close.p90_s) == (10800, 10800, 10800)
    n = rows["noise"]
    assert (n.opened, n.open, n.resolved, n.closed, n.overdue) == (2, 1, 0, 1, 0)
    assert n.to_resolve.median_s is None  # closed without being resolved first
    assert n.to_close.median_s == 5 * 3600
    s = rows["streetlight"]
    assert (s.to_resolve.median_s, s.to_close.p90_s) == (4 * 3600, 10 * 3600)
    assert [r.key for r in stats.rows("category", WINDOW)] == ["garbage", "noise", "streetlight"]
    assert stats.rows("category", WINDOW, "zh-CN")[0].name == "垃圾堆放"
    assert stats.count(WINDOW) == 6


def test_per_cell_and_department_with_the_unlocated_as_none(
    seeded: tuple[IncidentStats, dict[str, str]],
) -> None:
    stats, _ = seeded
    cells = by_key(stats.rows("cell", WINDOW))
    assert {k: (r.name, r.opened) for k, r in cells.items()} == {
        "c1": ("North Gate", 3),
        "c2": ("South Market", 2),
        None: ("", 1),
    }
    assert cells["c2"].overdue == 1
    departments = by_key(stats.rows("department", WINDOW))
    assert {k: r.opened for k, r in departments.items()} == {"d1": 3, "d2": 2, None: 1}
    assert departments["d2"].name == "City management office"
    assert [r.key for r in stats.rows("cell", WINDOW)][-1] is None  # none sorts last


def test_per_worker_counts_reports_and_assignments_once_each(
    seeded: tuple[IncidentStats, dict[str, str]],
) -> None:
    stats, _ = seeded
    workers = by_key(stats.rows("worker", WINDOW))
    # operator opened incidents by hand (not field reports) and holds none: not a row
    assert set(workers) == {"w1", "w2"}
    w1, w2 = workers["w1"], workers["w2"]
    # w1 reported #1 and #2 and is assigned #2: two incidents, not three
    assert (w1.opened, w1.reported, w1.assigned, w1.open, w1.resolved, w1.closed) == (
        2, 2, 1, 0, 1, 1
    )  # fmt: skip
    assert (w2.opened, w2.reported, w2.assigned, w2.overdue) == (3, 0, 3, 1)
    assert (w2.to_resolve.median_s, w2.to_resolve.mean_s, w2.to_resolve.p90_s) == (
        3600, 9000, 14400
    )  # fmt: skip
    assert stats.rows("category", WINDOW)[0].reported is None


def test_window_and_site_filters(seeded: tuple[IncidentStats, dict[str, str]]) -> None:
    stats, _ = seeded
    everything = stats.rows("category", IncidentFilter())
    assert sum(r.opened for r in everything) == 8
    before = stats.rows("category", IncidentFilter(site=SITE, until=T0))
    assert [(r.key, r.opened) for r in before] == [("garbage", 1)]
    # until is exclusive: #2 was created at exactly T0 + 1 day
    first_day = stats.rows("category", IncidentFilter(site=SITE, since=T0, until=T0 + D))
    assert [(r.key, r.opened) for r in first_day] == [("garbage", 1)]
    assert stats.rows("category", IncidentFilter(site="nowhere")) == []


def test_overdue_follows_the_injected_clock(
    seeded: tuple[IncidentStats, dict[str, str]], clock: ManualClock
) -> None:
    stats, _ = seeded
    # at T0 + 10 days #3 (deadline T0 + 3 days) is overdue; #4 (T0 + 20 days) is not yet
    assert by_key(stats.rows("cell", WINDOW))["c2"].overdue == 1
    clock.advance(timedelta(days=10, seconds=1))
    assert by_key(stats.rows("cell", WINDOW))["c2"].overdue == 2
    early = IncidentStats(stats.engine, stats.config, ManualClock(T0 + 2 * D))
    assert by_key(early.rows("cell", WINDOW))["c2"].overdue == 0


def test_stats_csv_is_the_same_figures(seeded: tuple[IncidentStats, dict[str, str]]) -> None:
    stats, _ = seeded
    rows = list(csv.DictReader(io.StringIO(stats.rows_csv("category", WINDOW))))
    garbage = next(r for r in rows if r["key"] == "garbage")
    assert garbage["opened"] == "3" and garbage["overdue"] == "1"
    assert float(garbage["resolve_p90_s"]) == 7200
    assert garbage["reported"] == ""


def test_incident_csv_is_formula_safe_and_complete(
    seeded: tuple[IncidentStats, dict[str, str]],
) -> None:
    stats, ids = seeded
    text = "".join(stats.export_csv(WINDOW))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["id"] for r in rows] == [ids[k] for k in ("1", "2", "3", "4", "5", "6")]
    first = rows[0]
    # a spreadsheet shows this as text instead of running HYPERLINK
    assert first["title"] == '\'=HYPERLINK("http://evil.example","click")'
    assert first["lon"] == "114.05" and first["state"] == "closed"
    assert first["created_at"] == T0.isoformat()
    assert rows[2]["overdue"] == "True" and rows[3]["overdue"] == "False"
    assert rows[3]["title"] == "噪音扰民 <b>loud</b>"
    assert text.startswith("number,id,site,")
    filtered = list(
        csv.DictReader(
            io.StringIO("".join(stats.export_csv(IncidentFilter(site=SITE, category="noise"))))
        )
    )
    assert [r["id"] for r in filtered] == [ids["4"], ids["5"]]
    by_state = IncidentFilter(site=SITE, states=["new", "in_progress"], cell="c2")
    assert len(list(csv.DictReader(io.StringIO("".join(stats.export_csv(by_state)))))) == 2


def test_geojson_export_is_a_valid_feature_collection(
    seeded: tuple[IncidentStats, dict[str, str]],
) -> None:
    stats, ids = seeded
    doc = json.loads("".join(stats.export_geojson(WINDOW)))
    assert doc["type"] == "FeatureCollection"
    features = {f["id"]: f for f in doc["features"]}
    assert len(features) == 6
    assert features[ids["1"]]["geometry"] == {"type": "Point", "coordinates": [114.05, 22.55]}
    assert features[ids["4"]]["geometry"] is None  # no location: null geometry, still listed
    props = features[ids["3"]]["properties"]
    assert props["overdue"] is True and props["cell_id"] == "c2"
    assert "lon" not in props
    for feature in doc["features"]:
        assert feature["type"] == "Feature"
        assert set(feature) == {"type", "id", "geometry", "properties"}
    empty = json.loads("".join(stats.export_geojson(IncidentFilter(site="nowhere"))))
    assert empty == {"type": "FeatureCollection", "features": []}


def test_exports_page_through_more_than_one_batch(
    seeded: tuple[IncidentStats, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    stats, ids = seeded
    monkeypatch.setattr(repository, "EXPORT_BATCH", 2)
    chunks = list(stats.export_csv(IncidentFilter()))
    assert len(chunks) == 1 + 4  # the header, then 8 incidents in pages of 2
    rows = list(csv.DictReader(io.StringIO("".join(chunks))))
    assert sorted(r["id"] for r in rows) == sorted(ids.values())
    assert len({r["id"] for r in rows}) == 8


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([5.0], 0.5, 5.0), ([1.0, 2.0], 0.5, 1.0), ([1.0, 2.0, 3.0], 0.5, 2.0),
     ([float(i) for i in range(1, 11)], 0.9, 9.0), ([float(i) for i in range(1, 12)], 0.9, 10.0),
     ([1.0, 2.0], 0.9, 2.0)],
)  # fmt: skip
def test_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert nearest_rank(values, q) == expected


def test_times_are_exact_whatever_the_hour_offsets(store: Store, clock: ManualClock) -> None:
    """Durations come from aware UTC times on both databases (SQLite returns them naive)."""
    config = HubConfig.model_validate({"site": SITE})
    service = IncidentService(store.engine, AuditTrail(store.engine), config.incidents, clock)
    seeder = Seeder(store.engine, service, SITE)
    start = T0 + timedelta(seconds=0.5)
    seeder.incident(created=start, state="resolved", resolved=start + 90 * H + timedelta(seconds=7))
    row = IncidentStats(store.engine, config, clock).rows("category", IncidentFilter())[0]
    assert row.to_resolve.median_s == 90 * 3600 + 7
