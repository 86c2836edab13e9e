"""The box's notification queue: what the hub sent this officer, kept in SQLite so a reboot of
the glasses loses nothing, bounded so a long outage cannot fill the card.

Only the fields the Notify carried are stored, never its evidence photo (that stays in memory
for the session: a lost pair of glasses must not hold pictures). Ids seen are remembered
beyond eviction so a late retry of an evicted notification is not shown again.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from edge.protocol import Notify, OfficerAnswer

SEEN_PER_ITEM = 10  # remembered ids per queue slot (dedupe window beyond eviction)


@dataclass(frozen=True, slots=True)
class Queued:
    notify: Notify  # without evidence
    received_at: datetime
    stale: bool = False
    answer: OfficerAnswer | None = None
    answered_at: datetime | None = None


def _ts(value: datetime) -> float:
    return value.timestamp()


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


class NotificationQueue:
    """Thread-safe; every method commits before it returns."""

    def __init__(self, path: Path, max_items: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_items = max_items
        self.evicted = 0
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS notes ("
            " id TEXT PRIMARY KEY, payload TEXT NOT NULL, issued REAL NOT NULL,"
            " received REAL NOT NULL,"
            " stale INTEGER NOT NULL DEFAULT 0, answer TEXT, answered REAL)")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, at REAL NOT NULL)")

    def add(self, notify: Notify, received_at: datetime, *, stale: bool) -> bool:
        """Queue a notification; False (nothing changes) when its id was seen before."""
        stripped = notify.model_copy(update={"evidence": None})
        with self._lock:
            if self._db.execute("SELECT 1 FROM seen WHERE id=?", (notify.id,)).fetchone():
                return False
            self._db.execute("BEGIN")
            self._db.execute("INSERT INTO seen(id, at) VALUES (?,?)",
                             (notify.id, _ts(received_at)))
            self._db.execute(
                "INSERT INTO notes(id, payload, issued, received, stale) VALUES (?,?,?,?,?)",
                (notify.id, stripped.model_dump_json(exclude_none=True), _ts(notify.ts),
                 _ts(received_at), int(stale)))
            self._evict()
            self._db.execute("COMMIT")
        return True

    def _evict(self) -> None:
        (count,) = self._db.execute("SELECT count(*) FROM notes").fetchone()
        excess = count - self.max_items
        if excess > 0:
            # Answered ones first (the officer has dealt with them), then the oldest.
            self._db.execute(
                "DELETE FROM notes WHERE id IN (SELECT id FROM notes"
                " ORDER BY answer IS NULL, received LIMIT ?)", (excess,))
            self.evicted += excess
        self._db.execute(
            "DELETE FROM seen WHERE id NOT IN (SELECT id FROM seen ORDER BY at DESC LIMIT ?)",
            (self.max_items * SEEN_PER_ITEM,))

    def items(self) -> list[Queued]:
        with self._lock:
            rows = self._db.execute(
                "SELECT payload, received, stale, answer, answered FROM notes ORDER BY received"
            ).fetchall()
        return [Queued(Notify.model_validate_json(payload), _dt(received), bool(stale),
                       OfficerAnswer(answer) if answer else None,
                       _dt(answered) if answered is not None else None)
                for payload, received, stale, answer, answered in rows]

    def get(self, notify_id: str) -> Queued | None:
        return next((q for q in self.items() if q.notify.id == notify_id), None)

    def set_answer(self, notify_id: str, answer: OfficerAnswer, at: datetime) -> bool:
        with self._lock:
            cur = self._db.execute("UPDATE notes SET answer=?, answered=? WHERE id=?",
                                   (answer.value, _ts(at), notify_id))
        return cur.rowcount == 1

    def withdraw(self, notify_id: str, at: datetime) -> bool:
        """Drop a notification the hub took back; True when it was queued. Its id is
        remembered as seen, so the notification itself, should it arrive after the
        withdrawal (an outage reorders retries), is never shown."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("INSERT OR IGNORE INTO seen(id, at) VALUES (?,?)",
                             (notify_id, _ts(at)))
            cur = self._db.execute("DELETE FROM notes WHERE id=?", (notify_id,))
            self._db.execute("COMMIT")
        return cur.rowcount == 1

    def mark_stale(self, issued_before: datetime) -> int:
        """Mark every notification the hub sent before ``issued_before``; returns how many
        became stale now."""
        with self._lock:
            cur = self._db.execute("UPDATE notes SET stale=1 WHERE stale=0 AND issued < ?",
                                   (_ts(issued_before),))
        return cur.rowcount

    def forget(self, received_before: datetime) -> int:
        with self._lock:
            cur = self._db.execute("DELETE FROM notes WHERE received < ?",
                                   (_ts(received_before),))
        return cur.rowcount

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT count(*) FROM notes").fetchone()
        return int(count)

    def close(self) -> None:
        with self._lock:
            self._db.close()

