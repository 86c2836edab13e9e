"""Officers on duty with bound glasses at known distances, seeded straight into the tables (the
dispatch and match tests build their hubs' services by hand, without the HTTP API)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Connection

from hub.auth import Role
from hub.schema import devices, latest_positions, officers, users

M_PER_DEG_LAT = 111_195.0


def seed_officers(
    conn: Connection,
    *,
    site: str,
    north_m: Mapping[str, float],
    now: datetime,
    lon: float,
    lat: float,
) -> None:
    """One officer per name, on duty, wearing glasses ``gl-<name>``, last seen ``north_m``
    metres due north of (lon, lat)."""
    for name, metres in north_m.items():
        conn.execute(
            users.insert().values(
                username=name,
                role=Role.OFFICER.value,
                password_hash="!",
                active=True,
                created_at=now,
                display_name=name,
            )
        )
        conn.execute(
            devices.insert().values(
                id=f"gl-{name}", site=site, kind="glasses", name="", status="active", created_at=now
            )
        )
        conn.execute(
            officers.insert().values(
                username=name,
                device=f"gl-{name}",
                on_duty=True,
                since=now,
                updated_at=now,
                updated_by="test",
            )
        )
        conn.execute(
            latest_positions.insert().values(
                site=site,
                entity=name,
                entity_kind="officer",
                device=f"gl-{name}",
                lon=lon,
                lat=lat + metres / M_PER_DEG_LAT,
                ts=now,
            )
        )
