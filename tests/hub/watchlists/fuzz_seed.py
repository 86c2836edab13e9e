"""Objects the API fuzz run (tests/hub/test_api_fuzz.py) names in watchlist paths: three
entries an operator proposed (so the fuzzing admin may approve, refuse or revoke them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.auth import Role
from tests.hub.conftest import RunningHub
from tests.hub.watchlists.conftest import photo


def seed(hub: RunningHub) -> dict[str, list[str]]:
    operator = hub.client(Role.OPERATOR)
    ids = []
    for label in ("obama", "obama3", "biden"):
        res = operator.post(
            "/api/v1/watchlists/entries",
            data={
                "label": f"seeded {label}",
                "category": "wanted_person",
                "reason": "fuzz seed",
                "legal_basis": "test warrant",
                "expires_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
            },
            files={"photo": (f"{label}.jpg", photo(label), "image/jpeg")},
        )
        res.raise_for_status()
        ids.append(res.json()["id"])
    return {"entry_id": ids}
