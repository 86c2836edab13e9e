"""Labels of watchlist entries for the review queue, read through the watchlists area.

``hub.watchlists.repository.entry_summaries`` (issue 15, the watchlists area) owns the entry
table. Until that area is merged on this branch, the lookup returns nothing and the review
page shows the entry id alone; once it is there, this module uses it unchanged.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection


@dataclass(frozen=True, slots=True)
class EntryLabel:
    label: str | None
    category: str | None


def _summaries_function() -> Any | None:
    try:
        module = importlib.import_module("hub.watchlists.repository")
    except ImportError:
        return None
    return getattr(module, "entry_summaries", None)


def entry_labels(conn: Connection, ids: Collection[str]) -> dict[str, EntryLabel]:
    """entry id -> its label and category (entries the watchlists area does not know: absent)."""
    summaries = _summaries_function()
    if summaries is None or not ids:
        return {}
    found = summaries(conn, sorted(set(ids)))
    out = {}
    for entry_id, summary in dict(found).items():
        out[str(entry_id)] = EntryLabel(
            label=_text(getattr(summary, "label", None)),
            category=_text(getattr(summary, "category", None)),
        )
    return out


def _text(value: object) -> str | None:
    if value is None or isinstance(value, datetime):
        return None
    return str(value)
