"""Objects for the API fuzz run (tests/hub/test_api_fuzz.py): path parameter -> seeded ids."""

from __future__ import annotations

from hub.auth import Role
from hub.incidents.categories import Vocabulary
from hub.open311.service import service_code
from tests.hub.conftest import RunningHub
from tests.hub.fieldreports.helpers import report_json, send
from tests.hub.fieldreports.photos import jpeg_with_exif, ogg_voice


def seed(hub: RunningHub) -> dict[str, list[str]]:
    worker = hub.client(Role.WORKER)
    admin = hub.client(Role.ADMIN)
    reports = [
        send(worker, report_json(category="garbage"), [jpeg_with_exif()], ogg_voice()).json(),
        send(admin, report_json(category="noise", lon=114.05, lat=22.54)).json(),
        send(admin, report_json()).json(),
    ]
    attachments = [
        a["id"]
        for r in reports
        for a in admin.get(f"/api/v1/field-reports/{r['id']}").json()["attachments"]
    ]
    vocabulary: Vocabulary = hub.service.config.incidents
    return {
        "report_id": [r["id"] for r in reports],
        "attachment_id": attachments,
        "service_code": [service_code(c) for c in vocabulary.reportable()],
        "service_request_id": [r["number"] for r in reports],
    }
