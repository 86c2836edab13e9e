"""Positions through the API: latest per entity, area filter, paged history."""

from __future__ import annotations

from pathlib import Path

from hub.auth import Role
from tests.hub.conftest import RunningHub, wearer_position, wristband_agent
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until


def test_positions_latest_history_bbox_pages(
    hub: RunningHub, broker: BrokerHarness, tmp_path: Path
) -> None:
    agent = wristband_agent(hub, broker, tmp_path, f"{hub.site}-gw")
    try:
        agent.send_positions(
            [wearer_position("w1", 114.050 + i * 0.001, 22.54, dt_s=i) for i in range(5)]
            + [wearer_position("w2", 114.2, 22.7)]
        )
        wait_until(lambda: hub.service.ingest.stats.stored_positions >= 6)
    finally:
        agent.stop()
    officer = hub.client(Role.OFFICER)
    latest = officer.get("/api/v1/positions/latest", params={"site": hub.site}).json()["items"]
    assert {p["entity"]: round(p["lon"], 3) for p in latest} == {"w1": 114.054, "w2": 114.2}
    inside = officer.get(
        "/api/v1/positions/latest", params={"bbox": "114.0,22.5,114.1,22.6", "site": hub.site}
    ).json()
    assert [p["entity"] for p in inside["items"]] == ["w1"]
    page = officer.get("/api/v1/positions/history", params={"entity": "w1", "limit": 3}).json()
    assert len(page["items"]) == 3 and page["next_cursor"]
    rest = officer.get(
        "/api/v1/positions/history",
        params={"entity": "w1", "limit": 3, "cursor": page["next_cursor"]},
    ).json()
    lons = [round(p["lon"], 3) for p in page["items"] + rest["items"]]
    assert lons == [114.05, 114.051, 114.052, 114.053, 114.054]
    assert rest["next_cursor"] is None
    assert officer.get("/api/v1/positions/history").status_code == 422
