"""Routing conditions, one at a time, through the pure router (first match wins)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.incidents.config import IncidentsConfig
from hub.incidents.model import IncidentLevel
from hub.incidents.routing import RouteQuery, Router
from tests.hub.incidents.support import square

SHANGHAI = ZoneInfo("Asia/Shanghai")
TUESDAY_9AM_LOCAL = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 09:00 Tue in Shanghai
L = IncidentLevel


def router(*rules: dict[str, Any], zone: Any = SHANGHAI) -> Router:
    cfg = IncidentsConfig.model_validate(
        {"routing": [*rules, {"name": "default", "department": "fallback"}]}
    )
    return Router(cfg.routing, zone)


def no_cells(cell: str, line: str) -> str | None:
    return None


def route(r: Router, lookup: Any = no_cells, **kw: Any) -> tuple[str | None, str | None]:
    q = RouteQuery(
        category=kw.pop("category", "garbage"),
        level=kw.pop("level", L.MEDIUM),
        at=kw.pop("at", TUESDAY_9AM_LOCAL),
        **kw,
    )
    d = r.route(q, lookup)
    return d.rule, d.department


def test_category_and_level() -> None:
    r = router(
        {"name": "fire", "when": {"categories": ["fire_hazard"]}, "department": "fire"},
        {"name": "severe", "when": {"min_level": "high"}, "department": "duty"},
        {"name": "low", "when": {"levels": ["low"]}, "department": "queue"},
    )
    assert route(r, category="fire_hazard", level=L.LOW) == ("fire", "fire")  # first match wins
    assert route(r, level=L.HIGH) == ("severe", "duty")
    assert route(r, level=L.CRITICAL) == ("severe", "duty")
    assert route(r, level=L.LOW) == ("low", "queue")
    assert route(r, level=L.MEDIUM) == ("default", "fallback")


def test_cells() -> None:
    r = router({"name": "north", "when": {"cells": ["n1", "n2"]}, "department": "north"})
    assert route(r, cell_id="n2") == ("north", "north")
    assert route(r, cell_id="s1") == ("default", "fallback")
    assert route(r) == ("default", "fallback")  # no cell: a cells condition cannot hold


def test_area_includes_its_edge_and_needs_a_location() -> None:
    r = router({"name": "market", "when": {"area": square(114.0, 22.5)}, "department": "m"})
    assert route(r, lon=114.005, lat=22.505) == ("market", "m")
    assert route(r, lon=114.0, lat=22.505) == ("market", "m")  # on the boundary
    assert route(r, lon=114.02, lat=22.505) == ("default", "fallback")
    assert route(r) == ("default", "fallback")


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("21:59", "default"),
        ("22:00", "night"),  # from is inclusive
        ("23:59", "night"),
        ("00:00", "night"),  # wraps midnight
        ("05:59", "night"),
        ("06:00", "default"),  # to is exclusive
        ("12:00", "default"),
    ],
)
def test_hours_wrap_midnight_in_the_site_zone(local: str, expected: str) -> None:
    r = router(
        {"name": "night", "when": {"hours": {"from": "22:00", "to": "06:00"}}, "department": "n"}
    )
    hh, mm = map(int, local.split(":"))
    at = datetime(2026, 12, 1, hh, mm, tzinfo=SHANGHAI)
    assert route(r, at=at)[0] == expected
    # The same instant read in UTC would give another answer for most of these.
    if local in ("22:00", "05:59"):
        assert (
            route(
                router(
                    {
                        "name": "night",
                        "when": {"hours": {"from": "22:00", "to": "06:00"}},
                        "department": "n",
                    },
                    zone=UTC,
                ),
                at=at,
            )[0]
            == "default"
        )


def test_days_are_read_in_the_site_zone() -> None:
    r = router({"name": "weekend", "when": {"days": ["sat", "sun"]}, "department": "w"})
    # Friday 17:30 UTC is Saturday 01:30 in Shanghai.
    friday_utc = datetime(2026, 12, 4, 17, 30, tzinfo=UTC)
    assert route(r, at=friday_utc) == ("weekend", "w")
    assert route(
        router({"name": "weekend", "when": {"days": ["sat", "sun"]}, "department": "w"}, zone=UTC),
        at=friday_utc,
    ) == ("default", "fallback")
    assert route(r, at=friday_utc - timedelta(hours=2)) == ("default", "fallback")


def test_a_line_rule_takes_the_cells_department_or_falls_through() -> None:
    r = router({"name": "by-line", "when": {"categories": ["garbage"]}, "line": "sanitation"})
    cells = {("c1", "sanitation"): "san-east"}

    def lookup(cell: str, line: str) -> str | None:
        return cells.get((cell, line))

    assert route(r, lookup, cell_id="c1") == ("by-line", "san-east")
    d = r.route(RouteQuery("garbage", L.LOW, TUESDAY_9AM_LOCAL, "c2"), lookup)
    assert (d.rule, d.department) == ("default", "fallback")
    assert [(s.rule, s.matched, s.reason) for s in d.trace] == [
        ("by-line", False, "no_department"),
        ("default", True, "matched"),
    ]
    d = r.route(RouteQuery("garbage", L.LOW, TUESDAY_9AM_LOCAL), lookup)
    assert d.trace[0].reason == "no_cell"


def test_a_default_line_rule_that_yields_nothing_leaves_the_incident_unrouted() -> None:
    cfg = IncidentsConfig.model_validate({"routing": [{"name": "d", "line": "sanitation"}]})
    d = Router(cfg.routing, UTC).route(RouteQuery("garbage", L.LOW, TUESDAY_9AM_LOCAL), no_cells)
    assert (d.rule, d.department) == (None, None)
    assert d.trace[0].reason == "no_cell"


def test_every_condition_together_and_the_trace_says_which_failed() -> None:
    r = router(
        {
            "name": "all",
            "when": {
                "categories": ["garbage"],
                "min_level": "medium",
                "cells": ["c1"],
                "area": square(114.0, 22.5),
                "hours": {"from": "08:00", "to": "18:00"},
                "days": ["tue"],
            },
            "department": "all",
        }
    )
    ok: dict[str, Any] = {"cell_id": "c1", "lon": 114.005, "lat": 22.505}
    assert route(r, **ok) == ("all", "all")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"category": "sewage"}, "category"),
        ({"level": L.LOW}, "level"),
        ({"cell_id": "c9"}, "cell"),
        ({"lon": 115.0}, "area"),
        ({"at": TUESDAY_9AM_LOCAL + timedelta(hours=10)}, "hours"),
        ({"at": TUESDAY_9AM_LOCAL + timedelta(days=1)}, "day"),
    ]
    for change, reason in cases:
        q = RouteQuery(
            **{"category": "garbage", "level": L.MEDIUM, "at": TUESDAY_9AM_LOCAL, **ok, **change}
        )
        d = r.route(q, no_cells)
        assert d.rule == "default", change
        assert d.trace[0].reason == reason, change
