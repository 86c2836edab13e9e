"""Repeatable provisioning (``PUT /devices/{id}``), as the Ansible play calls it on every run:
create once, keep on repeats (no secrets shown, the old password still works), rotate only
when asked (the old password stops working), refuse a retired id or another site or kind."""

from __future__ import annotations

from pathlib import Path

from hub.auth import Role
from tests.hub.conftest import RunningHub
from tests.hub.devices.test_routes import _can_connect
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until


def test_put_creates_keeps_and_rotates(
    hub: RunningHub, broker: BrokerHarness, tmp_path: Path
) -> None:
    device = f"{hub.site}-put"
    installer = hub.client(Role.INSTALLER)
    url = f"/api/v1/devices/{device}"
    body = {"site": hub.site, "kind": "wristband", "name": "Gate gateway"}

    first = installer.put(url, json=body)
    assert first.status_code == 201, first.text
    created = first.json()
    assert created["created"] is True and created["rotated"] is False
    assert created["mqtt_username"] == device and created["mqtt_password"]
    old_pw = tmp_path / "old"
    old_pw.write_text(created["mqtt_password"])
    assert _can_connect(broker.port, device, old_pw)

    again = installer.put(url, json=body)
    assert again.status_code == 200, again.text
    kept = again.json()
    assert kept["created"] is False and kept["rotated"] is False
    assert kept["mqtt_password"] is None and kept["key_pem"] is None
    assert _can_connect(broker.port, device, old_pw), "a repeat must not change the password"

    rotated = installer.put(url, json={**body, "rotate": True})
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["rotated"] is True and new["created"] is False
    assert new["mqtt_password"] and new["mqtt_password"] != created["mqtt_password"]
    new_pw = tmp_path / "new"
    new_pw.write_text(new["mqtt_password"])
    wait_until(
        lambda: not _can_connect(broker.port, device, old_pw),
        timeout_s=15,
        message="the broker refuses the rotated-out password",
    )
    assert _can_connect(broker.port, device, new_pw)

    # Same id for another kind or site: a conflict, never a silent takeover.
    other_kind = installer.put(url, json={**body, "kind": "camera"})
    assert other_kind.status_code == 409
    assert "wristband" in other_kind.json()["detail"]
    assert installer.put(url, json={**body, "site": f"{hub.site}x"}).status_code == 409
    assert installer.put(url, json={**body, "nonsense": 1}).status_code == 422
    assert hub.client(Role.OPERATOR).put(url, json=body).status_code == 403

    assert installer.post(f"{url}/retire", json={"reason": "replaced"}).status_code == 204
    retired = installer.put(url, json={**body, "rotate": True})
    assert retired.status_code == 409
    assert "retired" in retired.json()["detail"]

    audit = hub.client(Role.AUDITOR).get("/api/v1/audit", params={"target": device}).json()
    actions = [r["action"] for r in audit["items"]]
    # one record per change; the repeat that changed nothing wrote none
    assert actions == ["device.retire", "device.rotate", "device.provision"]
    assert created["mqtt_password"] not in str(audit)
    assert new["mqtt_password"] not in str(audit)


def test_put_rotates_a_certificate(hub: RunningHub, broker: BrokerHarness) -> None:
    device = f"{hub.site}-putcert"
    installer = hub.client(Role.INSTALLER)
    body = {"site": hub.site, "kind": "camera", "with_password": False, "with_certificate": True}
    first = installer.put(f"/api/v1/devices/{device}", json=body).json()
    second = installer.put(f"/api/v1/devices/{device}", json={**body, "rotate": True}).json()
    assert first["cert_pem"] and second["cert_pem"] and first["cert_pem"] != second["cert_pem"]
    assert second["key_pem"] and second["mqtt_password"] is None
    assert not list((broker.ca.directory / "issued").glob("*.key")), "hub kept a private key"
    audit = hub.client(Role.AUDITOR).get("/api/v1/audit", params={"target": device}).json()
    rotate = next(r for r in audit["items"] if r["action"] == "device.rotate")
    provision = next(r for r in audit["items"] if r["action"] == "device.provision")
    assert rotate["details"]["cert_serial"] != provision["details"]["cert_serial"]
