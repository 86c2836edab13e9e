"""Alembic environment: the hub passes its engine connection in ``config.attributes``."""

from __future__ import annotations

from alembic import context

from hub.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - alembic CLI use; the hub always passes a connection
    raise RuntimeError("run migrations through `gridward hub migrate`, which passes the engine")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
