"""Every timestamp the API sends carries its zone (issue 13: SQLite hands stored times back
naive, and a browser reads a zone-less ISO time as its own local time, so the dashboard showed
times 8 hours off in Shanghai and froze markers west of UTC).

The walk is driven by the hub's own OpenAPI document: every GET operation that answers JSON is
called as an admin, with path parameters naming objects the API fuzz seeds create (and a few
more: positions, health, an acknowledged alert, a warning), and every timestamp-looking string
in every answer must parse with a zone. A new route with a naive timestamp fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.protocol import (
    DeviceKind,
    EntityKind,
    Health,
    Position,
    PositionBatch,
    decode_device_message,
    device_topic,
    encode,
)
from edge.validators import utcnow
from hub.auth import Role
from tests.hub.conftest import RunningHub, start_hub, stop_hub
from tests.hub.test_api_fuzz import _seed
from tests.support.broker import BrokerHarness, unique_site

ISO_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
WITH_ZONE = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")
# Names of members that hold a time, whatever their value looks like.
TIME_KEY = re.compile(r"(^|_)(ts|at|since|until|seen|time)$")
# Not JSON, or not a timestamp-bearing document: binary media, tiles, CSV, XML, HTML pages.
SKIP_SUFFIXES = ("/evidence", "/content", ".csv", ".xml", ".html", ".{ext}", "/summary")


@pytest.fixture
def seeded_hub(
    broker: BrokerHarness, tmp_path: Path
) -> Iterator[tuple[RunningHub, dict[str, list[str]]]]:
    tmp = tmp_path
    hub = start_hub(broker, unique_site(), tmp, timezone="America/Sao_Paulo")
    try:
        seeded = _seed(hub, tmp)
        ids = dict(seeded.ids)
        device = next(d for d in ids["device_id"] if "-wristband-" in d)
        topic = device_topic(hub.site, DeviceKind.WRISTBAND, device, "pos")
        batch = PositionBatch(
            site=hub.site,
            device=device,
            positions=[
                Position(
                    entity="w1",
                    entity_kind=EntityKind.WEARER,
                    lon=114.05,
                    lat=22.54,
                    accuracy_m=3.0,
                    ts=utcnow() - timedelta(seconds=5),
                )
            ],
        )
        health = Health(site=hub.site, device=device, uptime_s=12.0, metrics={"battery_pct": 80.0})
        hub.service.store.write_batch(
            [
                decode_device_message(topic, encode(batch)),
                decode_device_message(
                    device_topic(hub.site, DeviceKind.WRISTBAND, device, "health"), encode(health)
                ),
            ]
        )
        admin = hub.client(Role.ADMIN)
        admin.post(
            f"/api/v1/alerts/{ids['alert_id'][0]}/ack", json={"note": "seen"}
        ).raise_for_status()
        admin.post(
            f"/api/v1/grid-cells/{ids['cell_id'][0]}/warning",
            json={"level": "red", "reason": "test"},
        ).raise_for_status()
        yield hub, ids
    finally:
        stop_hub(broker, hub)


def _walk(value: Any, where: str, key: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) of every timestamp in a JSON document: strings that look like one, and
    whatever sits under a member named like a time."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{where}.{k}", str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{where}[{i}]", key)
    elif _is_time(key, value):
        yield where, value


def _is_time(key: str, value: Any) -> bool:
    if isinstance(value, str) and ISO_LIKE.match(value):
        return True
    numeric = isinstance(value, bool | int | float)  # durations, counts: not instants
    return value is not None and not numeric and bool(TIME_KEY.search(key))


def _naive(value: Any) -> bool:
    if not isinstance(value, str) or not WITH_ZONE.search(value):
        return True
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.tzinfo is None


def test_every_json_get_route_sends_zoned_timestamps(
    seeded_hub: tuple[RunningHub, dict[str, list[str]]],
) -> None:
    hub, ids = seeded_hub
    admin = hub.client(Role.ADMIN)
    spec = admin.get("/openapi.json").json()
    called: list[str] = []
    naive: list[str] = []
    timestamps = 0
    for path, ops in sorted(spec["paths"].items()):
        if "get" not in ops or path.endswith(SKIP_SUFFIXES):
            continue
        names = re.findall(r"\{(\w+)\}", path)
        if any(not ids.get(n) for n in names):
            continue
        url = path
        for n in names:
            url = url.replace(f"{{{n}}}", ids[n][0])
        res = admin.get(url)
        if "json" not in res.headers.get("content-type", ""):
            continue
        assert res.status_code < 500, f"{url}: {res.status_code} {res.text[:200]}"
        if res.status_code != 200:
            continue
        called.append(path)
        for where, value in _walk(res.json(), url):
            timestamps += 1
            if _naive(value):
                naive.append(f"{where} = {value!r}")
    assert not naive, "timestamps without a zone:\n" + "\n".join(naive)
    # The walk must have met the routes and data it exists for (a silent skip proves nothing).
    for must in (
        "/api/v1/alerts",
        "/api/v1/alerts/{alert_id}",
        "/api/v1/devices",
        "/api/v1/devices/{device_id}/health",
        "/api/v1/positions/latest",
        "/api/v1/incidents",
        "/api/v1/incidents/{incident_id}",
        "/api/v1/grid-cells",
        "/api/v1/audit",
        "/api/v1/ui/devices",
    ):
        assert must in called, f"{must} was not walked"
    assert timestamps > 50, timestamps
    # The dashboard shows times in the site's zone, so it must learn which one that is.
    assert admin.get("/api/v1/ui/config").json()["timezone"] == "America/Sao_Paulo"
