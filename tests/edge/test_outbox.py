"""The durable outbox on its own: nothing acknowledged is kept, nothing unacknowledged is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.outbox import Outbox, OutboxFullError


def test_put_due_ack(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    for i in range(5):
        box.put(f"id{i}", "t", f"p{i}".encode())
    box.put("id0", "t", b"again")  # same id: stored once
    assert box.depth() == 5
    due = box.due(sent_before=0, limit=3)
    assert [d.id for d in due] == ["id0", "id1", "id2"]
    assert due[0].payload == b"p0"
    box.mark_sent([d.id for d in due], when=100.0)
    assert [d.id for d in box.due(sent_before=50.0, limit=10)] == ["id3", "id4"]
    assert len(box.due(sent_before=101.0, limit=10)) == 5  # overdue acks are resent
    assert box.ack(["id0", "id1", "nope"]) == 2
    assert box.depth() == 3
    box.close()


def test_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box = Outbox(path)
    box.put("a", "t", b"1")
    box.put("b", "t", b"2")
    box.ack(["a"])
    box.close()
    again = Outbox(path)
    assert again.depth() == 1
    assert [i.id for i in again.due(0, 10)] == ["b"]
    again.close()


def test_full_outbox_refuses_loudly(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", max_items=2)
    box.put("a", "t", b"1")
    box.put("b", "t", b"2")
    with pytest.raises(OutboxFullError, match="max_items=2"):
        box.put("c", "t", b"3")
    box.ack(["a"])
    box.put("c", "t", b"3")
    assert box.depth() == 2
    box.close()
