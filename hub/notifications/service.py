"""A user's inbox: list (rendered in the reader's language), count unread, mark read.

Notifications are written by the areas that raise them (hub/incidents/timers.py) through
:func:`hub.notifications.repository.notify`, inside their own transactions. Every read here is
scoped to the caller: another user's notification is reported missing, never forbidden, so
ids cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from hub.audit import AuditTrail
from hub.clock import Clock, SystemClock
from hub.errors import NotFound
from hub.i18n import Language, translate
from hub.notifications import repository

# Params with these names hold ISO 8601 UTC times; shown in the site's zone.
TIME_PARAMS = frozenset({"deadline_at", "due_at"})
MAX_PARAM_CHARS = 500


class NotificationNotFound(NotFound):
    pass


@dataclass(frozen=True, slots=True)
class Rendered:
    row: Any
    text: str


class NotificationService:
    def __init__(
        self, engine: Engine, audit: AuditTrail, zone: ZoneInfo, clock: Clock | None = None
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.zone = zone
        self.clock = clock or SystemClock()

    def page(
        self,
        username: str,
        language: Language,
        *,
        unread: bool = False,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[Rendered]:
        with self.engine.connect() as conn:
            rows = repository.page(conn, username, unread=unread, limit=limit, before_id=before_id)
        return [Rendered(row, self.render(row, language)) for row in rows]

    def unread_count(self, username: str) -> int:
        with self.engine.connect() as conn:
            return repository.unread_count(conn, username)

    def mark_read(self, username: str, notification_id: int, language: Language) -> Rendered:
        with self.engine.connect() as conn:
            if repository.get(conn, username, notification_id) is None:
                raise NotificationNotFound(f"no notification {notification_id}")
        with self.audit.change(username, "notification.read", str(notification_id)) as conn:
            repository.mark_read(conn, username, notification_id, self.clock.now())
            row = repository.get(conn, username, notification_id)
        return Rendered(row, self.render(row, language))

    def render(self, row: Any, language: Language) -> str:
        params = {name: self._param(name, value) for name, value in (row.params or {}).items()}
        try:
            return translate(str(row.message_key), language, **params)
        except KeyError:
            # A key from a newer hub (or a removed one): show the key, never fail the inbox.
            return str(row.message_key)

    def _param(self, name: str, value: Any) -> str:
        if name in TIME_PARAMS and isinstance(value, str):
            try:
                ts = datetime.fromisoformat(value)
            except ValueError:
                return value[:MAX_PARAM_CHARS]
            if ts.tzinfo is not None:
                return ts.astimezone(self.zone).strftime("%Y-%m-%d %H:%M %Z")
        return "" if value is None else str(value)[:MAX_PARAM_CHARS]
