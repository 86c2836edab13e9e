"""Schemathesis against the hub's own OpenAPI document: generated requests to every operation,
sent over HTTP to the hub's real uvicorn server (real broker, real SQLite), must never produce
a server error (5xx), and most of them must reach the handlers' own logic.

Why the old version of this test proved little: every case shared one token, and
``POST /auth/logout`` (the second operation) revoked it, so ~98% of the cases were refused
with 401 before any handler ran; path parameters were random strings, so the rest were 404s.

How each case is made to count:

- **A fresh session per case.** Every case carries its own admin API token, issued just for it.
  Logout, token revocation and user changes can only spend that case's token (or objects the
  test seeded for them), never the next case's.
- **Path parameters name real objects.** Before fuzzing, the database is seeded with devices,
  alerts (with and without evidence), zones, grid cells, users, API tokens and map tiles. For
  every path parameter, seven cases in eight of each operation take one of the seeded ids, in
  turn; the eighth keeps schemathesis' generated value, so the unknown-id paths are still
  fuzzed. A per-operation counter decides, not a Hypothesis draw: Hypothesis favours the
  simplest choice (index 0), which sent most cases of some operations to unseeded ids. The
  acting admin is never a ``{username}`` target.

"Reached a handler" (``reached()`` below), precisely: the response is none of
- 401 or 403 (also a handler's own 401, e.g. login with generated credentials: counted
  against the fraction, to keep the definition strict);
- a request-validation 422 from FastAPI (its ``detail`` is a list of errors: the request
  never got into the handler), or a 413 from the body-size limit in front of the app;
- a 404 for a route that does not exist (``{"detail": "Not Found"}``), or a 404 from a case
  whose path names an id that was never seeded. A 404 for a seeded id counts as reached: the
  handler looked the object up (an earlier case may have deleted or retired it), which is its
  own logic.

The test asserts no 5xx at all, at least 2,000 cases over every operation, and that at least
80% of the cases reached a handler; it prints the case count and the reached fraction.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err

from edge.protocol import (
    Alert,
    AlertKind,
    DeviceKind,
    Evidence,
    Severity,
    decode_device_message,
    device_topic,
    encode,
)
from hub.auth import Role, issue_token
from hub.dashboard_config import DashboardConfig
from tests.hub.conftest import RunningHub, start_hub, stop_hub
from tests.support.broker import BrokerHarness
from tests.support.images import small_jpeg

# The cases are spread over every operation the hub's OpenAPI document lists: as the API grows,
# each operation gets fewer examples and the run keeps its length (it was the suite's longest).
TARGET_CASES = 2600
MIN_EXAMPLES_PER_OPERATION = 20
MIN_CASES = 2000
MIN_REACHED_FRACTION = 0.80
SEEDED_PICK_ODDS = 8  # 7 in 8 path parameters name a seeded object
SQUARE = [[114.05, 22.54], [114.06, 22.54], [114.06, 22.55], [114.05, 22.55], [114.05, 22.54]]
TILES = [(0, 0, 0, "png"), (1, 0, 1, "png"), (1, 1, 0, "png"), (2, 3, 1, "jpg")]
JPEG = small_jpeg()  # a real image: the hub refuses snapshots it cannot decode


@dataclass
class Seeded:
    """Ids of what the database holds, by the path parameter that names them."""

    ids: dict[str, list[str]] = field(default_factory=dict)
    tiles: list[tuple[int, int, int, str]] = field(default_factory=list)

    def names(self, name: str, value: Any) -> bool:
        return str(value) in self.ids.get(name, [])


@dataclass
class Tally:
    calls: Counter[str] = field(default_factory=Counter)
    reached: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def _seed(hub: RunningHub, tmp_path: Path) -> Seeded:
    seeded = Seeded()
    admin = hub.client(Role.ADMIN)
    devices: list[str] = []
    kinds: dict[str, DeviceKind] = {}
    for kind in DeviceKind:
        for n in (1, 2):
            # site-prefixed: the session's broker holds every test's device accounts
            device = f"{hub.site}-{kind.value}-{n}"
            hub.service.registry.add("fuzz", hub.site, kind, device, f"Fuzz {kind.value} {n}")
            devices.append(device)
            kinds[device] = kind
    # a config already pushed, so GET .../config answers 200 for some seeded devices
    commands = []
    for device in devices[::3]:
        res = admin.post(f"/api/v1/devices/{device}/config", json={"config": {"zones": []}})
        assert res.is_success, res.text
        commands.append(admin.get(f"/api/v1/devices/{device}/config").json()["command_id"])
    alerts = []
    for i, device in enumerate(devices):
        evidence = Evidence.from_jpeg(JPEG) if i % 2 == 0 else None
        alert = Alert(
            site=hub.site,
            device=device,
            kind=AlertKind.SOS,
            severity=Severity.HIGH,
            title=f"seeded alert {i}",
            evidence=evidence,
        )
        topic = device_topic(hub.site, kinds[device], device, "alert")
        hub.service.store.write_batch([decode_device_message(topic, encode(alert))])
        alerts.append(alert.id)
    zones, cells = [f"fz-zone-{n}" for n in range(4)], [f"fz-cell-{n}" for n in range(4)]
    for zid in zones:
        res = admin.put(
            f"/api/v1/zones/{zid}",
            json={
                "type": "Feature",
                "id": zid,
                "geometry": {"type": "Polygon", "coordinates": [SQUARE]},
                "properties": {"site": hub.site, "name": zid, "kind": "intrusion"},
            },
        )
        assert res.is_success, res.text
    for cid in cells:
        res = admin.put(
            f"/api/v1/grid-cells/{cid}",
            json={
                "type": "Feature",
                "id": cid,
                "geometry": {"type": "Polygon", "coordinates": [SQUARE]},
                "properties": {"site": hub.site, "name": cid, "team": "Fuzz team"},
            },
        )
        assert res.is_success, res.text
    with hub.service.store.engine.begin() as conn:
        tokens = [
            issue_token(conn, f"{hub.site}-admin", "api", f"seeded-{n}", None)[1] for n in range(6)
        ]
    # every user but the acting admin may be changed, disabled or have its password reset
    users = [f"{hub.site}-{role.value}" for role in Role if role is not Role.ADMIN]
    seeded.ids = {
        "device_id": devices,
        "alert_id": alerts,
        "zone_id": zones,
        "cell_id": cells,
        "token_id": tokens,
        "username": users,
        "command_id": commands,
    }
    for z, x, y, ext in TILES:
        tile = tmp_path / "tiles" / str(z) / str(x) / f"{y}.{ext}"
        tile.parent.mkdir(parents=True, exist_ok=True)
        tile.write_bytes(b"\x89PNG\r\n\x1a\n" if ext == "png" else JPEG)
    seeded.tiles = TILES
    for area_seed in _area_seeds():
        for name, ids in area_seed(hub).items():
            seeded.ids.setdefault(name, []).extend(ids)
    return seeded


def _area_seeds() -> list[Callable[[RunningHub], dict[str, list[str]]]]:
    """Every ``tests/hub/<area>/fuzz_seed.py``'s ``seed(hub)``: each area seeds the objects its
    own path parameters name (path-parameter name -> ids), next to its own tests."""
    found = []
    for module in sorted(Path(__file__).parent.glob("*/fuzz_seed.py")):
        area = module.parent.name
        found.append(importlib.import_module(f"tests.hub.{area}.fuzz_seed").seed)
    return found


@st.composite
def _feature(draw: st.DrawFn, fid: str, site: str, *, zone: bool) -> dict[str, Any]:
    """A well-formed zone or grid-cell Feature, so PUT also gets past geometry validation
    (schemathesis alone never draws a closed, valid polygon) and creates and updates."""
    lon = draw(st.floats(-179.0, 179.0))
    lat = draw(st.floats(-89.0, 89.0))
    size = draw(st.floats(1e-4, 0.5))
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    name = draw(st.text(min_size=1, max_size=40))
    props: dict[str, Any] = {"site": site, "name": name}
    if zone:
        props["kind"] = draw(st.sampled_from(["intrusion", "inclusion", "exclusion"]))
    else:
        props["team"] = draw(st.text(max_size=40))
    return {
        "type": "Feature",
        "id": fid,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": props,
    }


def _destructive_last(operation: Any) -> tuple[bool, str]:
    """Deleting, retiring and logging out run after every other operation, so those do not
    meet seeded objects that an earlier operation already removed."""
    method, path = operation.method.upper(), operation.path
    return (method == "DELETE" or path.endswith(("/retire", "/logout")), f"{path} {method}")


def reached(case: Any, status: int, body: Any, seeded: Seeded) -> bool:
    """Whether a response came from a handler's own logic (see the module docstring)."""
    if status in (401, 403, 413):
        return False
    detail = body.get("detail") if isinstance(body, dict) else None
    if status == 422 and isinstance(detail, list):
        return False  # FastAPI's request validation: the handler never ran
    if status == 404:
        if detail == "Not Found":
            return False  # no such route
        params = case.path_parameters or {}
        if set(params) == {"z", "x", "y", "ext"}:
            return (params["z"], params["x"], params["y"], params["ext"]) in seeded.tiles
        return bool(params) and all(seeded.names(k, v) for k, v in params.items())
    return True


