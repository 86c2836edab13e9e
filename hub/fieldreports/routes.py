"""Field reports: intake (multipart), following one's own reports, reading everyone's."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from edge.validators import SegmentId
from hub.api.deps import Ctx, Me, PageDep, encode_cursor, guarded
from hub.api.models import Paged, UtcDateTime
from hub.auth import Permission
from hub.errors import DomainError, Invalid, TooLarge, Unsupported
from hub.fieldreports.config import FieldReportsConfig
from hub.fieldreports.service import (
    MAX_DESCRIPTION_CHARS,
    BadReport,
    Channel,
    LocationSource,
    ReportInput,
    ReportStatus,
    reason_of,
    status_of,
)
from hub.incidents.model import IncidentLevel

router = APIRouter(prefix="/api/v1", tags=["field reports"])
ReportId = Annotated[str, Path(max_length=36)]
AttachmentId = Annotated[str, Path(max_length=36)]
ALLOWED_PARTS = frozenset({"report", "photo", "voice"})


class ReportPart(BaseModel):
    """The ``report`` part of the multipart body (JSON)."""

    model_config = ConfigDict(extra="forbid")

    client_report_id: UUID = Field(description="chosen by the phone; a resend repeats it")
    description: Annotated[str, Field(min_length=1, max_length=MAX_DESCRIPTION_CHARS)]
    category: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    level: IncidentLevel | None = None
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)] | None = None
    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)] | None = None
    address: Annotated[str, Field(max_length=200)] = ""
    site: SegmentId | None = Field(default=None, description="only on a hub of several sites")

    @field_validator("lon", "lat")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class AttachmentInfo(BaseModel):
    id: str
    kind: str
    content_type: str
    sha256: str
    size_bytes: int
    width: int | None
    height: int | None


class FieldReportInfo(BaseModel):
    id: str
    number: str = Field(description="the confirmation number, e.g. R-000045")
    status: ReportStatus
    incident_number: str | None
    category: str
    category_source: str = Field(description="reporter | classifier | default")
    suggested_category: str | None
    suggested_confidence: float | None
    level: IncidentLevel
    description: str
    lon: float | None
    lat: float | None
    location_source: LocationSource
    address: str
    channel: Channel
    client_report_id: str | None
    photo_count: int
    has_voice: bool
    created_at: UtcDateTime
    updated_at: UtcDateTime | None = Field(description="when its incident last changed")


class FieldReportDetail(FieldReportInfo):
    reporter: str
    attachments: list[AttachmentInfo]


def report_info(row: Any) -> FieldReportInfo:
    return FieldReportInfo(
        id=row.id,
        number=row.number,
        status=status_of(row),
        incident_number=row.incident_number,
        category=row.category,
        category_source=row.category_source,
        suggested_category=row.suggested_category,
        suggested_confidence=row.suggested_confidence,
        level=IncidentLevel(row.level),
        description=row.description,
        lon=row.lon,
        lat=row.lat,
        location_source=LocationSource(row.location_source),
        address=row.address,
        channel=Channel(row.channel),
        client_report_id=row.client_report_id,
        photo_count=row.photo_count,
        has_voice=bool(row.has_voice),
        created_at=row.created_at,
        updated_at=row.incident_updated_at,
    )


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$defs`` references replaced by their definitions: the part's
    schema sits inside an operation, where ``#/$defs/...`` would not resolve."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def _multipart_doc(config: FieldReportsConfig) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["report"],
                        "properties": {
                            "report": {
                                **_inlined(ReportPart.model_json_schema()),
                                "description": "JSON: the report",
                            },
                            "photo": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "maxItems": config.max_photos,
                                "description": "JPEG, PNG or WebP; re-encoded, EXIF dropped",
                            },
                            "voice": {
                                "type": "string",
                                "format": "binary",
                                "description": "Ogg/Opus, WebM, MP4/M4A, MP3 or WAV; as is",
                            },
                        },
                    },
                    "encoding": {"report": {"contentType": "application/json"}},
                }
            },
        }
    }


def _submit_kwargs() -> dict[str, Any]:
    kwargs = guarded(
        Permission.FIELD_REPORTS_SUBMIT,
        {
            200: {"description": "a resend of a stored report: the stored report"},
            409: {"description": "client_report_id already used for a different report"},
            413: {"description": "a photo, the voice note or the body over its size limit"},
            415: {"description": "not multipart/form-data"},
        },
    )
    kwargs["openapi_extra"].update(_multipart_doc(FieldReportsConfig()))
    return kwargs


async def read_part(upload: UploadFile, limit: int, label: str) -> bytes:
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"{label} is over the limit of {limit} bytes")
    return data


def _report_part(raw: bytes, limit: int) -> ReportPart:
    if len(raw) > limit:
        raise TooLarge(f"the report part is over the limit of {limit} bytes")
    try:
        return ReportPart.model_validate(json.loads(raw))
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'report'}: {e['msg']}"
            for e in err.errors()[:5]
        )
        raise BadReport(f"the report part is not valid: {problems}") from err
    except (ValueError, RecursionError) as err:
        raise BadReport("the report part is not valid JSON (UTF-8)") from err


async def parse_form(request: Request, config: FieldReportsConfig) -> FormData:
    """The multipart body, bounded: a thousand parts are refused before they are spooled."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise Unsupported("send the report as multipart/form-data (a 'report' JSON part)")
    try:
        return await request.form(
            max_files=config.max_photos + 2,  # the photos, a voice note, a report sent as a file
            max_fields=4,
            max_part_size=config.max_report_json_bytes,
        )
    except HTTPException as err:  # Starlette's 400 for a malformed or over-long multipart body
        raise Invalid(
            f"the multipart body was refused: {err.detail} (at most {config.max_photos} "
            "photos, one voice note and one report part)"
        ) from err


