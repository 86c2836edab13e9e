"""Shared builders for the organisation tests: cells, departments and teams through the API."""

from __future__ import annotations

from typing import Any

import httpx

from tests.hub.conftest import RunningHub

SQUARE = [[114.05, 22.54], [114.06, 22.54], [114.06, 22.55], [114.05, 22.55], [114.05, 22.54]]


def ring(x: float, y: float, size: float = 0.001) -> list[list[float]]:
    """A closed square ring with its south-west corner at (x, y)."""
    return [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]


def put_cell(client: httpx.Client, hub: RunningHub, cell_id: str, **props: Any) -> None:
    body = {
        "type": "Feature",
        "id": cell_id,
        "geometry": {"type": "Polygon", "coordinates": [SQUARE]},
        "properties": {"site": hub.site, "name": cell_id.upper(), **props},
    }
    res = client.put(f"/api/v1/grid-cells/{cell_id}", json=body)
    assert res.status_code == 200, res.text


def department(
    client: httpx.Client, dep_id: str, line: str = "sanitation", **extra: Any
) -> dict[str, Any]:
    res = client.post(
        "/api/v1/departments",
        json={"id": dep_id, "name": f"{dep_id} office", "line": line, **extra},
    )
    assert res.status_code == 201, res.text
    return dict(res.json())


def team(client: httpx.Client, hub: RunningHub, team_id: str, **extra: Any) -> dict[str, Any]:
    body = {
        "id": team_id,
        "site": hub.site,
        "name": f"Team {team_id}",
        "members": [f"{hub.site}-worker", f"{hub.site}-officer"],
        "leader": f"{hub.site}-worker",
        **extra,
    }
    res = client.post("/api/v1/teams", json=body)
    assert res.status_code == 201, res.text
    return dict(res.json())
