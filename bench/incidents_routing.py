"""Incident routing decisions per second, and alerts turned into grouped incidents per second.

    .venv/bin/python bench/incidents_routing.py [--decisions 20000] [--alerts 4000]

Routing: the real :class:`~hub.incidents.routing.Router` with a realistic rule set (30 rules
over categories, levels, cell lists drawn from 1,000 cells, areas, hours that wrap midnight,
weekdays; line rules resolved through a cell -> department table of 1,000 cells), on queries
that spread over the categories, levels, cells and a week of times. Baseline in the same run:
the same queries through a router holding only the default rule. Then the same rule set inside
the service (``route_in`` on a SQLite connection: the cell lookup is a real query).

Alert intake: alerts stored by the real :class:`~hub.store.Store` in ingest batches of 50 on
SQLite (the baseline: plain ingest), then the same number of alerts stored and run through the
alert rules (``IncidentService.process_alerts``), from 20 devices (20 groups: about 2.5 alerts per
group per batch, the costly case), then from one device (one group: a burst), so that
nearly every alert joins an open incident.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.protocol import (
    Alert,
    AlertKind,
    Location,
    Severity,
    decode_device_message,
    device_topic,
    encode,
)
from hub.audit import AuditTrail
from hub.clock import ManualClock
from hub.incidents.alert_rules import stored_alerts
from hub.incidents.config import IncidentsConfig
from hub.incidents.model import IncidentLevel
from hub.incidents.routing import RouteQuery, Router
from hub.incidents.service import IncidentService
from hub.schema import cell_departments, departments, grid_cells
from hub.store import Store

ZONE = ZoneInfo("Asia/Shanghai")
N_CELLS = 1000
SITE = "bench"
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _square(i: int) -> dict[str, Any]:
    lon, lat = 114.0 + (i % 40) * 0.01, 22.4 + (i // 40) * 0.01
    ring = [[lon, lat], [lon + 0.01, lat], [lon + 0.01, lat + 0.01], [lon, lat + 0.01], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def rule_set(vocabulary: IncidentsConfig, rng: random.Random) -> IncidentsConfig:
    cats = [c.id for c in vocabulary.categories]
    lines = vocabulary.line_ids()
    levels = [level.value for level in IncidentLevel]
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    rules: list[dict[str, Any]] = []
    for i in range(29):
        when: dict[str, Any] = {}
        kind = i % 6
        if kind == 0:
            when["categories"] = rng.sample(cats, 3)
        elif kind == 1:
            when["categories"] = rng.sample(cats, 2)
            when["min_level"] = rng.choice(levels[1:])
        elif kind == 2:
            when["cells"] = [f"c{j}" for j in rng.sample(range(N_CELLS), 50)]
            when["levels"] = rng.sample(levels, 2)
        elif kind == 3:
            when["area"] = _square(rng.randrange(N_CELLS))
        elif kind == 4:
            start = rng.randrange(24)
            when["hours"] = {"from": f"{start:02d}:00", "to": f"{(start + 7) % 24:02d}:30"}
            when["categories"] = rng.sample(cats, 4)
        else:
            when["days"] = rng.sample(days, 2)
            when["categories"] = rng.sample(cats, 3)
        target = {"line": rng.choice(lines)} if i % 3 == 0 else {"department": f"d{i}"}
        rules.append({"name": f"r{i}", "when": when, **target})
    rules.append({"name": "default", "line": lines[0]})
    return IncidentsConfig.model_validate({"routing": rules})


def queries(config: IncidentsConfig, n: int, rng: random.Random) -> list[RouteQuery]:
    cats = [c.id for c in config.categories]
    out = []
    for _ in range(n):
        cell = rng.randrange(N_CELLS)
        lon = 114.0 + (cell % 40) * 0.01 + 0.005
        lat = 22.4 + (cell // 40) * 0.01 + 0.005
        at = T0 + timedelta(minutes=rng.randrange(7 * 24 * 60))
        level = rng.choice(list(IncidentLevel))
        out.append(RouteQuery(rng.choice(cats), level, at, f"c{cell}", lon, lat))
    return out


def cell_table(config: IncidentsConfig) -> dict[tuple[str, str], str]:
    lines = config.line_ids()
    # Three in four cells name a department for each line; the rest fall through.
    return {
        (f"c{i}", line): f"{line}-{i % 17}"
        for i in range(N_CELLS)
        for line in lines
        if (i + len(line)) % 4
    }


def routing_rate(router: Router, qs: list[RouteQuery], table: dict[tuple[str, str], str]) -> float:
    def lookup(cell: str, line: str) -> str | None:
        return table.get((cell, line))

    t0 = time.perf_counter()
    for q in qs:
        router.route(q, lookup)
    return len(qs) / (time.perf_counter() - t0)


def seed_cells(store: Store, config: IncidentsConfig) -> None:
    now = datetime.now(UTC)
    table = cell_table(config)
    with store.engine.begin() as conn:
        conn.execute(
            departments.insert(),
            [
                {"id": d, "name": d, "line": d.rsplit("-", 1)[0], "updated_at": now}
                for d in sorted(set(table.values()))
            ],
        )
        conn.execute(
            grid_cells.insert(),
            [
                {
                    "id": f"c{i}",
                    "site": SITE,
                    "name": f"cell {i}",
                    "geometry": _square(i),
                    "properties": {},
                    "updated_at": now,
                }
                for i in range(N_CELLS)
            ],
        )
        conn.execute(
            cell_departments.insert(),
            [{"cell_id": c, "line": line, "department_id": d} for (c, line), d in table.items()],
        )


def service_rate(svc: IncidentService, qs: list[RouteQuery]) -> float:
    with svc.engine.connect() as conn:
        t0 = time.perf_counter()
        for q in qs:
            svc.route_in(conn, q)
        return len(qs) / (time.perf_counter() - t0)


def alert_batches(n: int, per_batch: int, devices: int) -> list[list[Any]]:
    batches = []
    for start in range(0, n, per_batch):
        batch = []
        for i in range(start, min(n, start + per_batch)):
            device = f"cam-{i % devices}"
            alert = Alert(
                site=SITE,
                device=device,
                kind=AlertKind.INTRUSION,
                severity=Severity.HIGH,
                location=Location(lon=114.005 + (i % devices) * 0.01, lat=22.405),
                ts=datetime.now(UTC),
            )
            topic = device_topic(SITE, "camera", device, "alert")
            batch.append(decode_device_message(topic, encode(alert)))
        batches.append(batch)
    return batches


def intake_rate(url: str, config: IncidentsConfig, batches: list[list[Any]], rules: bool) -> float:
    store = Store(url)
    try:
        seed_cells(store, config)
        svc = IncidentService(
            store.engine, AuditTrail(store.engine), config, ManualClock(T0), zone=ZONE
        )
        n = sum(len(b) for b in batches)
        t0 = time.perf_counter()
        for batch in batches:
            result = store.write_batch(batch)
            if rules:
                svc.process_alerts(stored_alerts(batch, result.new_alert_ids))
        rate = n / (time.perf_counter() - t0)
        if rules:
            assert svc.intake.as_dict().get("alerts_linked") == n, svc.intake.as_dict()
        return rate
    finally:
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--alerts", type=int, default=4_000)
    parser.add_argument("--per-batch", type=int, default=50)
    args = parser.parse_args()
    rng = random.Random(12)
    config = rule_set(IncidentsConfig(), rng)
    qs = queries(config, args.decisions, rng)
    table = cell_table(config)
    baseline_cfg = IncidentsConfig.model_validate(
        {"routing": [{"name": "default", "line": "sanitation"}]}
    )
    base = routing_rate(Router(baseline_cfg.routing, ZONE), qs, table)
    full = routing_rate(Router(config.routing, ZONE), qs, table)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/route.sqlite")
        try:
            seed_cells(store, config)
            svc = IncidentService(store.engine, AuditTrail(store.engine), config, zone=ZONE)
            in_db = service_rate(svc, qs[: max(1, args.decisions // 4)])
        finally:
            store.close()
        batches = alert_batches(args.alerts, args.per_batch, devices=20)
        plain = intake_rate(f"sqlite:///{tmp}/plain.sqlite", config, batches, rules=False)
        grouped = intake_rate(f"sqlite:///{tmp}/grouped.sqlite", config, batches, rules=True)
        burst = alert_batches(args.alerts, args.per_batch, devices=1)
        plain1 = intake_rate(f"sqlite:///{tmp}/plain1.sqlite", config, burst, rules=False)
        grouped1 = intake_rate(f"sqlite:///{tmp}/grouped1.sqlite", config, burst, rules=True)
    print(
        f"routing rules            {len(config.routing)} rules, {N_CELLS} cells, {len(qs)} queries"
    )
    print(f"one default rule (base)  {base:10.0f} decisions/s")
    print(f"30 rules                 {full:10.0f} decisions/s   ratio {full / base:.2f}")
    print(f"30 rules, SQLite lookups {in_db:10.0f} decisions/s   ratio {in_db / base:.3f}")
    print(f"alerts                   {args.alerts} in batches of {args.per_batch}, 20 groups")
    print(f"plain ingest (base)      {plain:10.0f} alerts/s stored")
    print(
        f"ingest + alert rules     {grouped:10.0f} alerts/s stored and grouped   "
        f"ratio {grouped / plain:.2f}"
    )
    print("one device's burst       (1 group)")
    print(f"plain ingest (base)      {plain1:10.0f} alerts/s stored")
    print(
        f"ingest + alert rules     {grouped1:10.0f} alerts/s stored and grouped   "
        f"ratio {grouped1 / plain1:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
