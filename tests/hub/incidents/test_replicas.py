"""Two hub replicas on one PostgreSQL take alerts of one group at the same moment: exactly one
incident is opened and every alert is linked once (the unique live group key and the retry)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from hub.incidents.alert_rules import StoredAlert
from hub.incidents.service import IncidentService
from hub.schema import incident_alerts, incidents
from hub.store import Store
from tests.hub.incidents.support import T0, add_alert, make_service
from tests.support.postgres import PostgresCluster

SITE = "s1"
ROUNDS = 8
PER_REPLICA = 20


@pytest.mark.postgres
def test_two_replicas_open_one_incident_per_group(postgres: PostgresCluster) -> None:
    url = postgres.new_database()
    stores = [Store(url), Store(url, migrate=False)]
    try:
        replicas = [make_service(s) for s in stores]
        for round_ in range(ROUNDS):
            # A new group each round (another device), raced by both replicas at once.
            device = f"cam-{round_}"
            batches = [
                [
                    add_alert(
                        stores[0].engine,
                        SITE,
                        device=device,
                        ts=T0 + timedelta(seconds=r * PER_REPLICA + i),
                    )
                    for i in range(PER_REPLICA)
                ]
                for r in range(2)
            ]
            # Both replicas also get each other's first alert (a resend after a lost ack).
            batches[0].append(batches[1][0])
            batches[1].append(batches[0][0])
            _race(replicas, batches)
        with stores[0].engine.connect() as conn:
            counts = conn.execute(
                select(incidents.c.title, incidents.c.alert_count).order_by(incidents.c.title)
            ).all()
            linked = conn.execute(select(func.count()).select_from(incident_alerts)).scalar()
        assert len(counts) == ROUNDS, counts
        assert all(c.alert_count == 2 * PER_REPLICA for c in counts), counts
        assert linked == ROUNDS * 2 * PER_REPLICA
        retries = sum(
            r.intake.as_dict().get(k, 0)
            for r in replicas
            for k in ("batch_fallbacks", "group_retries")
        )
        assert all(r.intake.as_dict().get("errors", 0) == 0 for r in replicas)
        # The race is real: at least once a replica had to step back and join.
        assert retries > 0
    finally:
        for s in stores:
            s.close()


def _race(replicas: list[IncidentService], batches: list[list[StoredAlert]]) -> None:
    barrier = threading.Barrier(len(replicas))
    failures: list[Exception] = []

    def run(svc: IncidentService, batch: list[StoredAlert]) -> None:
        barrier.wait()
        try:
            svc.process_alerts(batch)
        except Exception as err:  # noqa: BLE001 - handed to the test thread, which fails on it
            failures.append(err)

    threads = [
        threading.Thread(target=run, args=(svc, batch))
        for svc, batch in zip(replicas, batches, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not failures, failures
