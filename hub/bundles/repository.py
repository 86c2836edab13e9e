"""SQL of watchlist bundles (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, or_, select, update

from hub.schema import bundle_devices, bundle_pushes, bundle_state, bundle_versions, devices

STATE_ID = 1


def lock_state(conn: Connection) -> Any:
    """The hub-wide version row, locked until the caller's transaction ends (PostgreSQL; SQLite
    callers hold the one write lock already)."""
    row = conn.execute(
        select(bundle_state).where(bundle_state.c.id == STATE_ID).with_for_update()
    ).first()
    if row is None:  # the migration inserts it; a hand-emptied table is not worth a race
        raise RuntimeError("bundle_state has no row: run `gridward hub migrate`")
    return row


def read_state(conn: Connection) -> Any:
    return conn.execute(select(bundle_state).where(bundle_state.c.id == STATE_ID)).first()


def issue_version(conn: Connection, values: dict[str, Any], *, model: str, reason: str) -> None:
    conn.execute(
        update(bundle_state)
        .where(bundle_state.c.id == STATE_ID)
        .values(
            version=values["version"],
            digest=values["digest"],
            entries=values["entries"],
            issued_at=values["issued_at"],
            expires_at=values["expires_at"],
            issued_by=values["issued_by"],
        )
    )
    conn.execute(bundle_versions.insert().values(**values, model=model, reason=reason))


def device_row(conn: Connection, device: str) -> Any | None:
    return conn.execute(select(bundle_devices).where(bundle_devices.c.device == device)).first()


def registered_device(conn: Connection, device: str) -> Any | None:
    """The registry's row of ``device`` (site, kind, status), or None."""
    return conn.execute(
        select(devices.c.id, devices.c.site, devices.c.kind, devices.c.status).where(
            devices.c.id == device
        )
    ).first()


def insert_device(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(bundle_devices.insert().values(**values))


def update_device(conn: Connection, device: str, values: dict[str, Any]) -> None:
    conn.execute(update(bundle_devices).where(bundle_devices.c.device == device).values(**values))


def record_reported(conn: Connection, device: str, version: int, now: datetime) -> None:
    conn.execute(
        update(bundle_devices)
        .where(bundle_devices.c.device == device)
        .values(version_reported=version, reported_at=now)
    )


def needing_push(conn: Connection, version: int, kinds: Sequence[str]) -> list[Any]:
    """Active devices with a key whose pushed bundle is older than ``version`` or was sealed
    for another key, minus those ``version`` already failed for with this key."""
    d = bundle_devices
    stmt = (
        select(d)
        .join(devices, devices.c.id == d.c.device)
        .where(
            devices.c.status == "active",
            d.c.kind.in_(list(kinds)),
            d.c.key_b64.is_not(None),
            or_(
                d.c.version_pushed.is_(None),
                d.c.version_pushed < version,
                d.c.pushed_key_b64.is_(None),
                d.c.pushed_key_b64 != d.c.key_b64,
            ),
            or_(
                d.c.failed_version.is_(None),
                d.c.failed_version < version,
                d.c.key_changed_at > d.c.last_error_at,
            ),
        )
        .order_by(d.c.device)
    )
    return list(conn.execute(stmt).all())


def insert_push(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(bundle_pushes.insert().values(**values))


def push_for_reply(conn: Connection, command_id: str) -> Any | None:
    return conn.execute(
        select(bundle_pushes).where(bundle_pushes.c.command_id == command_id)
    ).first()


def answer_push(
    conn: Connection,
    command_id: str,
    device: str,
    *,
    outcome: str,
    reason: str | None,
    now: datetime,
) -> bool:
    """Record the first answer of ``device`` to its push; a replayed Reply matches nothing.
    A part answered ``received`` may be answered once more: refused, when the device drops
    its incomplete set."""
    open_outcomes: list[ColumnElement[bool]] = [bundle_pushes.c.outcome.is_(None)]
    if outcome == "refused":
        open_outcomes.append(bundle_pushes.c.outcome == "received")
    res = conn.execute(
        update(bundle_pushes)
        .where(
            bundle_pushes.c.command_id == command_id,
            bundle_pushes.c.device == device,
            or_(*open_outcomes),
        )
        .values(outcome=outcome, reason=reason, answered_at=now)
    )
    return res.rowcount == 1


def count_part_acked(
    conn: Connection, device: str, set_sha256: str | None, command_id: str
) -> None:
    """One more envelope of the device's current push answered ok (an answer to an older
    sealing counts nothing). A push in one envelope is matched by its command id."""
    d = bundle_devices
    current = d.c.push_set == set_sha256 if set_sha256 else d.c.push_command_id == command_id
    conn.execute(
        update(d)
        .where(d.c.device == device, current)
        .values(parts_acked=func.coalesce(d.c.parts_acked, 0) + 1)
    )


def mark_applied(conn: Connection, device: str, version: int, now: datetime) -> None:
    # Never backwards: a late answer to an older push must not hide a newer applied version.
    d = bundle_devices
    conn.execute(
        update(d)
        .where(
            d.c.device == device, or_(d.c.version_applied.is_(None), d.c.version_applied < version)
        )
        .values(version_applied=version, applied_at=now)
    )


def status_rows(conn: Connection, kinds: Sequence[str]) -> list[Any]:
    """Every active face-matching device with its bundle row (outer join: no key yet too)."""
    d = bundle_devices
    stmt = (
        select(
            devices.c.id.label("device"),
            devices.c.site,
            devices.c.kind,
            d.c.key_b64,
            d.c.key_registered_at,
            d.c.version_pushed,
            d.c.pushed_at,
            d.c.push_entries,
            d.c.version_applied,
            d.c.applied_at,
            d.c.push_parts,
            d.c.parts_acked,
            d.c.version_reported,
            d.c.reported_at,
            d.c.last_error,
            d.c.last_error_at,
        )
        .select_from(devices.outerjoin(d, d.c.device == devices.c.id))
        .where(devices.c.status == "active", devices.c.kind.in_(list(kinds)))
        .order_by(devices.c.id)
    )
    return list(conn.execute(stmt).all())


def versions(conn: Connection, limit: int = 50) -> list[Any]:
    return list(
        conn.execute(
            select(bundle_versions).order_by(bundle_versions.c.version.desc()).limit(limit)
        ).all()
    )
