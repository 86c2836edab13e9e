"""Upgrading a database whose cells were coloured by hand before the warning rules existed:
the colours become overrides (reason and expiry), so the first recompute keeps them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import select, text

from hub.schema import cell_warning_overrides
from hub.store import MIGRATIONS, Store, make_engine
from tests.hub.warnings.conftest import make_warnings, square


def test_hand_set_colours_survive_the_upgrade_as_overrides(site: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/hub.sqlite"
    engine = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0010")
        conn.execute(
            text(
                "INSERT INTO grid_cells (id, site, name, team, geometry, properties, "
                "warning_level, warning_reason, warning_set_by, warning_set_at, updated_at) "
                "VALUES ('old', :site, 'Old', '', :geometry, '{}', 'orange', 'market day', "
                "'cmd', '2026-11-30 10:00:00', '2026-11-30 10:00:00')"
            ),
            {"site": site, "geometry": json.dumps(square(0))},
        )
    engine.dispose()
    Store(url).engine.dispose()  # migrates to head
    w = make_warnings(site, tmp_path)
    try:
        with w.ctx.engine.connect() as conn:
            (override,) = conn.execute(select(cell_warning_overrides)).all()
        assert (override.level, override.reason, override.set_by) == ("orange", "market day", "cmd")
        expires = override.expires_at.replace(tzinfo=UTC)
        assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)
        w.recompute()
        cell = w.ctx.geo.cell("old")
        assert (cell.warning_level, cell.warning_source) == ("orange", "override")
    finally:
        w.service.store.close()
