"""Cell warnings over HTTP: why a cell has its colour, its history, the manual override, and
the CAP 1.2 export."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from edge.validators import SEGMENT_PATTERN
from hub.api.deps import Ctx, Me, PageDep, encode_cursor, guarded
from hub.api.models import Body, Paged, UtcDateTime
from hub.auth import Permission, Principal
from hub.warnings import cap
from hub.warnings.service import Explanation

router = APIRouter(prefix="/api/v1", tags=["warnings"])
CellId = Annotated[str, Path(pattern=SEGMENT_PATTERN)]
SiteQuery = Annotated[str | None, Query(pattern=SEGMENT_PATTERN)]


class IncidentBehind(BaseModel):
    id: str
    number: str
    level: str
    category: str
    age_min: float
    overdue: bool


class AlertsBehind(BaseModel):
    count: int
    window_min: float


class OverrideInfo(BaseModel):
    level: Literal["red", "orange", "yellow"] | None
    reason: str
    by: str
    at: UtcDateTime
    expires_at: UtcDateTime


class WarningExplanation(BaseModel):
    cell_id: str
    site: str
    name: str
    level: Literal["red", "orange", "yellow"] | None
    source: Literal["rules", "override", "none"]
    rule: str | None = Field(description="the rule that chose the colour (source rules)")
    matched_rules: list[str] = Field(description="every rule matching now, override or not")
    since: UtcDateTime | None
    incident_count: int
    incidents: list[IncidentBehind] = Field(
        description="the incidents behind the rule, worst first"
    )
    alerts: AlertsBehind | None
    override: OverrideInfo | None = None


class HistoryItem(BaseModel):
    id: int
    ts: UtcDateTime
    level: str | None
    previous_level: str | None
    source: str
    rule: str | None
    reason: str | None
    actor: str
    episode: str | None
    explanation: dict[str, Any]


class OverrideBody(Body):
    level: Literal["red", "orange", "yellow", "none"] = Field(
        description="'none': no warning, whatever the rules say"
    )
    reason: Annotated[str, Field(min_length=1, max_length=500, examples=["festival crowd"])]
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="in the future, at most warnings.override_max_h (default 7 days) ahead",
    )
    lasts_min: Annotated[float | None, Field(gt=0, le=525_600)] = Field(
        default=None,
        description="instead of expires_at: minutes from now on the hub's clock (a browser's "
        "clock may differ from the hub's, e.g. in the accelerated demo)",
    )

    @model_validator(mode="after")
    def _one_expiry(self) -> Self:
        if (self.expires_at is None) == (self.lasts_min is None):
            raise ValueError("give exactly one of expires_at and lasts_min: an override expires")
        return self


def _for(me: Principal, verdict: dict[str, Any]) -> dict[str, Any]:
    """Which incidents are behind a colour is incident data: only for incidents:read (an
    installer or a grid worker sees the colour, the rule and the count)."""
    if me.can(Permission.INCIDENTS_READ):
        return verdict
    return {**verdict, "incidents": []}


def explanation(e: Explanation, me: Principal) -> WarningExplanation:
    return WarningExplanation(
        cell_id=e.cell_id, site=e.site, name=e.name, since=e.since, **_for(me, e.verdict)
    )


@router.get(
    "/grid-cells/{cell_id}/warning",
    response_model=WarningExplanation,
    **guarded(Permission.CELLS_READ),
)
def get_warning(cell_id: CellId, ctx: Ctx, me: Me) -> WarningExplanation:
    """The cell's colour and why: the rule (or the override) and the incidents and alert
    counts behind it, as of now."""
    return explanation(ctx.warnings.explain(cell_id), me)


@router.get(
    "/grid-cells/{cell_id}/warning-history",
    response_model=Paged[HistoryItem],
    **guarded(Permission.CELLS_READ),
)
def warning_history(cell_id: CellId, ctx: Ctx, me: Me, page: PageDep) -> Paged[HistoryItem]:
    """Every change of the cell's colour or of what is behind it, newest first."""
    rows = ctx.warnings.history(cell_id, limit=page.limit, before=page.after_int(minimum=1))
    items = [
        HistoryItem.model_validate({**r._mapping, "explanation": _for(me, r.explanation)})
        for r in rows
    ]
    nxt = encode_cursor([items[-1].id]) if len(items) == page.limit else None
    return Paged[HistoryItem](items=items, next_cursor=nxt)


@router.put(
    "/grid-cells/{cell_id}/warning-override",
    response_model=WarningExplanation,
    **guarded(Permission.CELLS_WARN),
)
def put_override(cell_id: CellId, body: OverrideBody, me: Me, ctx: Ctx) -> WarningExplanation:
    """Set the cell's colour by hand until ``expires_at``; then the rules take over again."""
    level = None if body.level == "none" else body.level
    expires_at = body.expires_at or ctx.clock.now() + timedelta(minutes=body.lasts_min or 0)
    ctx.warnings.set_override(me.username, cell_id, level, body.reason, expires_at)
    return explanation(ctx.warnings.explain(cell_id), me)


@router.delete(
    "/grid-cells/{cell_id}/warning-override",
    response_model=WarningExplanation,
    **guarded(Permission.CELLS_WARN),
)
def delete_override(cell_id: CellId, me: Me, ctx: Ctx) -> WarningExplanation:
    """End the override early: the rules decide the colour again at once."""
    ctx.warnings.end_override(me.username, cell_id)
    return explanation(ctx.warnings.explain(cell_id), me)


_CAP_ROUTE = guarded(Permission.CELLS_READ)
_CAP_ROUTE["response_class"] = Response
_CAP_ROUTE["responses"] = {
    **_CAP_ROUTE.get("responses", {}),
    200: {"content": {cap.CAP_MEDIA_TYPE: {}}, "description": "an OASIS CAP 1.2 alert"},
}
_FEED_ROUTE = guarded(Permission.CELLS_READ)
_FEED_ROUTE["response_class"] = Response
_FEED_ROUTE["responses"] = {
    **_FEED_ROUTE.get("responses", {}),
    200: {"content": {cap.ATOM_MEDIA_TYPE: {}}, "description": "Atom feed of CAP 1.2 alerts"},
}


@router.get("/warnings/cap.xml", **_FEED_ROUTE)
def cap_feed(request: Request, ctx: Ctx, site: SiteQuery = None) -> Response:
    """Every current warning as a CAP 1.2 alert, inline in an Atom feed entry."""
    messages = ctx.warnings.cap_messages(site)
    base = str(request.base_url).rstrip("/")
    body = cap.feed_xml(
        messages,
        ctx.config.warnings.cap,
        feed_id=f"{base}/api/v1/warnings/cap.xml" + (f"?site={site}" if site else ""),
        updated=max((m.sent for m in messages), default=ctx.clock.now()),
        self_url=str(request.url),
        cell_url=base + "/api/v1/grid-cells/{cell_id}/warning.cap.xml",
    )
    return Response(body, media_type=cap.ATOM_MEDIA_TYPE)


@router.get("/grid-cells/{cell_id}/warning.cap.xml", **_CAP_ROUTE)
def cap_alert(cell_id: CellId, ctx: Ctx) -> Response:
    """The cell's current warning as one CAP 1.2 alert (Alert, Update, or the Cancel of the
    episode that ended last); 404 when the cell never had a warning."""
    msg = ctx.warnings.cap_message(cell_id)
    return Response(cap.alert_xml(msg, ctx.config.warnings.cap), media_type=cap.CAP_MEDIA_TYPE)