async def report_input(
    form: FormData, config: FieldReportsConfig
) -> tuple[ReportPart, ReportInput]:
    unexpected = sorted({key for key in form if key not in ALLOWED_PARTS})
    if unexpected:
        raise BadReport(f"unexpected parts {unexpected[:5]}; expected report, photo, voice")
    reports = form.getlist("report")
    if len(reports) != 1:
        raise BadReport("send exactly one 'report' part (JSON)")
    raw = reports[0]
    if isinstance(raw, UploadFile):
        raw_bytes = await read_part(raw, config.max_report_json_bytes, "the report part")
    else:
        raw_bytes = raw.encode()
    part = _report_part(raw_bytes, config.max_report_json_bytes)
    photos_parts = form.getlist("photo")
    voices = form.getlist("voice")
    if len(voices) > 1:
        raise BadReport("a report may carry one voice note")
    if len(photos_parts) > config.max_photos:
        raise Invalid(
            f"{len(photos_parts)} photos sent; a report may carry at most {config.max_photos}"
        )
    photos: list[bytes] = []
    for i, item in enumerate(photos_parts, start=1):
        if not isinstance(item, UploadFile):
            raise BadReport("each 'photo' part must be a file")
        photos.append(await read_part(item, config.max_photo_bytes, f"photo {i}"))
    voice: bytes | None = None
    if voices:
        item = voices[0]
        if not isinstance(item, UploadFile):
            raise BadReport("the 'voice' part must be a file")
        voice = await read_part(item, config.max_voice_bytes, "voice note")
    return part, ReportInput(
        description=part.description,
        client_report_id=str(part.client_report_id),
        category=part.category,
        level=part.level,
        lon=part.lon,
        lat=part.lat,
        address=part.address,
        site=part.site,
        photos=photos,
        voice=voice,
    )


@router.post("/field-reports", response_model=FieldReportInfo, status_code=201, **_submit_kwargs())
async def submit_report(request: Request, response: Response, me: Me, ctx: Ctx) -> FieldReportInfo:
    """File a field report (multipart: a ``report`` JSON part, ``photo`` files, one ``voice``).

    Idempotent by ``client_report_id``: a resend gets 200 and the stored report; the same id
    with a different report gets 409. Opens the report's incident in the same transaction.
    """
    config = ctx.config.field_reports
    try:
        form = await parse_form(request, config)
        try:
            _, report = await report_input(form, config)
        finally:
            await form.close()  # the spooled files, now
    except DomainError as err:
        ctx.fieldreports.count(f"refused_{reason_of(err)}")
        raise
    submitted = await run_in_threadpool(ctx.fieldreports.submit, me.username, report, Channel.API)
    if not submitted.created:
        response.status_code = 200
    return report_info(submitted.report)


