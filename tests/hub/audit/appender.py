"""A separate process appending audited changes to a shared SQLite file (used by
test_service.py: the CLI and the hub are separate processes on one database)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from edge.validators import utcnow
from hub.audit import AuditPaths, AuditSettings, AuditTrail
from hub.schema import pois
from hub.store import Store
from tests.hub.audit.conftest import audit_config


def main() -> int:
    db_url, audit_dir, go_file, count, name = sys.argv[1:]
    store = Store(db_url, migrate=False)
    config = audit_config(Path(audit_dir), every_records=20)
    trail = AuditTrail(store.engine, AuditSettings.open(config, AuditPaths.resolve(config, db_url)))
    deadline = time.monotonic() + 60
    while not Path(go_file).exists():  # start together with the other process
        if time.monotonic() > deadline:
            return 3
        time.sleep(0.005)
    for i in range(int(count)):
        if i % 2:
            with trail.change(name, "poi.put", f"{name}-{i}") as conn:
                conn.execute(pois.insert().values(**poi_row(f"{name}-{i}")))
        else:
            trail.record(name, "poi.view", f"{name}-{i}")
    store.close()
    return 0


def poi_row(poi_id: str) -> dict[str, object]:
    return {
        "id": poi_id,
        "site": "s",
        "name": poi_id,
        "category": "supplies",
        "lon": 116.4,
        "lat": 39.9,
        "properties": {},
        "updated_at": utcnow(),
    }


if __name__ == "__main__":
    sys.exit(main())
