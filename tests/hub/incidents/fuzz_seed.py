"""Objects the API fuzz run (tests/hub/test_api_fuzz.py) names in incident paths: a few
incidents in different states, and attachments on the first, all made through the API."""

from __future__ import annotations

from hub.auth import Role
from tests.hub.conftest import JPEG, RunningHub


def seed(hub: RunningHub) -> dict[str, list[str]]:
    op = hub.client(Role.OPERATOR)
    incidents: list[str] = []
    for i, (category, level) in enumerate(
        [("garbage", "low"), ("intrusion", "high"), ("noise", "medium"), ("other", "critical")]
    ):
        res = op.post(
            "/api/v1/incidents",
            json={
                "site": hub.site,
                "category": category,
                "level": level,
                "title": f"seeded incident {i}",
                "lon": 114.0 + i / 1000,
                "lat": 22.5,
            },
        )
        res.raise_for_status()
        incidents.append(res.json()["id"])
    op.post(
        f"/api/v1/incidents/{incidents[1]}/assign",
        json={"assignee": f"{hub.site}-{Role.OFFICER.value}", "version": 1},
    ).raise_for_status()
    op.post(f"/api/v1/incidents/{incidents[2]}/close", json={"version": 1}).raise_for_status()
    attachments = []
    for name in ("a.jpg", "b.jpg"):
        res = op.post(
            f"/api/v1/incidents/{incidents[0]}/attachments",
            content=JPEG,
            headers={"Content-Type": "image/jpeg"},
            params={"filename": name},
        )
        res.raise_for_status()
        attachments.append(res.json()["id"])
    return {"incident_id": incidents, "attachment_id": attachments}
