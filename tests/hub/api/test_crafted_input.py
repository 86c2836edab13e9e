"""No 500s from crafted input (issue 11, item 8), against the real running hub.

Every paged route is found in the hub's own OpenAPI document (any GET operation with a
``cursor`` query parameter), so a route added later is covered without touching this file.
Hand-made cursors (``[1e999]``, ``[null]``, 27-digit integers, wrong types, nested lists,
NaN) and crafted point-of-interest files (``"features": 5``, deep nesting, huge numbers) must
each be a clear 422; a Hypothesis property test sends arbitrary ones and asserts that no
request ever gets a 5xx and that the hub still answers its normal pages afterwards.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.api.deps import BAD_CURSOR, encode_cursor
from hub.auth import Role
from tests.hub.conftest import RunningHub, start_hub, stop_hub
from tests.support.broker import BrokerHarness

# What the hub held before the paged-route discovery was written; discovery must find at
# least these, so a broken discovery cannot pass by testing nothing.
KNOWN_PAGED = {
    "/api/v1/alerts",
    "/api/v1/audit",
    "/api/v1/commands",
    "/api/v1/devices",
    "/api/v1/devices/{device_id}/health",
    "/api/v1/grid-cells",
    "/api/v1/ingest/rejected",
    "/api/v1/ui/devices",
    "/api/v1/poi",
    "/api/v1/positions/history",
    "/api/v1/positions/latest",
    "/api/v1/users",
    "/api/v1/zones",
}
# Query values a route needs before it looks at the cursor (history refuses an unfiltered
# query on its own); every other parameter is left out.
NEEDED_QUERY: dict[str, dict[str, str]] = {"/api/v1/positions/history": {"entity": "w1"}}
PATH_VALUE = "fuzz-1"


@pytest.fixture
def hub(broker: BrokerHarness, site: str, tmp_path: Path, db_url: str) -> Iterator[RunningHub]:
    """The running hub on SQLite and on PostgreSQL (which refuses NUL in text, and whose
    BIGINT, not a Python int, decides what overflows)."""
    running = start_hub(broker, site, tmp_path, database_url=db_url)
    yield running
    stop_hub(broker, running)


def _raw_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


CRAFTED_CURSORS = {
    "1e999": _raw_cursor("[1e999]"),
    "-1e999": _raw_cursor("[-1e999]"),
    "NaN": _raw_cursor("[NaN]"),
    "Infinity": _raw_cursor("[Infinity]"),
    "null": encode_cursor([None]),
    "27 digits": encode_cursor([10**26]),
    "negative 27 digits": encode_cursor([-(10**26)]),
    "380 digits": _raw_cursor("[" + "9" * 380 + "]"),
    "true": encode_cursor([True]),
    "float": encode_cursor([1.5]),
    "nested list": encode_cursor([[["a"]]]),
    "object": encode_cursor([{"id": "a"}]),
    "empty list": encode_cursor([]),
    "five keys": encode_cursor(["a", "b", "c", "d", "e"]),
    "not a list": encode_cursor({"a": 1}),  # type: ignore[arg-type]
    "a bare string": _raw_cursor('"abc"'),
    "NUL in a key": encode_cursor(["a\x00b"]),
    "empty key": encode_cursor([""]),
    "not base64": "%%%",
    "not JSON": _raw_cursor("[abc"),
    "not UTF-8": base64.urlsafe_b64encode(b"[\xff\xfe]").decode(),
    "deep nesting": _raw_cursor("[" * 190 + "]" * 190),
}


def paged_routes(client: httpx.Client) -> list[str]:
    """Every GET operation of the hub's OpenAPI document that takes a ``cursor``."""
    spec = client.get("/openapi.json").json()
    found = []
    for path, item in spec["paths"].items():
        get = item.get("get")
        if get and any(
            p.get("in") == "query" and p.get("name") == "cursor" for p in get.get("parameters", [])
        ):
            found.append(path)
    return sorted(found)


def _get(client: httpx.Client, path: str, cursor: str) -> httpx.Response:
    url = re.sub(r"\{\w+\}", PATH_VALUE, path)  # every path parameter names the same id
    return client.get(url, params={**NEEDED_QUERY.get(path, {}), "cursor": cursor})


def test_discovery_finds_every_paged_route(hub: RunningHub) -> None:
    found = set(paged_routes(hub.client(Role.ADMIN)))
    assert found >= KNOWN_PAGED, f"not discovered: {sorted(KNOWN_PAGED - found)}"


