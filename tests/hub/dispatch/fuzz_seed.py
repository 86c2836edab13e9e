"""Objects the API fuzz run (tests/hub/test_api_fuzz.py) names in dispatch paths: the seeded
officer with bound glasses, dispatched by hand (forced: no fix) to three open incidents."""

from __future__ import annotations

from hub.auth import Role
from tests.hub.conftest import RunningHub


def seed(hub: RunningHub) -> dict[str, list[str]]:
    officer = f"{hub.site}-{Role.OFFICER.value}"
    device = f"fz-glasses-{hub.site}"[:64]
    hub.client(Role.INSTALLER).post(
        "/api/v1/devices", json={"id": device, "site": hub.site, "kind": "glasses"}
    ).raise_for_status()
    op = hub.client(Role.OPERATOR)
    admin = hub.client(Role.ADMIN)
    admin.put(
        f"/api/v1/officers/{officer}", json={"device": device, "on_duty": True}
    ).raise_for_status()
    dispatches = []
    for i in range(3):
        res = op.post(
            "/api/v1/incidents",
            json={
                "site": hub.site,
                "category": "intrusion",
                "level": "medium",  # below dispatch's min_level: only the manual dispatch
                "title": f"seeded dispatch incident {i}",
                "lon": 114.0 + i / 1000,
                "lat": 22.6,
            },
        )
        res.raise_for_status()
        sent = op.post(
            f"/api/v1/incidents/{res.json()['id']}/dispatches",
            json={"officer": officer, "action": "verify", "force": True},
        )
        sent.raise_for_status()
        dispatches.append(sent.json()["id"])
    return {"dispatch_id": dispatches}
