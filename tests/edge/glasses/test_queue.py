"""The box's notification queue: dedupe, bound, staleness, restart, no photos on disk."""

from __future__ import annotations

import base64
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

from edge.glasses.queue import NotificationQueue
from edge.protocol import Evidence, OfficerAnswer
from edge.validators import utcnow
from tests.edge.glasses.support import notify

SITE, DEVICE = "s1", "g1"
JPEG = b"\xff\xd8\xff\xe0" + b"secret-face-pixels" * 50 + b"\xff\xd9"


def test_dedupe_survives_eviction_and_restart(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    queue = NotificationQueue(path, max_items=2)
    now = utcnow()
    notes = [notify(SITE, DEVICE) for _ in range(3)]
    assert all(queue.add(n, now + timedelta(seconds=i), stale=False)
               for i, n in enumerate(notes))
    assert [q.notify.id for q in queue.items()] == [notes[1].id, notes[2].id]
    assert queue.evicted == 1
    assert not queue.add(notes[0], now, stale=False)  # evicted, but a late retry is not news
    queue.close()
    queue = NotificationQueue(path, max_items=2)
    try:
        assert not queue.add(notes[2], now, stale=False)
        assert len(queue) == 2
    finally:
        queue.close()


def test_answered_items_are_evicted_before_unanswered_ones(tmp_path: Path) -> None:
    queue = NotificationQueue(tmp_path / "q.sqlite", max_items=2)
    try:
        now = utcnow()
        old, answered, new = (notify(SITE, DEVICE) for _ in range(3))
        queue.add(old, now, stale=False)
        queue.add(answered, now + timedelta(seconds=1), stale=False)
        assert queue.set_answer(answered.id, OfficerAnswer.ARRIVED, now)
        queue.add(new, now + timedelta(seconds=2), stale=False)
        assert {q.notify.id for q in queue.items()} == {old.id, new.id}
        assert not queue.set_answer(answered.id, OfficerAnswer.ARRIVED, now)
    finally:
        queue.close()


def test_stale_marking_by_issue_time_and_forgetting_by_receipt(tmp_path: Path) -> None:
    queue = NotificationQueue(tmp_path / "q.sqlite", max_items=10)
    try:
        now = utcnow()
        early = notify(SITE, DEVICE, ts=now - timedelta(seconds=100))
        late = notify(SITE, DEVICE, ts=now)
        queue.add(early, now, stale=False)
        queue.add(late, now + timedelta(seconds=5), stale=False)
        assert queue.mark_stale(now - timedelta(seconds=50)) == 1
        assert queue.mark_stale(now - timedelta(seconds=50)) == 0  # counted once
        assert {q.notify.id: q.stale for q in queue.items()} == {early.id: True, late.id: False}
        assert queue.forget(now + timedelta(seconds=1)) == 1
        assert [q.notify.id for q in queue.items()] == [late.id]
    finally:
        queue.close()


def test_the_evidence_photo_never_reaches_the_disk(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    queue = NotificationQueue(path, max_items=10)
    note = notify(SITE, DEVICE, evidence=Evidence.from_jpeg(JPEG))
    queue.add(note, utcnow(), stale=False)
    (item,) = queue.items()
    assert item.notify.evidence is None and item.notify.title == note.title
    queue.close()
    encoded = base64.b64encode(JPEG)
    for file in tmp_path.iterdir():  # the database, its WAL and shared memory
        data = file.read_bytes()
        assert encoded[:64] not in data and b"secret-face-pixels" not in data
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT count(*) FROM notes").fetchone() == (1,)
