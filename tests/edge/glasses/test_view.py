"""The HUD's geometry and queue order (edge/glasses/view.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edge.glasses.view import HudItem, Pose, bearing_deg, distance_m, relative_bearing
from edge.protocol import AlertKind, OfficerAnswer, Severity

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LON, LAT = 116.3975, 39.9087  # Beijing; one degree of latitude is about 111.2 km


@pytest.mark.parametrize(
    ("dlon", "dlat", "expected"),
    [(0.0, 0.001, 0.0), (0.001, 0.0, 90.0), (0.0, -0.001, 180.0), (-0.001, 0.0, 270.0)],
)
def test_bearing_of_the_four_quarters(dlon: float, dlat: float, expected: float) -> None:
    got = bearing_deg(LON, LAT, LON + dlon, LAT + dlat)
    assert min(abs(got - expected), 360 - abs(got - expected)) < 0.01


def test_distance_of_a_thousandth_of_a_degree_north() -> None:
    assert distance_m(LON, LAT, LON, LAT + 0.001) == pytest.approx(111.2, abs=0.2)


def test_relative_bearing_turns_with_the_heading() -> None:
    east = (LON + 0.001, LAT)
    facing_north = Pose(lon=LON, lat=LAT, fix_at=T0, heading_deg=0.0)
    facing_east = Pose(lon=LON, lat=LAT, fix_at=T0, heading_deg=90.0)
    facing_south = Pose(lon=LON, lat=LAT, fix_at=T0, heading_deg=180.0)
    assert relative_bearing(facing_north, east)[1] == pytest.approx(90.0, abs=0.05)
    ahead = relative_bearing(facing_east, east)[1]
    assert ahead is not None
    assert min(ahead, 360 - ahead) < 0.05
    assert relative_bearing(facing_south, east)[1] == pytest.approx(270.0, abs=0.05)
    assert relative_bearing(Pose(lon=LON, lat=LAT, fix_at=T0), east)[1] is None


def test_urgency_puts_unanswered_critical_first_then_the_oldest() -> None:
    def item(sev: Severity, age_s: int, answer: OfficerAnswer | None = None) -> HudItem:
        ts = T0 - timedelta(seconds=age_s)
        return HudItem(
            notify_id=f"{sev}-{age_s}",
            kind=AlertKind.INTRUSION,
            severity=sev,
            title="x",
            issued_at=ts,
            received_at=ts,
            answer=answer,
        )

    items = [
        item(Severity.CRITICAL, 5, OfficerAnswer.ACKNOWLEDGE),
        item(Severity.MEDIUM, 50),
        item(Severity.CRITICAL, 10),
        item(Severity.CRITICAL, 30),
    ]
    order = [i.notify_id for i in sorted(items, key=HudItem.urgency)]
    assert order == ["critical-30", "critical-10", "medium-50", "critical-5"]
