"""Human reference numbers (I-000123) from named counters, allocated inside the caller's
transaction: two hub replicas can never hand out the same number."""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from hub.schema import sequences


def next_value(conn: Connection, name: str) -> int:
    bumped = conn.execute(
        update(sequences)
        .where(sequences.c.name == name)
        .values(value=sequences.c.value + 1)
        .returning(sequences.c.value)
    ).scalar()
    if bumped is not None:
        return int(bumped)
    conn.execute(sequences.insert().values(name=name, value=1))
    return 1


def current(conn: Connection, name: str) -> int:
    value = conn.execute(select(sequences.c.value).where(sequences.c.name == name)).scalar()
    return int(value or 0)
