"""Open311 GeoReport v2 against the real hub, read through the `georeport` client from PyPI.

georeport 0.3.1 reads (services, service definitions, requests, one request) but has no call
to create a request, and it sends no api_key with its reads. So: requests are created with a
plain form POST (what the spec defines, with `requests`, the library georeport itself uses),
and georeport follows them on a hub whose config makes request lists public.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from georeport import GeoReport

from hub.auth import Role
from hub.fieldreports.config import FieldReportsConfig, Open311Config
from hub.incidents.model import IncidentState
from tests.hub.conftest import RunningHub, start_hub, stop_hub
from tests.hub.fieldreports.helpers import set_incident_state
from tests.hub.fieldreports.photos import jpeg_with_exif
from tests.support.broker import BrokerHarness


def api_key(hub: RunningHub, role: Role) -> str:
    res = hub.client(role).post("/api/v1/auth/tokens", json={"name": "open311-client"})
    res.raise_for_status()
    token: str = res.json()["token"]
    return token


def post_request(hub: RunningHub, **fields: str) -> requests.Response:
    return requests.post(f"{hub.base_url}/open311/v2/requests.json", data=fields, timeout=30)


@pytest.fixture
def public_hub(broker: BrokerHarness, site: str, tmp_path: Path) -> Iterator[RunningHub]:
    config = FieldReportsConfig(open311=Open311Config(public_requests=True, burst=200))
    running = start_hub(broker, site, tmp_path, field_reports=config)
    yield running
    stop_hub(broker, running)


def test_services_create_and_follow_through_georeport(public_hub: RunningHub) -> None:
    hub = public_hub
    client = GeoReport(f"{hub.base_url}/open311/v2", jurisdiction=hub.site)
    services = client.get_service_list()
    codes = {s["service_code"]: s for s in services}
    assert "garbage" in codes and "watchlist_match" not in codes  # only field-reportable ones
    assert codes["garbage"]["service_name"] == "Garbage or illegal dumping"
    definition = client.get_service_definition("garbage")
    assert [a["code"] for a in definition["attributes"]] == ["client_request_id"]
    zh = requests.get(
        f"{hub.base_url}/open311/v2/services.json", params={"locale": "zh-CN"}, timeout=30
    ).json()
    assert {s["service_code"]: s["service_name"] for s in zh}["garbage"] == "垃圾堆放"

    key = api_key(hub, Role.WORKER)
    created = post_request(
        hub,
        api_key=key,
        service_code="garbage",
        lat="22.54312",
        long="114.05751",
        description="Bags of rubbish dumped behind block 7",
        **{"attribute[client_request_id]": "phone-42-0001"},
    )
    assert created.status_code == 201, created.text
    (answer,) = created.json()
    number = answer["service_request_id"]
    assert number.startswith("R-")
    again = post_request(
        hub,
        api_key=key,
        service_code="garbage",
        lat="22.54312",
        long="114.05751",
        description="Bags of rubbish dumped behind block 7",
        **{"attribute[client_request_id]": "phone-42-0001"},
    )
    assert again.status_code == 200 and again.json()[0]["service_request_id"] == number

    followed = client.get_service_request(number)
    assert followed["status"] == "open" and followed["service_code"] == "garbage"
    # The public view: no description, coordinates rounded to about a kilometre.
    assert "description" not in followed and "media_url" not in followed
    assert (followed["lat"], followed["long"]) == (22.54, 114.06)

    # An operator resolves the incident: the Open311 status becomes closed.
    report = hub.client(Role.WORKER).get("/api/v1/field-reports/mine").json()["items"][0]
    set_incident_state(hub, report["incident_number"], IncidentState.ASSIGNED)
    assert client.get_service_request(number)["status"] == "open"
    set_incident_state(hub, report["incident_number"], IncidentState.RESOLVED)
    assert client.get_service_request(number)["status"] == "closed"
    listed = client.get_service_requests(status="closed")
    assert [r["service_request_id"] for r in listed] == [number]
    assert client.get_service_requests(status="open") == []
    assert [r["service_request_id"] for r in client.get_service_requests(service_code="garbage")]
    assert client.get_service_requests(service_code="noise") == []
    assert client.get_service_requests(service_request_id=number)[0]["status"] == "closed"

    # With an api_key of a reports:read holder, the full view.
    full = requests.get(
        f"{hub.base_url}/open311/v2/requests/{number}.json",
        params={"api_key": api_key(hub, Role.OPERATOR)},
        timeout=30,
    ).json()[0]
    assert full["description"] == "Bags of rubbish dumped behind block 7"
    assert full["lat"] == 22.54312 and full["status_notes"] == "Resolved"
    with pytest.raises(requests.HTTPError):
        client.get_service_request("R-999999")


def test_a_posted_photo_is_reencoded_and_locates_the_request(public_hub: RunningHub) -> None:
    hub = public_hub
    res = requests.post(
        f"{hub.base_url}/open311/v2/requests.json",
        data={
            "api_key": api_key(hub, Role.WORKER),
            "service_code": "road_damage",
            "description": "Pothole",
        },
        files={"media": ("p.jpg", jpeg_with_exif(lon=114.07, lat=22.53), "image/jpeg")},
        timeout=30,
    )
    assert res.status_code == 201, res.text
    report = hub.client(Role.WORKER).get("/api/v1/field-reports/mine").json()["items"][0]
    assert report["channel"] == "open311" and report["photo_count"] == 1
    assert report["location_source"] == "photo"


def test_private_by_default_and_errors_in_open311_format(hub: RunningHub) -> None:
    base = f"{hub.base_url}/open311/v2"
    client = GeoReport(base)
    assert client.get_service_list()  # services are public
    # georeport sends no api_key: request lists are refused on a private hub.
    with pytest.raises(requests.HTTPError) as refused:
        client.get_service_requests()
    status, errors = refused.value.response.status_code, refused.value.response.json()
    # The traceback holds the library's frames and their pooled connection: let them go now,
    # not at some later garbage collection (the leak check counts sockets).
    del refused
    assert status == 403
    (error,) = errors
    assert error["code"] == 403 and "api_key" in error["description"]

    bad = post_request(
        hub, api_key="gw_forged", service_code="garbage", description="x", lat="1", long="1"
    )
    assert bad.status_code == 403 and bad.json()[0]["code"] == 403
    installer = post_request(
        hub,
        api_key=api_key(hub, Role.INSTALLER),
        service_code="garbage",
        description="x",
        lat="1",
        long="1",
    )
    assert installer.status_code == 403 and "reports:submit" in installer.json()[0]["description"]

    worker_key = api_key(hub, Role.WORKER)
    unknown = post_request(
        hub, api_key=worker_key, service_code="nope", description="x", lat="1", long="1"
    )
    assert unknown.status_code == 404 and unknown.json()[0]["code"] == 404
    no_location = post_request(hub, api_key=worker_key, service_code="garbage", description="x")
    assert no_location.status_code == 400 and "location" in no_location.json()[0]["description"]
    nan = post_request(
        hub, api_key=worker_key, service_code="garbage", description="x", lat="nan", long="1"
    )
    assert nan.status_code == 400
    huge = post_request(
        hub, api_key=worker_key, service_code="garbage", description="y" * 5000, lat="1", long="1"
    )
    assert huge.status_code == 400 and "4000" in huge.json()[0]["description"]
    as_json = requests.post(f"{base}/requests.json", json={"api_key": worker_key}, timeout=30)
    assert as_json.status_code == 415 and as_json.json()[0]["code"] == 415
    many = requests.post(
        f"{base}/requests.json",
        data={f"attribute[x{i}]": "1" for i in range(1000)} | {"api_key": worker_key},
        timeout=30,
    )
    assert many.status_code == 400 and many.json()[0]["code"] == 400

    # A worker's key sees the worker's own requests only; an operator's sees all.
    mine = post_request(
        hub,
        api_key=worker_key,
        service_code="garbage",
        description="mine",
        lat="22.5",
        long="114.0",
    )
    assert mine.status_code == 201
    officer_key = api_key(hub, Role.OFFICER)
    theirs = post_request(
        hub,
        api_key=officer_key,
        service_code="noise",
        description="theirs",
        lat="22.5",
        long="114.0",
    )
    theirs_id = theirs.json()[0]["service_request_id"]
    own = requests.get(f"{base}/requests.json", params={"api_key": worker_key}, timeout=30).json()
    assert [r["description"] for r in own] == ["mine"]
    hidden = requests.get(
        f"{base}/requests/{theirs_id}.json", params={"api_key": worker_key}, timeout=30
    )
    assert hidden.status_code == 404
    everyone = requests.get(
        f"{base}/requests.json", params={"api_key": api_key(hub, Role.OPERATOR)}, timeout=30
    ).json()
    assert sorted(r["description"] for r in everyone) == ["mine", "theirs"]
    bad_date = requests.get(
        f"{base}/requests.json",
        params={"api_key": worker_key, "start_date": "yesterday"},
        timeout=30,
    )
    # The key may come as a bearer token instead (kept out of URLs and their logs).
    bearer = requests.get(
        f"{base}/requests.json", headers={"Authorization": f"Bearer {worker_key}"}, timeout=30
    )
    assert [r["description"] for r in bearer.json()] == ["mine"]
    assert bad_date.status_code == 400 and "W3C" in bad_date.json()[0]["description"]
    counts = hub.client(Role.ADMIN).get("/api/v1/stats").json()["field_reports"]
    assert counts["refused_bad_api_key"] == 2 and counts["refused_service_not_found"] == 1
    assert counts["refused_bad_report"] == 1  # the 5,000-character description
    assert counts["open311_accepted"] == 2


def test_rate_limited_per_client(broker: BrokerHarness, site: str, tmp_path: Path) -> None:
    config = FieldReportsConfig(open311=Open311Config(burst=3, rate_per_minute=0.5))
    hub = start_hub(broker, site, tmp_path, field_reports=config)
    try:
        base = f"{hub.base_url}/open311/v2"
        key = api_key(hub, Role.WORKER)
        codes = [
            requests.get(f"{base}/services.json", params={"api_key": key}, timeout=30).status_code
            for _ in range(4)
        ]
        assert codes == [200, 200, 200, 429]
        limited = requests.get(f"{base}/services.json", params={"api_key": key}, timeout=30)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert limited.json()[0]["code"] == 429
        # Another key is another client; made-up keys count against the address instead.
        other = api_key(hub, Role.OFFICER)
        assert requests.get(f"{base}/services.json", params={"api_key": other}, timeout=30).ok
        forged = [
            requests.get(
                f"{base}/services.json", params={"api_key": f"gw_made_up_{i}"}, timeout=30
            ).status_code
            for i in range(4)
        ]
        assert forged == [200, 200, 200, 429]
        rate = hub.client(Role.ADMIN).get("/api/v1/stats").json()["open311_rate"]
        assert rate["refused"] == 3 and rate["admitted"] == 7
    finally:
        stop_hub(broker, hub)
