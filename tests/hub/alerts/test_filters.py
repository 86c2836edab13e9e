"""The triage filters of GET /alerts and GET /incidents, and their counts: a cell or a
department selects the alerts located in its cells (as incidents are located), every list's
count equals what its pages add up to, and each alert names the incident it was grouped into."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from edge.protocol import AlertKind, Location, Severity
from hub.auth import Role
from tests.hub.conftest import RunningHub, wristband_agent
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until


def _square(w: float, s: float, e: float, n: float) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def _cell(hub: RunningHub, cid: str, geometry: dict[str, Any]) -> None:
    hub.client(Role.COMMANDER).put(
        f"/api/v1/grid-cells/{cid}",
        json={
            "type": "Feature",
            "id": cid,
            "geometry": geometry,
            "properties": {"site": hub.site, "name": cid},
        },
    ).raise_for_status()


def _all(client: httpx.Client, path: str, params: dict[str, Any]) -> list[str]:
    """Every id of a list, following its cursor one small page at a time."""
    ids: list[str] = []
    cursor = None
    while True:
        q = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(path, params=q)
        page.raise_for_status()
        body = page.json()
        ids += [i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


def _count(client: httpx.Client, path: str, params: dict[str, Any]) -> int:
    res = client.get(f"{path}/count", params=params)
    res.raise_for_status()
    return int(res.json()["total"])


def test_cell_department_filters_counts_and_incident_links(
    hub: RunningHub, broker: BrokerHarness, tmp_path: Path
) -> None:
    site = hub.site
    west, east = f"{site}-west", f"{site}-east"
    _cell(hub, west, _square(114.00, 22.50, 114.01, 22.51))
    # The east cell's box overlaps the west one's bounding box corner: only the shape counts.
    _cell(hub, east, _square(114.01, 22.50, 114.02, 22.51))
    admin = hub.client(Role.ADMIN)
    dept = admin.post(
        "/api/v1/departments",
        json={"id": f"{site}-dept", "name": "West desk", "line": "city_management", "site": site},
    )
    dept.raise_for_status()
    admin.put(
        f"/api/v1/grid-cells/{west}/responsibility",
        json={"departments": {"city_management": f"{site}-dept"}},
    ).raise_for_status()
    agent = wristband_agent(hub, broker, tmp_path, f"{site}-gw")
    sent: dict[str, str] = {}
    try:
        for name, kind, sev, where in [
            ("w-sos", AlertKind.SOS, Severity.CRITICAL, (114.005, 22.505)),
            ("w-low", AlertKind.BATTERY_LOW, Severity.LOW, (114.002, 22.508)),
            ("w-edge", AlertKind.BATTERY_LOW, Severity.LOW, (114.01, 22.505)),  # shared edge
            ("e-high", AlertKind.TAMPER, Severity.HIGH, (114.015, 22.505)),
            ("nowhere", AlertKind.BATTERY_LOW, Severity.LOW, None),
            ("outside", AlertKind.BATTERY_LOW, Severity.LOW, (114.5, 22.9)),
        ]:
            loc = Location(lon=where[0], lat=where[1]) if where else None
            sent[name] = agent.alert(kind=kind, severity=sev, location=loc).id
        wait_until(lambda: agent.outbox.depth() == 0)
    finally:
        agent.stop()
    by_id = {v: k for k, v in sent.items()}
    op = hub.client(Role.OPERATOR)
    path = "/api/v1/alerts"

    def names(params: dict[str, Any]) -> list[str]:
        ids = _all(op, path, {"site": site, **params})
        assert _count(op, path, {"site": site, **params}) == len(ids), params
        return [by_id[i] for i in ids]

    # Newest first, across pages of two; the point on the shared edge is the first cell's
    # by id ("east" < "west"), as CellLocator places an incident.
    assert names({}) == ["outside", "nowhere", "e-high", "w-edge", "w-low", "w-sos"]
    assert names({"cell": west}) == ["w-low", "w-sos"]
    assert names({"cell": east}) == ["e-high", "w-edge"]
    assert names({"department": f"{site}-dept"}) == ["w-low", "w-sos"]
    assert names({"department": f"{site}-dept", "cell": east}) == []
    assert names({"cell": west, "severity": "critical"}) == ["w-sos"]
    assert names({"cell": f"{site}-none"}) == []
    assert names({"cell": west, "bbox": "114.5,22.9,114.6,23.0"}) == []
    assert names({"severity": ["low", "high"], "kind": "battery_low"}) == [
        "outside",
        "nowhere",
        "w-edge",
        "w-low",
    ]
    assert op.get(f"{path}/count", params={"cell": "bad id!"}).status_code == 422
    # The SOS and the tamper alert opened an incident each (default rules "sos", "device-fault");
    # the alert names its incident, in the list and in its detail; an alert that matched no
    # rule names none.
    listed = {a["id"]: a for a in op.get(path, params={"site": site}).json()["items"]}
    sos_inc, tamper_inc = (listed[sent[n]]["incident_id"] for n in ("w-sos", "e-high"))
    assert sos_inc and tamper_inc and sos_inc != tamper_inc
    assert listed[sent["w-low"]]["incident_id"] is None
    sos_number = op.get(f"/api/v1/incidents/{sos_inc}").json()["number"]
    assert listed[sent["w-sos"]]["incident_number"] == sos_number
    assert op.get(f"{path}/{sent['w-sos']}").json()["incident_number"] == sos_number

    # Incidents: severity (level, repeatable), alert kind and device of a linked alert.
    ipath = "/api/v1/incidents"

    def incident_ids(params: dict[str, Any]) -> list[str]:
        ids = _all(op, ipath, {"site": site, **params})
        assert _count(op, ipath, {"site": site, **params}) == len(ids), params
        return sorted(ids)  # both opened in one intake pass: their order is not the point

    both = sorted([tamper_inc, sos_inc])
    assert incident_ids({}) == both
    assert incident_ids({"level": ["critical", "high"]}) == [sos_inc]
    assert incident_ids({"level": ["critical", "medium"]}) == both
    assert incident_ids({"level": "low"}) == []
    assert incident_ids({"kind": "sos"}) == [sos_inc]
    assert incident_ids({"kind": ["tamper", "battery_low"]}) == [tamper_inc]
    assert incident_ids({"device": f"{site}-gw"}) == both
    assert incident_ids({"device": f"{site}-other"}) == []
    assert incident_ids({"device": f"{site}-gw", "kind": "sos", "level": "critical"}) == [sos_inc]
    assert incident_ids({"state": ["new", "assigned", "in_progress"]}) == both
    assert op.get(f"{ipath}/count", params={"kind": "no_such_kind"}).status_code == 422
    assert hub.client(None).get(f"{path}/count").status_code == 401
