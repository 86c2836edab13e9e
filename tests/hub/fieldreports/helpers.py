"""Building multipart field reports the way a phone sends them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from hub.incidents.model import IncidentState
from tests.hub.conftest import RunningHub


def report_json(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "client_report_id": str(uuid.uuid4()),
        "description": "Garbage piled up by the east gate of the market",
    }
    body.update(fields)
    return body


def send(
    client: httpx.Client,
    report: dict[str, Any] | str,
    photos: list[bytes] | None = None,
    voice: bytes | None = None,
) -> httpx.Response:
    text = report if isinstance(report, str) else json.dumps(report)
    files: list[tuple[str, tuple[str, bytes, str]]] = [
        ("report", ("report.json", text.encode(), "application/json"))
    ]
    for i, photo in enumerate(photos or []):
        files.append(("photo", (f"p{i}.jpg", photo, "image/jpeg")))
    if voice is not None:
        files.append(("voice", ("v.ogg", voice, "audio/ogg")))
    return client.post("/api/v1/field-reports", files=files)


def set_incident_state(hub: RunningHub, incident_number: str, state: IncidentState) -> None:
    """Move a report's incident forward to ``state`` as an operator would, through the incident
    service's own transitions (audited, timeline, deadlines), one step at a time."""
    from sqlalchemy import select

    from hub.schema import incidents

    with hub.service.store.engine.connect() as conn:
        incident_id, current = conn.execute(
            select(incidents.c.id, incidents.c.state).where(incidents.c.number == incident_number)
        ).one()
    service, operator = hub.service.ctx.incidents, f"{hub.site}-operator"
    steps = {
        IncidentState.ASSIGNED: lambda: service.assign(operator, incident_id, operator, None),
        IncidentState.IN_PROGRESS: lambda: service.start(
            operator, incident_id, None, may_manage=True
        ),
        IncidentState.RESOLVED: lambda: service.resolve(
            operator, incident_id, "Handled on site.", None, may_manage=True
        ),
        IncidentState.CLOSED: lambda: service.close(operator, incident_id, "", None),
    }
    order = list(steps)
    start = order.index(IncidentState(current)) + 1 if current in order else 0
    for step in order[start : order.index(state) + 1]:
        steps[step]()