def test_crafted_cursors_are_a_clear_422_on_every_paged_route(hub: RunningHub) -> None:
    admin = hub.client(Role.ADMIN)
    hub.service.registry.add("fuzz", hub.site, "camera", PATH_VALUE, "fuzz camera")
    wrong: list[str] = []
    for path in paged_routes(admin):
        for name, cursor in CRAFTED_CURSORS.items():
            res = _get(admin, path, cursor)
            detail = res.json().get("detail") if res.status_code == 422 else None
            if res.status_code != 422 or detail != BAD_CURSOR:
                wrong.append(f"{path} cursor {name}: {res.status_code} {res.text[:120]}")
    assert not wrong, "\n".join(wrong)


def test_a_cursor_of_the_wrong_shape_is_422(hub: RunningHub) -> None:
    """A well-formed cursor of another route: text where a sequence number is expected, a
    number where an id is, one key where a route issues two."""
    admin = hub.client(Role.ADMIN)
    cases = [
        ("/api/v1/audit", encode_cursor(["not-a-seq"])),
        ("/api/v1/ingest/rejected", encode_cursor([0])),
        ("/api/v1/alerts", encode_cursor([7])),
        ("/api/v1/positions/latest", encode_cursor(["only-one"])),
        ("/api/v1/positions/history", encode_cursor(["not a time", 1])),
        ("/api/v1/positions/history", encode_cursor(["2026-01-01T00:00:00+00:00", "x"])),
    ]
    for path, cursor in cases:
        res = _get(admin, path, cursor)
        assert res.status_code == 422, (path, res.text)
        assert res.json()["detail"] == BAD_CURSOR


def test_issued_cursors_keep_working(hub: RunningHub) -> None:
    """The typed checks accept what the routes themselves issue (ids, seq, time + seq)."""
    admin = hub.client(Role.ADMIN)
    for n in range(3):
        hub.service.registry.add("fuzz", hub.site, "camera", f"pg-cam-{n}", f"cam {n}")
    first = admin.get("/api/v1/devices", params={"limit": 2, "site": hub.site}).json()
    second = admin.get(
        "/api/v1/devices", params={"limit": 2, "site": hub.site, "cursor": first["next_cursor"]}
    )
    assert second.status_code == 200
    assert [d["id"] for d in second.json()["items"]] == ["pg-cam-2"]
    audit = admin.get("/api/v1/audit", params={"limit": 1}).json()
    assert admin.get("/api/v1/audit", params={"cursor": audit["next_cursor"]}).is_success
    history_cursor = encode_cursor(["2026-01-01T00:00:00+00:00", 5])
    res = admin.get("/api/v1/positions/history", params={"entity": "w", "cursor": history_cursor})
    assert res.status_code == 200


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**18, max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
cursor_texts = (
    st.lists(json_values, max_size=5).map(json.dumps)  # json.dumps writes NaN and Infinity
    | st.sampled_from(["[1e999]", "[-0]", "[1E400, 2]", '["a", 1e-999]', "[[[[]]]]"])
    | st.text(max_size=40)
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_property_no_cursor_gets_a_server_error(hub: RunningHub, data: st.DataObject) -> None:
    admin = _cached_admin(hub)
    path = data.draw(st.sampled_from(_cached_paths(hub)), label="route")
    text = data.draw(cursor_texts, label="cursor JSON")
    as_base64 = data.draw(st.booleans(), label="base64")
    cursor = _raw_cursor(text) if as_base64 else text
    res = _get(admin, path, cursor[:512])
    assert res.status_code in (200, 404, 422), (path, text, res.status_code, res.text[:200])


# --- points of interest ----------------------------------------------------------------------


def _point(coords: Any, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": props.pop("id", "p1"),
        "geometry": {"type": "Point", "coordinates": coords},
        "properties": {"name": "Shelter", "category": "shelter", **props},
    }


def _collection(*features: Any) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features)})


