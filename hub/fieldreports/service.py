"""Field report rules: idempotent intake, category choice, media, location, status.

A phone that lost its connection resends the same report with the same ``client_report_id``;
the hub stores one report per (reporter, client_report_id). A resend with the same content
gets the stored report back; the same id with different content is a 409, because the
phone has a bug or two reports collided, and neither should silently win.

The report and its incident are written in one audited transaction: there is never a
report without its incident, nor a half-stored set of photos.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from edge.validators import SEGMENT_PATTERN, new_id
from hub.audit import AuditTrail
from hub.auth import Permission, Principal
from hub.classify.classifier import ReportClassifier
from hub.clock import Clock, SystemClock
from hub.errors import Conflict, DomainError, Invalid, NotFound
from hub.fieldreports import repository
from hub.fieldreports.config import FieldReportsConfig
from hub.fieldreports.media import Photo, PhotoLimits, Voice, check_voice, reencode_photo
from hub.incidents.categories import Category, Vocabulary
from hub.incidents.model import IncidentLevel, IncidentSource, IncidentState
from hub.incidents.service import IncidentService, NewIncident

log = logging.getLogger(__name__)

DEFAULT_CATEGORY = "other"
MAX_DESCRIPTION_CHARS = 4000
TITLE_MAX_CHARS = 120


class ReportStatus(StrEnum):
    RECEIVED = "received"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Channel(StrEnum):
    API = "api"
    OPEN311 = "open311"


class LocationSource(StrEnum):
    GIVEN = "given"
    PHOTO = "photo"
    NONE = "none"


STATUS_OF_STATE = {
    IncidentState.NEW: ReportStatus.RECEIVED,
    IncidentState.ASSIGNED: ReportStatus.ASSIGNED,
    IncidentState.IN_PROGRESS: ReportStatus.IN_PROGRESS,
    IncidentState.RESOLVED: ReportStatus.RESOLVED,
    IncidentState.CLOSED: ReportStatus.CLOSED,
}


class FieldReportNotFound(NotFound):
    pass


class ReportIdReused(Conflict):
    pass


class BadCategory(Invalid):
    pass


class BadReport(Invalid):
    pass


class TooManyPhotos(Invalid):
    pass


@dataclass(frozen=True, slots=True)
class ReportInput:
    """A report as a client sent it (already shape-checked by the route's model)."""

    description: str
    client_report_id: str | None = None
    category: str | None = None
    level: IncidentLevel | None = None
    lon: float | None = None
    lat: float | None = None
    address: str = ""
    site: str | None = None  # needed only when the hub serves several sites
    photos: Sequence[bytes] = field(default_factory=tuple)
    voice: bytes | None = None


@dataclass(frozen=True, slots=True)
class Submitted:
    report: Any  # the stored row, joined with its incident's number and state
    created: bool  # False: a resend of a report already stored


def status_of(row: Any) -> ReportStatus:
    state = getattr(row, "incident_state", None)
    if state is None:
        return ReportStatus.RECEIVED
    return STATUS_OF_STATE[IncidentState(state)]


def check_text(value: str, name: str, max_chars: int) -> str:
    text = value.strip()
    if not text:
        raise BadReport(f"{name} must not be empty")
    if len(text) > max_chars:
        raise BadReport(f"{name} is {len(text)} characters; the limit is {max_chars}")
    # PostgreSQL refuses NUL in text, and no other control character belongs in a report.
    if any(ord(ch) < 32 and ch not in "\n\r\t" for ch in text):
        raise BadReport(f"{name} must not contain control characters (NUL and the like)")
    return text


def fingerprint(report: ReportInput, channel: Channel) -> str:
    """What tells a resend from a different report under the same client id."""
    content = {
        "channel": channel.value,
        "description": report.description.strip(),
        "category": report.category,
        "level": report.level.value if report.level else None,
        "lon": report.lon,
        "lat": report.lat,
        "address": report.address,
        "site": report.site,
        "photos": [hashlib.sha256(p).hexdigest() for p in report.photos],
        "voice": hashlib.sha256(report.voice).hexdigest() if report.voice is not None else None,
    }
    raw = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


class _Replayed(Exception):  # noqa: N818 - control flow inside the transaction, never raised out
    def __init__(self, row: Any) -> None:
        self.row = row


class FieldReportService:
    def __init__(
        self,
        engine: Engine,
        audit: AuditTrail,
        *,
        config: FieldReportsConfig,
        vocabulary: Vocabulary,
        incidents: IncidentService,
        site: str | None,
        clock: Clock | None = None,
        classifier: ReportClassifier | None = None,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.config = config
        self.vocabulary = vocabulary
        self.incidents = incidents
        self.site = site
        self.clock = clock or SystemClock()
        self.classifier = classifier or ReportClassifier.load_default()
        self._counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        self.limits = PhotoLimits(
            max_bytes=config.max_photo_bytes,
            max_side_px=config.max_photo_side_px,
            max_pixels=config.max_photo_pixels,
            stored_side_px=config.stored_photo_side_px,
            jpeg_quality=config.photo_jpeg_quality,
        )

    # --- intake ---------------------------------------------------------------------------

    def reportable(self) -> list[Category]:
        return self.vocabulary.reportable()

    def _category(self, wanted: str) -> Category:
        category = self.vocabulary.category(wanted)
        if category is None or not category.field_reportable:
            allowed = ", ".join(c.id for c in self.reportable())
            what = "unknown" if category is None else "not one a field report may name"
            raise BadCategory(f"category {wanted!r} is {what}; allowed: {allowed}")
        return category

    def _fallback(self) -> Category:
        fallback = self.vocabulary.category(DEFAULT_CATEGORY)
        if fallback is not None and fallback.field_reportable:
            return fallback
        reportable = self.reportable()
        if not reportable:
            raise BadCategory("this hub's vocabulary has no category a field report may name")
        return reportable[0]

    def _choose_category(self, report: ReportInput, text: str) -> tuple[Category, str, Any]:
        suggestion = self.classifier.suggest(text)
        if suggestion is not None:
            known = self.vocabulary.category(suggestion.category)
            if known is None or not known.field_reportable:
                log.warning("classifier suggested unusable category %s", suggestion.category)
                suggestion = None
        if report.category is not None:
            return self._category(report.category), "reporter", suggestion
        if suggestion is not None:
            return self._category(suggestion.category), "classifier", suggestion
        return self._fallback(), "default", suggestion

    def _site(self, wanted: str | None) -> str:
        if self.site is None:
            if wanted is None or not re.fullmatch(SEGMENT_PATTERN, wanted):
                raise BadReport(
                    "this hub serves several sites: name the report's site "
                    "(Open311: jurisdiction_id), letters, digits, - and _ only"
                )
            return wanted
        if wanted is not None and wanted != self.site:
            raise BadReport(f"this hub takes reports for site {self.site!r} only")
        return self.site

    def _media(self, report: ReportInput) -> tuple[list[Photo], Voice | None]:
        if len(report.photos) > self.config.max_photos:
            raise TooManyPhotos(
                f"{len(report.photos)} photos sent; a report may carry at most "
                f"{self.config.max_photos}"
            )
        photos = [
            reencode_photo(raw, self.limits, f"photo {i}")
            for i, raw in enumerate(report.photos, start=1)
        ]
        voice = None
        if report.voice is not None:
            voice = check_voice(report.voice, self.config.max_voice_bytes, self.config.voice_types)
        return photos, voice

    def _replay(self, existing: Any, print_: str) -> Submitted:
        if existing.fingerprint != print_:
            raise ReportIdReused(
                f"client_report_id {existing.client_report_id!r} was already used for a "
                f"different report ({existing.number}); choose a new id for a new report"
            )
        return Submitted(existing, created=False)

    def count(self, outcome: str) -> None:
        with self._counts_lock:
            self._counts[outcome] += 1

    def stats(self) -> dict[str, int]:
        """Reports accepted, resends answered, and refusals by reason (the error's kind)."""
        with self._counts_lock:
            return dict(self._counts)

    def submit(self, actor: str, report: ReportInput, channel: Channel = Channel.API) -> Submitted:
        """Store a report and open its incident; a resend returns the stored report."""
        try:
            submitted = self._submit(actor, report, channel)
        except DomainError as err:
            self.count(f"refused_{reason_of(err)}")
            raise
        self.count(f"{channel.value}_{'accepted' if submitted.created else 'resent'}")
        return submitted

    def _submit(self, actor: str, report: ReportInput, channel: Channel) -> Submitted:
        print_ = fingerprint(report, channel)
        client_id = report.client_report_id
        if client_id is not None:
            with self.engine.connect() as conn:
                existing = repository.by_client_id(conn, actor, client_id)
            if existing is not None:
                return self._replay(existing, print_)
        text = check_text(report.description, "description", MAX_DESCRIPTION_CHARS)
        address = report.address.strip()
        if address:
            address = check_text(address, "address", 200)
        if (report.lon is None) != (report.lat is None):
            raise BadReport("give both lon and lat, or neither")
        site = self._site(report.site)
        category, category_source, suggestion = self._choose_category(report, text)
        photos, voice = self._media(report)
        lon, lat, location_source = _locate(report, photos)
        level = report.level or self.config.default_level
        report_id = new_id()
        try:
            with self.audit.change(
                actor,
                "field_report.submit",
                report_id,
                {
                    "channel": channel.value,
                    "category": category.id,
                    "photos": len(photos),
                    "voice": voice is not None,
                    "location": location_source.value,
                },
            ) as conn:
                if client_id is not None:
                    # Checked again under the write lock: a parallel resend may have won.
                    _not_raced(conn, actor, client_id)
                now = self.clock.now()
                incident = self.incidents.open_in(
                    conn,
                    actor,
                    NewIncident(
                        site=site,
                        source=IncidentSource.REPORT,
                        category=category.id,
                        level=level,
                        title=_title(text),
                        description=text,
                        lon=lon,
                        lat=lat,
                    ),
                )
                repository.insert(
                    conn,
                    {
                        "id": report_id,
                        "number": repository.next_number(conn),
                        "site": site,
                        "reporter": actor,
                        "client_report_id": client_id,
                        "channel": channel.value,
                        "fingerprint": print_,
                        "incident_id": incident.id,
                        "category": category.id,
                        "category_source": category_source,
                        "suggested_category": suggestion.category if suggestion else None,
                        "suggested_confidence": suggestion.confidence if suggestion else None,
                        "level": level.value,
                        "description": text,
                        "lon": lon,
                        "lat": lat,
                        "location_source": location_source.value,
                        "address": address,
                        "photo_count": len(photos),
                        "has_voice": voice is not None,
                        "created_at": now,
                    },
                )
                self._attach(
                    conn,
                    actor=actor,
                    report_id=report_id,
                    incident_id=incident.id,
                    photos=photos,
                    voice=voice,
                    now=now,
                )
                row = repository.get(conn, report_id)
                if row is None:  # pragma: no cover - inserted two statements above
                    raise FieldReportNotFound(report_id)
        except _Replayed as replayed:
            return self._replay(replayed.row, print_)
        except IntegrityError:
            # PostgreSQL: a parallel resend committed first (the unique index said so).
            if client_id is None:
                raise
            with self.engine.connect() as conn:
                existing = repository.by_client_id(conn, actor, client_id)
            if existing is None:
                raise
            return self._replay(existing, print_)
        log.info("field report %s stored (%s, %d photos)", report_id, channel.value, len(photos))
        self.incidents.announce(incident, "incident.open")
        return Submitted(row, created=True)

    def _attach(
        self,
        conn: Any,
        *,
        actor: str,
        report_id: str,
        incident_id: str,
        photos: list[Photo],
        voice: Voice | None,
        now: datetime,
    ) -> None:
        for i, photo in enumerate(photos, start=1):
            repository.add_attachment(
                conn,
                {
                    "id": new_id(),
                    "incident_id": incident_id,
                    "report_id": report_id,
                    "kind": "photo",
                    "filename": f"photo-{i}.jpg",
                    "content_type": "image/jpeg",
                    "sha256": photo.sha256,
                    "size_bytes": len(photo.data),
                    "width": photo.width,
                    "height": photo.height,
                    "data": photo.data,
                    "created_by": actor,
                    "created_at": now,
                },
            )
        if voice is not None:
            repository.add_attachment(
                conn,
                {
                    "id": new_id(),
                    "incident_id": incident_id,
                    "report_id": report_id,
                    "kind": "voice",
                    "filename": f"voice.{voice.container}",
                    "content_type": voice.content_type,
                    "sha256": voice.sha256,
                    "size_bytes": len(voice.data),
                    "data": voice.data,
                    "created_by": actor,
                    "created_at": now,
                },
            )

    # --- following a report -----------------------------------------------------------------

    def get(self, viewer: Principal, report_id: str) -> Any:
        """The report, if ``viewer`` filed it or may read every report; else not found (404:
        whether someone else's report exists is not the viewer's to learn)."""
        with self.engine.connect() as conn:
            row = repository.get(conn, report_id)
        return self._visible(viewer, row, report_id)

    def get_by_number(self, viewer: Principal, number: str) -> Any:
        with self.engine.connect() as conn:
            row = repository.get_by_number(conn, number)
        return self._visible(viewer, row, number)

    def _visible(self, viewer: Principal, row: Any, name: str) -> Any:
        if row is None or not self.may_read(viewer, row):
            raise FieldReportNotFound(f"no field report {name!r}")
        return row

    @staticmethod
    def may_read(viewer: Principal, row: Any) -> bool:
        return row.reporter == viewer.username or viewer.can(Permission.FIELD_REPORTS_READ)

    def attachments(self, viewer: Principal, report_id: str) -> list[Any]:
        self.get(viewer, report_id)
        with self.engine.connect() as conn:
            return repository.attachments(conn, report_id)

    def attachment(self, viewer: Principal, report_id: str, attachment_id: str) -> Any:
        self.get(viewer, report_id)
        with self.engine.connect() as conn:
            row = repository.attachment_data(conn, report_id, attachment_id)
        if row is None:
            raise FieldReportNotFound(f"report {report_id!r} has no attachment {attachment_id!r}")
        return row

    def page(
        self,
        viewer: Principal,
        *,
        limit: int,
        after: str | None = None,
        mine: bool = False,
        **filters: Any,
    ) -> list[Any]:
        """A page of reports, newest first: the viewer's own, or (reports:read) everyone's.
        ``filters``: numbers, categories, since, until, channel, states (see :meth:`_page`)."""
        everyone = viewer.can(Permission.FIELD_REPORTS_READ) and not mine
        reporter = None if everyone else viewer.username
        return self._page(reporter, limit=limit, after=after, **filters)

    def public_page(self, *, limit: int, after: str | None = None, **filters: Any) -> list[Any]:
        """Everyone's reports, for a caller the hub's config lets see them (public Open311
        lists, which show only the fields a public view may carry)."""
        return self._page(None, limit=limit, after=after, **filters)

    def public_get_by_number(self, number: str) -> Any:
        with self.engine.connect() as conn:
            row = repository.get_by_number(conn, number)
        if row is None:
            raise FieldReportNotFound(f"no field report {number!r}")
        return row

    def _page(
        self,
        reporter: str | None,
        *,
        limit: int,
        after: str | None = None,
        numbers: Sequence[str] | None = None,
        categories: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        channel: Channel | None = None,
        states: Sequence[IncidentState] | None = None,
    ) -> list[Any]:
        with self.engine.connect() as conn:
            return repository.page(
                conn,
                limit=limit,
                after=after,
                reporter=reporter,
                numbers=numbers,
                categories=categories,
                since=since,
                until=until,
                channel=channel.value if channel else None,
                states=[s.value for s in states] if states is not None else None,
            )


def reason_of(err: DomainError) -> str:
    """``PhotoTooLarge`` -> ``photo_too_large``: the counted reason of a refusal."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(err).__name__).lower()


def _not_raced(conn: Any, actor: str, client_id: str) -> None:
    raced = repository.by_client_id(conn, actor, client_id)
    if raced is not None:
        raise _Replayed(raced)


def _locate(
    report: ReportInput, photos: list[Photo]
) -> tuple[float | None, float | None, LocationSource]:
    """The report's location: the one given, else the first photo's EXIF GPS, else none."""
    if report.lon is not None:
        return report.lon, report.lat, LocationSource.GIVEN
    located = next((p.gps for p in photos if p.gps is not None), None)
    if located is not None:
        return located[0], located[1], LocationSource.PHOTO
    return None, None, LocationSource.NONE


def _title(text: str) -> str:
    first = text.splitlines()[0].strip() if text.strip() else text
    return first if len(first) <= TITLE_MAX_CHARS else first[: TITLE_MAX_CHARS - 1] + "…"
