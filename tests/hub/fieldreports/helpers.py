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
    """Move a report's incident as an operator would. The incidents helper's transition API
    is not on this branch; this writes the same columns its service writes."""
    from sqlalchemy import update

    from hub.schema import incidents

    values: dict[str, Any] = {"state": state.value, "updated_at": hub.service.ctx.clock.now()}
    with hub.service.store.engine.begin() as conn:
        conn.execute(
            update(incidents).where(incidents.c.number == incident_number).values(**values)
        )