def _fuzz(  # noqa: PLR0917 - one call site, all positional by name
    operation: Any, label: str, hub: RunningHub, seeded: Seeded, tally: Tally, examples: int
) -> None:
    admin = f"{hub.site}-admin"
    turn = iter(range(10**9))  # this operation's case number: seeded or not, which id

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(), data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        params = case.path_parameters
        n = next(turn)
        if params and n % SEEDED_PICK_ODDS != 0:
            pick = n - n // SEEDED_PICK_ODDS - 1  # 0, 1, 2, ... over the seeded cases
            if set(params) == {"z", "x", "y", "ext"}:
                z, x, y, ext = seeded.tiles[pick % len(seeded.tiles)]
                params.update(z=z, x=x, y=y, ext=ext)
            else:
                for name in params:
                    if seeded.ids.get(name):
                        params[name] = seeded.ids[name][pick % len(seeded.ids[name])]
        feature_put = operation.path in (
            "/api/v1/zones/{zone_id}",
            "/api/v1/grid-cells/{cell_id}",
        )
        if case.method.upper() == "PUT" and feature_put and data.draw(st.booleans()):
            case.body = data.draw(
                _feature(
                    str(params.get("zone_id") or params.get("cell_id")),
                    hub.site,
                    zone="zone_id" in params,
                )
            )
        if "username" in (params or {}) and params["username"] == admin:
            params["username"] = seeded.ids["username"][0]  # never lock the acting admin out
        with hub.service.store.engine.begin() as conn:
            token = issue_token(conn, admin, "api", "fuzz-case", None)[0]
        response = case.call(base_url=hub.base_url, headers={"Authorization": f"Bearer {token}"})
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        tally.calls[label] += 1
        tally.statuses[(label, status)] += 1
        if reached(case, status, body, seeded):
            tally.reached[label] += 1
        if status >= 500:
            tally.failures.append(f"{label}: {status} {response.text[:200]}")
        case.validate_response(response, checks=[not_a_server_error])

    run()


