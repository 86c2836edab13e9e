"""Durable anti-replay counters: the highest accepted advert counter of every band.

A band's counter only goes up, and the verifier refuses anything at or below the highest counter
it has accepted. That memory must survive a crash, not only a clean stop, or an advert captured
before the crash can be replayed after it. The gateway therefore writes the counters a batch of
adverts advanced to this SQLite table (WAL, ``synchronous=FULL``: on disk when ``save`` returns)
*before* anything that batch caused (alerts, positions) leaves the process. A crash can lose the
effects of the last batch, never the record that its counters were used: persist, then act.

One write per batch of adverts keeps the hot path to one fsync however many adverts arrive
together; a batch that advanced no counter (duplicates, junk) writes nothing.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)


class BandCounterStore:
    def __init__(self, path: Path, *, legacy_json: Path | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS band_counters ("
                         " band_id INTEGER PRIMARY KEY, counter INTEGER NOT NULL)")
        self._saved: dict[int, int] = dict(
            self._db.execute("SELECT band_id, counter FROM band_counters").fetchall())
        self.writes = 0
        if legacy_json is not None:
            self._import_legacy(legacy_json)

    def load(self) -> dict[int, int]:
        with self._lock:
            return dict(self._saved)

    def save(self, counters: Mapping[int, int]) -> int:
        """Persist every counter above its stored value; returns how many were written. Only
        returns once they are on disk."""
        with self._lock:
            changed = [(band, c) for band, c in counters.items()
                       if c > self._saved.get(band, -1)]
            if not changed:
                return 0
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # max() in SQL too: two gateway processes must never lower a stored counter.
                self._db.executemany(
                    "INSERT INTO band_counters(band_id, counter) VALUES (?, ?) "
                    "ON CONFLICT(band_id) DO UPDATE SET counter = max(counter, excluded.counter)",
                    changed)
                self._db.execute("COMMIT")
            except sqlite3.Error:
                self._db.execute("ROLLBACK")
                raise
            self._saved.update(changed)
            self.writes += 1
            return len(changed)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _import_legacy(self, path: Path) -> None:
        """Counters an older gateway saved as JSON on clean stops are taken over once."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            counters = {int(k): int(v) for k, v in raw.items()}
        except FileNotFoundError:
            return
        except (OSError, ValueError, AttributeError) as err:
            log.warning("ignoring unreadable legacy band counter file %s: %s", path, err)
            return
        self.save(counters)
        try:
            path.unlink()
        except OSError as err:
            log.warning("legacy band counter file %s not removed: %s", path, err.strerror)
