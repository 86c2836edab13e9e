"""Following a report: one's own list and detail, status from the incident, who sees what."""

from __future__ import annotations

from hub.auth import Role
from hub.incidents.model import IncidentState
from tests.hub.conftest import RunningHub
from tests.hub.fieldreports.helpers import report_json, send, set_incident_state
from tests.hub.fieldreports.photos import jpeg_with_exif


def test_status_follows_the_incident_and_others_get_404(hub: RunningHub) -> None:
    worker = hub.client(Role.WORKER)
    officer = hub.client(Role.OFFICER)  # may submit, may not read everyone's
    operator = hub.client(Role.OPERATOR)  # reports:read
    mine = send(worker, report_json(category="streetlight"), [jpeg_with_exif()]).json()
    theirs = send(officer, report_json(category="noise")).json()

    detail = worker.get(f"/api/v1/field-reports/{mine['id']}")
    assert detail.status_code == 200 and detail.json()["status"] == "received"
    expected = ["assigned", "in_progress", "resolved", "closed"]
    states = [IncidentState.ASSIGNED, IncidentState.IN_PROGRESS, IncidentState.RESOLVED]
    for state, status in zip([*states, IncidentState.CLOSED], expected, strict=True):
        set_incident_state(hub, mine["incident_number"], state)
        assert worker.get(f"/api/v1/field-reports/{mine['id']}").json()["status"] == status

    # Someone else's report, or its photo, is "not found", not "forbidden".
    assert worker.get(f"/api/v1/field-reports/{theirs['id']}").status_code == 404
    photo_id = detail.json()["attachments"][0]["id"]
    url = f"/api/v1/field-reports/{mine['id']}/attachments/{photo_id}"
    assert officer.get(url).status_code == 404
    assert officer.get(f"/api/v1/field-reports/{mine['id']}").status_code == 404
    assert hub.client(Role.INSTALLER).get(f"/api/v1/field-reports/{mine['id']}").status_code == 404
    # reports:read holders see it, and its photo.
    assert operator.get(f"/api/v1/field-reports/{mine['id']}").json()["reporter"] == worker_name(
        hub
    )
    assert operator.get(url).status_code == 200


def worker_name(hub: RunningHub) -> str:
    return f"{hub.site}-{Role.WORKER.value}"


def test_mine_lists_only_ones_own_in_cursor_pages(hub: RunningHub) -> None:
    worker = hub.client(Role.WORKER)
    officer = hub.client(Role.OFFICER)
    numbers = [send(worker, report_json(category="garbage")).json()["number"] for _ in range(5)]
    send(officer, report_json(category="noise"))
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = worker.get("/api/v1/field-reports/mine", params=params).json()
        seen += [item["number"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(numbers))  # newest first, nothing of the officer's


def test_listing_everyones_needs_reports_read(hub: RunningHub) -> None:
    send(hub.client(Role.WORKER), report_json(category="garbage"))
    send(hub.client(Role.OFFICER), report_json(category="noise"))
    assert hub.client(Role.WORKER).get("/api/v1/field-reports").status_code == 403
    assert hub.client(Role.OFFICER).get("/api/v1/field-reports").status_code == 403
    everything = hub.client(Role.OPERATOR).get("/api/v1/field-reports")
    assert everything.status_code == 200 and len(everything.json()["items"]) == 2
    noise = hub.client(Role.AUDITOR).get("/api/v1/field-reports", params={"category": "noise"})
    assert [i["category"] for i in noise.json()["items"]] == ["noise"]
    # Submitting needs reports:submit: an operator reads reports but does not file them.
    assert send(hub.client(Role.OPERATOR), report_json()).status_code == 403
    assert hub.client(None).get("/api/v1/field-reports/mine").status_code == 401
