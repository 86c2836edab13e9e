"""Position queries and their rules (history needs a filter; cursors are checked)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from hub.alerts.repository import BBox
from hub.errors import Invalid
from hub.positions import repository

BAD_CURSOR = "cursor is not one this API issued: pass next_cursor as is"


class PositionService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def latest(
        self,
        *,
        limit: int,
        after: list[str] | None,
        site: str | None,
        bbox: BBox | None,
        entity_kind: str | None,
        since: datetime | None,
    ) -> list[Any]:
        key = (after[0], after[-1]) if after else None
        with self.engine.connect() as conn:
            return repository.latest_page(
                conn,
                limit=limit,
                after=key,
                site=site,
                bbox=bbox,
                entity_kind=entity_kind,
                since=since,
            )

    def history(
        self,
        *,
        limit: int,
        after: tuple[datetime, int] | None,
        entity: str | None,
        site: str | None,
        bbox: BBox | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[Any]:
        if entity is None and bbox is None and since is None:
            raise Invalid("give entity, bbox or since: the full history is too large")
        with self.engine.connect() as conn:
            return repository.history_page(
                conn,
                limit=limit,
                after=after,
                entity=entity,
                site=site,
                bbox=bbox,
                since=since,
                until=until,
            )
