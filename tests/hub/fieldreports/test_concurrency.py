"""Parallel resends of one report (a phone retrying on a flaky link): stored once, on SQLite
through the real hub and on PostgreSQL through the service (the unique index decides there)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from hub.audit import AuditTrail
from hub.auth import Role
from hub.fieldreports.config import FieldReportsConfig
from hub.fieldreports.service import BadReport, FieldReportService, ReportIdReused, ReportInput
from hub.incidents.config import IncidentsConfig
from hub.incidents.service import IncidentService
from hub.schema import field_reports, incidents
from hub.store import Store
from tests.hub.conftest import RunningHub
from tests.hub.fieldreports.helpers import report_json, send
from tests.hub.fieldreports.photos import jpeg_with_exif
from tests.support.postgres import PostgresCluster


def _counts(store_engine: object) -> tuple[int, int]:
    with store_engine.connect() as conn:  # type: ignore[attr-defined]
        reports = conn.execute(select(func.count()).select_from(field_reports)).scalar_one()
        opened = conn.execute(select(func.count()).select_from(incidents)).scalar_one()
    return int(reports), int(opened)


def test_parallel_resends_over_http_store_one(hub: RunningHub) -> None:
    report = report_json(category="garbage")
    photo = jpeg_with_exif()
    clients = [hub.client(Role.WORKER) for _ in range(3)]
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda c: send(c, report, [photo]), clients))
    assert sorted(a.status_code for a in answers) == [200, 200, 201]
    assert len({a.json()["number"] for a in answers}) == 1
    assert _counts(hub.service.store.engine) == (1, 1)


def _service(store: Store) -> FieldReportService:
    audit = AuditTrail(store.engine)
    vocabulary = IncidentsConfig()
    return FieldReportService(
        store.engine,
        audit,
        config=FieldReportsConfig(),
        vocabulary=vocabulary,
        incidents=IncidentService(store.engine, audit, vocabulary),
        site="pg-site",
    )


@pytest.mark.postgres
def test_parallel_resends_on_postgresql_store_one(postgres: PostgresCluster) -> None:
    store = Store(postgres.new_database())
    try:
        service = _service(store)
        report = ReportInput(
            description="Streetlight out on Ring Road",
            client_report_id=str(uuid.uuid4()),
            category="streetlight",
            lon=114.05,
            lat=22.54,
            photos=[jpeg_with_exif()],
        )
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: service.submit("pg-worker", report), range(8)))
        assert [r.created for r in results].count(True) == 1
        assert len({r.report.number for r in results}) == 1
        assert _counts(store.engine) == (1, 1)
        changed = ReportInput(description="Another text", client_report_id=report.client_report_id)
        with pytest.raises(ReportIdReused):
            service.submit("pg-worker", changed)
        # NUL and the like are refused before PostgreSQL would (it refuses NUL in text).
        with pytest.raises(BadReport, match="control characters"):
            service.submit("pg-worker", ReportInput(description="a\x00b"))
    finally:
        store.close()
