"""The statistics and export routes over HTTP against a running hub."""

from __future__ import annotations

import csv
import io
import json

from hub.auth import Role
from tests.hub.conftest import RunningHub
from tests.hub.incstats.seeding import T0

Seeded = tuple[RunningHub, dict[str, str]]


def test_stats_json_per_dimension(seeded_hub: Seeded) -> None:
    hub, _ = seeded_hub
    client = hub.client(Role.AUDITOR)
    since = T0.isoformat()
    res = client.get(
        "/api/v1/incident-stats", params={"by": "category", "since": since, "site": hub.site}
    )
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["by"] == "category"
    garbage = next(i for i in body["items"] if i["key"] == "garbage")
    assert (garbage["opened"], garbage["open"], garbage["resolved"], garbage["closed"]) == (
        3, 1, 1, 1
    )  # fmt: skip
    # #3's deadline (November 2026) is long past by the hub's system clock
    assert garbage["overdue"] == 1
    assert garbage["time_to_resolve"] == {"median_s": 3600, "mean_s": 5400, "p90_s": 7200}
    workers = client.get(
        "/api/v1/incident-stats", params={"by": "worker", "since": since, "site": hub.site}
    ).json()["items"]
    assert {w["key"]: (w["reported"], w["assigned"]) for w in workers} == {
        "w1": (2, 1),
        "w2": (0, 3),
    }
    zh = client.get(
        "/api/v1/incident-stats", params={"by": "category", "lang": "zh-CN", "site": hub.site}
    ).json()
    assert {i["name"] for i in zh["items"]} >= {"垃圾堆放", "噪音扰民"}


def test_stats_refuse_bad_parameters(seeded_hub: Seeded) -> None:
    hub, _ = seeded_hub
    client = hub.client(Role.OPERATOR)
    for params in (
        {"by": "colour"},
        {"since": "2026-11-01T00:00:00"},  # no zone: ambiguous, refused
        {"since": "yesterday"},
        {"until": "0001-01-01T00:00:00+01:00"},  # before year 1 in UTC
        {"until": "9999-12-31T23:59:59-05:00"},  # after year 9999 in UTC
        {"site": "a/b"},
        {"lang": "fr"},
    ):
        assert client.get("/api/v1/incident-stats", params=params).status_code == 422, params
    assert client.get("/api/v1/incidents/export.csv", params={"state": "lost"}).status_code == 422
    far = {"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59+05:00"}
    assert client.get("/api/v1/incident-stats", params=far).status_code == 200
    assert hub.client(Role.WORKER).get("/api/v1/incident-stats").status_code == 403
    assert hub.client(Role.OFFICER).get("/api/v1/incidents/export.csv").status_code == 403
    assert hub.client(None).get("/api/v1/incidents/export.geojson").status_code == 401


def test_csv_exports_over_http(seeded_hub: Seeded) -> None:
    hub, ids = seeded_hub
    client = hub.client(Role.OPERATOR)
    res = client.get("/api/v1/incidents/export.csv", params={"site": hub.site})
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("text/csv")
    assert 'filename="incidents.csv"' in res.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(res.text)))
    assert len(rows) == 7
    evil = next(r for r in rows if r["id"] == ids["1"])
    assert evil["title"].startswith("'=HYPERLINK(")
    one_cell = client.get(
        "/api/v1/incidents/export.csv",
        params=[("cell", "c2"), ("state", "new"), ("state", "in_progress")],
    )
    assert {r["id"] for r in csv.DictReader(io.StringIO(one_cell.text))} == {ids["3"], ids["4"]}
    stats = client.get("/api/v1/incident-stats.csv", params={"by": "cell", "site": hub.site})
    assert stats.status_code == 200
    assert "incident-stats-cell.csv" in stats.headers["content-disposition"]
    table = {r["key"]: r for r in csv.DictReader(io.StringIO(stats.text))}
    assert table["c1"]["name"] == "North Gate" and table["c1"]["opened"] == "4"


def test_geojson_export_over_http(seeded_hub: Seeded) -> None:
    hub, ids = seeded_hub
    client = hub.client(Role.COMMANDER)
    res = client.get(
        "/api/v1/incidents/export.geojson", params={"department": "d2", "site": hub.site}
    )
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("application/geo+json")
    doc = json.loads(res.text)
    assert {f["id"] for f in doc["features"]} == {ids["4"], ids["6"]}
    assert {f["id"]: f["geometry"] is None for f in doc["features"]} == {
        ids["4"]: True,
        ids["6"]: False,
    }
