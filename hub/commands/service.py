"""Reading the command outbox (the API's view of what was sent to devices and what came back)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from hub.commands import repository
from hub.errors import Invalid, NotFound


@dataclass(frozen=True, slots=True)
class Command:
    id: str
    site: str
    device: str
    channel: str
    qos: int
    retain: bool
    state: str
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    created_by: str
    sent_at: datetime | None
    answered_at: datetime | None
    answer_ok: bool | None
    answer_error: str | None
    last_error: str | None
    size_bytes: int

    @classmethod
    def from_row(cls, row: Any) -> Command:
        open_ = row.state in repository.OPEN_STATES
        return cls(
            id=row.id,
            site=row.site,
            device=row.device,
            channel=row.channel,
            qos=row.qos,
            retain=row.retain,
            state=row.state,
            attempts=row.attempts,
            next_attempt_at=_aware(row.next_attempt_at) if open_ else None,
            created_at=_aware(row.created_at),
            created_by=row.created_by,
            sent_at=_aware(row.sent_at),
            answered_at=_aware(row.answered_at),
            answer_ok=row.answer_ok,
            answer_error=row.answer_error,
            last_error=row.last_error,
            size_bytes=len(row.payload),
        )


def _aware(ts: datetime | None) -> Any:
    """SQLite hands back naive datetimes; the hub only ever writes UTC."""
    if ts is None:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


class CommandService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, command_id: str) -> Command:
        with self.engine.connect() as conn:
            row = repository.get(conn, command_id)
        if row is None:
            raise NotFound(f"no command {command_id!r}")
        return Command.from_row(row)

    def find(self, command_id: str) -> Command | None:
        with self.engine.connect() as conn:
            row = repository.get(conn, command_id)
        return Command.from_row(row) if row is not None else None

    def page(
        self, *, limit: int, after: str | None, device: str | None, state: str | None
    ) -> list[Command]:
        if state is not None and state not in repository.STATES:
            raise Invalid(f"state must be one of {', '.join(repository.STATES)}")
        with self.engine.connect() as conn:
            rows = repository.page(conn, limit=limit, after=after, device=device, state=state)
        return [Command.from_row(r) for r in rows]
