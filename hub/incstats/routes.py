"""Incident reports over HTTP: statistics (JSON, CSV), the printable summary page and the
incident exports (CSV, GeoJSON). Permission ``incidents:stats`` everywhere."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from pydantic import AfterValidator, BaseModel, Field

from edge.validators import SEGMENT_PATTERN
from hub.api.deps import Ctx, guarded
from hub.api.models import UtcDateTime
from hub.auth import Permission
from hub.context import HubContext
from hub.i18n import Language
from hub.incidents.model import IncidentState
from hub.incstats.repository import DIMENSIONS, Dimension, IncidentFilter
from hub.incstats.service import Durations, IncidentStats, StatsRow
from hub.incstats.summary import Summary, render

router = APIRouter(prefix="/api/v1", tags=["incident reports"])
STATIC = Path(__file__).parent / "static"
SiteQuery = Annotated[str | None, Query(pattern=SEGMENT_PATTERN)]
IdQuery = Annotated[str | None, Query(pattern=SEGMENT_PATTERN)]
CategoryQuery = Annotated[str | None, Query(pattern=SEGMENT_PATTERN)]


def _aware(value: datetime) -> datetime:
    # A window bound without a zone is ambiguous (site time? UTC?): refused. Any year is a
    # valid bound; it is only compared.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("give the time with a zone, e.g. '2026-12-01T00:00:00Z'")
    try:
        return value.astimezone(UTC)
    except OverflowError as err:  # 0001-01-01T00:00+01:00 has no UTC equivalent
        raise ValueError("the time is out of range") from err


UtcDatetime = Annotated[datetime, AfterValidator(_aware)]
SinceQuery = Annotated[
    UtcDatetime | None, Query(description="created at or after (ISO 8601 with a zone)")
]
UntilQuery = Annotated[UtcDatetime | None, Query(description="created before (exclusive)")]
ByQuery = Annotated[Dimension, Query(description="group by cell, department, category or worker")]
LangQuery = Annotated[Language, Query(description="language of names and of the page")]
StateQuery = Annotated[list[IncidentState] | None, Query(max_length=5)]


class DurationStats(BaseModel):
    median_s: float | None
    mean_s: float | None
    p90_s: float | None


class StatsItem(BaseModel):
    key: str | None = Field(description="the cell, department, category or username; None: none")
    name: str
    opened: int = Field(description="incidents created in the window (open + resolved + closed)")
    open: int
    resolved: int
    closed: int
    overdue: int = Field(description="open and past their deadline now")
    reported: int | None = Field(description="by=worker: field reports they filed")
    assigned: int | None = Field(description="by=worker: incidents assigned to them")
    time_to_resolve: DurationStats
    time_to_close: DurationStats


class StatsPage(BaseModel):
    by: Dimension
    site: str | None
    since: UtcDateTime | None
    until: UtcDateTime | None
    generated_at: UtcDateTime
    items: list[StatsItem]


def _durations(d: Durations) -> DurationStats:
    return DurationStats(median_s=d.median_s, mean_s=d.mean_s, p90_s=d.p90_s)


def _item(row: StatsRow) -> StatsItem:
    return StatsItem(
        key=row.key,
        name=row.name,
        opened=row.opened,
        open=row.open,
        resolved=row.resolved,
        closed=row.closed,
        overdue=row.overdue,
        reported=row.reported,
        assigned=row.assigned,
        time_to_resolve=_durations(row.to_resolve),
        time_to_close=_durations(row.to_close),
    )


def _stats(ctx: HubContext) -> IncidentStats:
    return IncidentStats(ctx.engine, ctx.config, ctx.clock)


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}


@router.get("/incident-stats", response_model=StatsPage, **guarded(Permission.INCIDENT_STATS_READ))
def incident_stats(
    ctx: Ctx,
    by: ByQuery = "category",
    since: SinceQuery = None,
    until: UntilQuery = None,
    site: SiteQuery = None,
    lang: LangQuery = "en",
) -> StatsPage:
    """Counts, overdue and times to resolve/close (seconds) per key, most incidents first."""
    stats = _stats(ctx)
    rows = stats.rows(by, IncidentFilter(site=site, since=since, until=until), lang)
    return StatsPage(
        by=by,
        site=site,
        since=since,
        until=until,
        generated_at=stats.clock.now(),
        items=[_item(r) for r in rows],
    )


@router.get(
    "/incident-stats.csv",
    response_class=Response,
    **guarded(Permission.INCIDENT_STATS_READ, {200: {"content": {"text/csv": {}}}}),
)
def incident_stats_csv(
    ctx: Ctx,
    by: ByQuery = "category",
    since: SinceQuery = None,
    until: UntilQuery = None,
    site: SiteQuery = None,
    lang: LangQuery = "en",
) -> Response:
    """The statistics as CSV (formula-safe); durations in seconds."""
    text = _stats(ctx).rows_csv(by, IncidentFilter(site=site, since=since, until=until), lang)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers=_attachment(f"incident-stats-{by}.csv"),
    )


@router.get(
    "/incident-stats/summary.html",
    response_class=HTMLResponse,
    **guarded(Permission.INCIDENT_STATS_READ, {200: {"content": {"text/html": {}}}}),
)
def summary_page(
    ctx: Ctx,
    since: SinceQuery = None,
    until: UntilQuery = None,
    site: SiteQuery = None,
    lang: LangQuery = "en",
) -> HTMLResponse:
    """A printable summary: one table per cell, department, category and grid worker."""
    stats = _stats(ctx)
    f = IncidentFilter(site=site, since=since, until=until)
    summary = Summary(
        lang=lang,
        zone=ctx.config.zone(),
        generated_at=stats.clock.now(),
        site=site,
        since=since,
        until=until,
        total=stats.count(f),
        tables=[(by, stats.rows(by, f, lang)) for by in DIMENSIONS],
    )
    return HTMLResponse(render(summary), headers={"Cache-Control": "no-store"})


@router.get(
    "/incident-stats/summary.css",
    response_class=FileResponse,
    **guarded(Permission.INCIDENT_STATS_READ, {200: {"content": {"text/css": {}}}}),
)
def summary_css() -> FileResponse:
    return FileResponse(STATIC / "summary.css", media_type="text/css")


def _export_filter(
    site: str | None,
    state: list[IncidentState] | None,
    since: datetime | None,
    until: datetime | None,
    cell: str | None,
    department: str | None,
    category: str | None,
) -> IncidentFilter:
    return IncidentFilter(
        site=site,
        since=since,
        until=until,
        states=[s.value for s in state] if state else None,
        cell=cell,
        department=department,
        category=category,
    )


@router.get(
    "/incidents/export.csv",
    response_class=StreamingResponse,
    **guarded(Permission.INCIDENT_STATS_READ, {200: {"content": {"text/csv": {}}}}),
)
def export_csv(
    ctx: Ctx,
    site: SiteQuery = None,
    state: StateQuery = None,
    since: SinceQuery = None,
    until: UntilQuery = None,
    cell: IdQuery = None,
    department: IdQuery = None,
    category: CategoryQuery = None,
) -> StreamingResponse:
    """Incidents as CSV, oldest first, streamed; text cells formula-safe."""
    f = _export_filter(site, state, since, until, cell, department, category)
    return StreamingResponse(
        _stats(ctx).export_csv(f),
        media_type="text/csv; charset=utf-8",
        headers=_attachment("incidents.csv"),
    )


@router.get(
    "/incidents/export.geojson",
    response_class=StreamingResponse,
    **guarded(Permission.INCIDENT_STATS_READ, {200: {"content": {"application/geo+json": {}}}}),
)
def export_geojson(
    ctx: Ctx,
    site: SiteQuery = None,
    state: StateQuery = None,
    since: SinceQuery = None,
    until: UntilQuery = None,
    cell: IdQuery = None,
    department: IdQuery = None,
    category: CategoryQuery = None,
) -> StreamingResponse:
    """Incidents as a GeoJSON FeatureCollection, streamed; an incident with no location has
    ``"geometry": null``."""
    f = _export_filter(site, state, since, until, cell, department, category)
    return StreamingResponse(
        _stats(ctx).export_geojson(f),
        media_type="application/geo+json",
        headers=_attachment("incidents.geojson"),
    )