@pytest.mark.slow
def test_generated_requests_reach_handlers_and_never_fail(
    broker: BrokerHarness, site: str, tmp_path: Path
) -> None:
    hub = start_hub(
        broker,
        site,
        tmp_path,
        ui=DashboardConfig(base_layer="local_tiles", tiles_dir=tmp_path / "tiles"),
    )
    tally = Tally()
    try:
        seeded = _seed(hub, tmp_path)
        schema = schemathesis.openapi.from_url(f"{hub.base_url}/openapi.json")
        operations = []
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                raise result.err()  # the hub's own OpenAPI document is broken
            operations.append(result.ok())
        operations.sort(key=_destructive_last)
        examples = max(MIN_EXAMPLES_PER_OPERATION, -(-TARGET_CASES // len(operations)))
        for operation in operations:
            label = f"{operation.method.upper()} {operation.path}"
            _fuzz(operation, label, hub, seeded, tally, examples)
    finally:
        stop_hub(broker, hub)
    total = sum(tally.calls.values())
    got_in = sum(tally.reached.values())
    fraction = got_in / total if total else 0.0
    print(
        f"\nschemathesis: {total} generated cases over {len(tally.calls)} operations, "
        f"{len(tally.failures)} server errors, {got_in} reached a handler ({fraction:.1%})"
    )
    for label in sorted(tally.calls):
        if tally.reached[label] < tally.calls[label] * MIN_REACHED_FRACTION:
            spread = {s: n for (lab, s), n in tally.statuses.items() if lab == label}
            print(f"  {label}: {tally.reached[label]}/{tally.calls[label]} reached; {spread}")
    assert tally.failures == []
    assert len(tally.calls) == len(operations) >= 40
    assert fraction >= MIN_REACHED_FRACTION, f"only {fraction:.1%} of cases reached a handler"
    assert total >= MIN_CASES


def test_reached_counts_only_handler_answers() -> None:
    """The classifier itself: gate refusals and unseeded 404s are not 'reached'."""
    seeded = Seeded(ids={"device_id": ["fz-camera-1"]}, tiles=[(0, 0, 0, "png")])

    @dataclass
    class FakeCase:
        path_parameters: dict[str, Any]

    on_seeded, unseeded = FakeCase({"device_id": "fz-camera-1"}), FakeCase({"device_id": "zz"})
    assert not reached(on_seeded, 401, {"detail": "authentication required"}, seeded)
    assert not reached(on_seeded, 403, {"detail": "role officer may not do this"}, seeded)
    assert not reached(on_seeded, 422, {"detail": [{"loc": ["body"], "type": "missing"}]}, seeded)
    assert reached(on_seeded, 422, {"detail": "nothing to change"}, seeded)
    assert reached(on_seeded, 404, {"detail": "no device 'fz-camera-1'"}, seeded)
    assert not reached(unseeded, 404, {"detail": "no device 'zz'"}, seeded)
    assert not reached(on_seeded, 404, {"detail": "Not Found"}, seeded)
    assert not reached(FakeCase({}), 404, {"detail": "no such thing"}, seeded)
    tile = FakeCase({"z": 0, "x": 0, "y": 0, "ext": "png"})
    assert reached(tile, 404, {"detail": "no tile 0/0/0"}, seeded)
    assert not reached(FakeCase({"z": 9, "x": 0, "y": 0, "ext": "png"}), 404, {}, seeded)
    assert reached(FakeCase({}), 200, [], seeded)


@pytest.mark.parametrize(
    "body",
    [
        "id,name,category,lon,lat\raed-1,AED,aed,114.05,22.54\r",  # CR line ends
        "id,name\rcategory,lon,lat\n",  # a lone CR inside the header line
        "id,name,category,lon,lat\n" + "x" * 200_000 + ",n,aed,1,2\n",  # over csv's field limit
    ],
)
def test_csv_cases_the_fuzzer_found_answer_422_not_500(hub: RunningHub, body: str) -> None:
    """Replayed by hand: schemathesis found a POI import that crashed ``csv`` with a 500
    (``new-line character seen in unquoted field``) once its cases reached the handler."""
    res = hub.client(Role.ADMIN).post(
        f"/api/v1/poi/import?site={hub.site}",
        content=body,
        headers={"Content-Type": "text/csv"},
    )
    assert res.status_code in (200, 422), res.text
    if res.status_code == 422:
        assert isinstance(res.json()["detail"], str)