@router.get(
    "/field-reports/mine",
    response_model=Paged[FieldReportInfo],
    **guarded(Permission.FIELD_REPORTS_SUBMIT),
)
def my_reports(me: Me, ctx: Ctx, page: PageDep) -> Paged[FieldReportInfo]:
    """The caller's own reports, newest first, with their current status."""
    rows = ctx.fieldreports.page(me, limit=page.limit, after=page.after_text(), mine=True)
    items = [report_info(r) for r in rows]
    nxt = encode_cursor([items[-1].id]) if len(items) == page.limit else None
    return Paged[FieldReportInfo](items=items, next_cursor=nxt)


@router.get(
    "/field-reports",
    response_model=Paged[FieldReportInfo],
    **guarded(Permission.FIELD_REPORTS_READ),
)
def list_reports(
    me: Me,
    ctx: Ctx,
    page: PageDep,
    category: Annotated[list[str] | None, Query(max_length=50)] = None,
    channel: Channel | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Paged[FieldReportInfo]:
    """Every field report, newest first."""
    rows = ctx.fieldreports.page(
        me,
        limit=page.limit,
        after=page.after_text(),
        categories=category,
        channel=channel,
        since=since,
        until=until,
    )
    items = [report_info(r) for r in rows]
    nxt = encode_cursor([items[-1].id]) if len(items) == page.limit else None
    return Paged[FieldReportInfo](items=items, next_cursor=nxt)


class ReportCategory(BaseModel):
    id: str
    line: str
    names: dict[str, str] = Field(description="by catalogue language (en, zh-CN)")


class ReportForm(BaseModel):
    """What the field page needs to build its form (and to refuse a photo before queueing)."""

    categories: list[ReportCategory] = Field(description="the field-reportable ones")
    levels: list[IncidentLevel]
    default_level: IncidentLevel
    max_photos: int
    max_photo_bytes: int
    max_voice_bytes: int
    max_description_chars: int


@router.get(
    "/field-reports/form",
    response_model=ReportForm,
    **guarded(Permission.FIELD_REPORTS_SUBMIT),
)
def report_form(ctx: Ctx) -> ReportForm:
    """The reportable categories with their names, the levels and the intake's limits."""
    config = ctx.config.field_reports
    return ReportForm(
        categories=[
            ReportCategory(id=c.id, line=c.line, names=c.names.model_dump(by_alias=True))
            for c in ctx.config.incidents.reportable()
        ],
        levels=list(IncidentLevel),
        default_level=config.default_level,
        max_photos=config.max_photos,
        max_photo_bytes=config.max_photo_bytes,
        max_voice_bytes=config.max_voice_bytes,
        max_description_chars=MAX_DESCRIPTION_CHARS,
    )


@router.get(
    "/field-reports/{report_id}",
    response_model=FieldReportDetail,
    # Everyone signed in may ask; only the reporter and reports:read holders get an answer.
    **guarded(Permission.SELF, {404: {"description": "no such report, or not yours"}}),
)
def get_report(report_id: ReportId, me: Me, ctx: Ctx) -> FieldReportDetail:
    row = ctx.fieldreports.get(me, report_id)
    attachments = ctx.fieldreports.attachments(me, report_id)
    return FieldReportDetail(
        **report_info(row).model_dump(),
        reporter=row.reporter,
        attachments=[AttachmentInfo.model_validate(a._mapping) for a in attachments],
    )


@router.get(
    "/field-reports/{report_id}/attachments/{attachment_id}",
    response_class=Response,
    **guarded(
        Permission.SELF,
        {200: {"content": {"image/jpeg": {}, "audio/ogg": {}}}, 404: {"description": "none"}},
    ),
)
def get_attachment(report_id: ReportId, attachment_id: AttachmentId, me: Me, ctx: Ctx) -> Response:
    """A report's photo (a re-encoded JPEG) or voice note (as sent, by its sniffed type)."""
    row = ctx.fieldreports.attachment(me, report_id, attachment_id)
    disposition = "inline" if row.kind == "photo" else "attachment"
    return Response(
        row.data,
        media_type=row.content_type,
        headers={
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Content-Disposition": disposition,
        },
    )