CRAFTED_IMPORTS = {
    "features is a number": json.dumps({"type": "FeatureCollection", "features": 5}),
    "features is a string": json.dumps({"type": "FeatureCollection", "features": "x"}),
    "feature is a number": _collection(5),
    "deep nesting": '{"type": "FeatureCollection", "features": ' + "[" * 100_000,
    "deep properties": _collection(_point([114.0, 22.5], extra=json.loads("[" * 60 + "]" * 60))),
    "1e999 longitude": _collection(_point([114.0, 22.5])).replace("114.0", "1e999"),
    "400-digit longitude": _collection(_point([114.0, 22.5])).replace("114.0", "9" * 400),
    "5000-digit number": _collection(_point([114.0, 22.5], extra=1)).replace(
        '"extra": 1', '"extra": ' + "9" * 5000
    ),
    "NaN property": _collection(_point([114.0, 22.5], extra=float("nan"))),
    "Infinity latitude": _collection(_point([114.0, 22.5])).replace("22.5", "Infinity"),
    "booleans as coordinates": _collection(_point([True, False])),
    "string coordinates": _collection(_point(["114.0", "22.5"])),
    "null coordinates": _collection(_point([None, None])),
    "nested coordinates": _collection(_point([[114.0], [22.5]])),
    "NUL in a name": _collection(_point([114.0, 22.5], name="Shel\x00ter")),
    "NUL in a property key": _collection(_point([114.0, 22.5], **{"k\x00": 1})),
    "geometry is a list": json.dumps(
        {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": [1, 2]}]}
    ),
    "not a collection": json.dumps([1, 2, 3]),
}


def _import(client: httpx.Client, site: str, body: str | bytes, media: str) -> httpx.Response:
    return client.post(
        "/api/v1/poi/import",
        params={"site": site},
        content=body if isinstance(body, bytes) else body.encode(),
        headers={"Content-Type": media},
    )


def test_crafted_poi_files_are_a_clear_422_and_store_nothing(hub: RunningHub) -> None:
    admin = hub.client(Role.ADMIN)
    wrong = []
    for name, body in CRAFTED_IMPORTS.items():
        res = _import(admin, hub.site, body, "application/geo+json")
        if res.status_code != 422 or not isinstance(res.json().get("detail"), str):
            wrong.append(f"{name}: {res.status_code} {res.text[:160]}")
    csv_nul = "id,name,category,lon,lat\np1,Shel\x00ter,shelter,114.0,22.5\n"
    res = _import(admin, hub.site, csv_nul, "text/csv")
    if res.status_code != 422:
        wrong.append(f"CSV with NUL: {res.status_code} {res.text[:160]}")
    assert not wrong, "\n".join(wrong)
    pois = admin.get("/api/v1/poi", params={"site": hub.site})
    assert pois.status_code == 200 and pois.json()["features"] == []


def test_poi_numbers_stay_numbers(hub: RunningHub) -> None:
    """A well-formed file still imports, and [true, false] is not read as (1, 0)."""
    admin = hub.client(Role.ADMIN)
    ok = _import(admin, hub.site, _collection(_point([114.05, 22.54])), "application/geo+json")
    assert ok.status_code == 200, ok.text
    bad = _import(admin, hub.site, _collection(_point([True, False], id="p2")), "application/json")
    assert bad.status_code == 422
    assert "numbers" in bad.json()["detail"]
    coords = [
        f["geometry"]["coordinates"]
        for f in admin.get("/api/v1/poi", params={"site": hub.site}).json()["features"]
    ]
    assert coords == [[114.05, 22.54]]


poi_coordinate = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.booleans()
    | st.none()
    | st.text(max_size=6)
)
poi_feature = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Feature", "Point", 5]),
        "id": st.sampled_from(["p1", "p2", "bad id", 7, None]),
        "geometry": st.one_of(
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["Point", "Polygon"]),
                    "coordinates": st.lists(poi_coordinate, max_size=4) | json_values,
                }
            ),
            json_values,
        ),
        "properties": st.dictionaries(
            st.sampled_from(["name", "category", "id", "x", "k\x00"]), json_values, max_size=4
        )
        | json_values,
    }
)
poi_documents = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["FeatureCollection", "Feature"]),
            "features": st.lists(poi_feature | json_values, max_size=3) | json_values,
        }
    ),
    json_values,
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(doc=poi_documents, media=st.sampled_from(["application/geo+json", "text/csv"]))
def test_property_no_poi_file_gets_a_server_error(hub: RunningHub, doc: Any, media: str) -> None:
    admin = _cached_admin(hub)
    body = json.dumps(doc) if media != "text/csv" else _as_csv(doc)
    res = _import(admin, hub.site, body, media)
    assert res.status_code in (200, 422), (body[:300], res.status_code, res.text[:200])
    # Whatever was stored can be read back: a stored NaN would be a 500 on every later read.
    listed = admin.get("/api/v1/poi", params={"site": hub.site})
    assert listed.status_code == 200, listed.text[:200]


def _as_csv(doc: Any) -> str:
    """A CSV file whose cells are the document's values as text (commas and quotes kept)."""
    values = doc if isinstance(doc, list) else [doc]
    cells = [json.dumps(v)[:30] for v in values][:5]
    return "id,name,category,lon,lat\n" + ",".join(cells) + "\n"


_ADMINS: dict[str, httpx.Client] = {}
_PATHS: dict[str, list[str]] = {}


def _cached_admin(hub: RunningHub) -> httpx.Client:
    # Hypothesis runs the body many times with one fixture instance: log in once per hub.
    if hub.base_url not in _ADMINS:
        _ADMINS[hub.base_url] = hub.client(Role.ADMIN)
    return _ADMINS[hub.base_url]


def _cached_paths(hub: RunningHub) -> list[str]:
    if hub.base_url not in _PATHS:
        _PATHS[hub.base_url] = paged_routes(_cached_admin(hub))
    return _PATHS[hub.base_url]


@pytest.fixture(autouse=True)
def _forget_clients() -> Any:
    yield
    _ADMINS.clear()
    _PATHS.clear()
