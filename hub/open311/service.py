"""Open311 GeoReport v2 over the field-report service.

Services are the field-reportable incident categories (``service_code``: the category's
``open311_code``, else its id). A POSTed request is a field report on the ``open311`` channel,
made exactly as the hub's own intake makes one; its ``service_request_id`` is the report's
confirmation number (R-000045). Status is ``open`` until the report's incident is resolved.

Who may do what: POST needs ``api_key``, a gridward API token of a user holding
``reports:submit``. GET of requests needs one too (a key holding ``reports:read`` sees every
report, any other key only its user's own), unless ``field_reports.open311.public_requests``
is set; then anyone sees the public fields only (no description, no media, coordinates
rounded). Every call is rate limited per client: per api_key when it authenticates, else
per client address (so made-up keys cannot buy fresh allowances).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from hub.auth import Permission, Principal
from hub.clock import Clock, SystemClock
from hub.errors import DomainError, Forbidden, Invalid, NotFound, RateLimited
from hub.fieldreports.config import FieldReportsConfig
from hub.fieldreports.service import (
    Channel,
    FieldReportService,
    ReportInput,
    ReportStatus,
    Submitted,
    reason_of,
    status_of,
)
from hub.i18n import Language, translate
from hub.incidents.categories import Category, Vocabulary
from hub.incidents.model import DONE_STATES, OPEN_STATES
from hub.open311 import repository
from hub.open311.ratelimit import ClientRateLimiter, retry_after_s

log = logging.getLogger(__name__)

MAX_SPAN = timedelta(days=90)  # the spec's default window and its largest range
CLIENT_ID_ATTRIBUTE = "client_request_id"
CLIENT_ID_PREFIX = "open311:"
CLIENT_ID_MAX_CHARS = 64 - len(CLIENT_ID_PREFIX)  # the prefixed id fits the 64-char column
LANGS = ("en", "zh-CN")


class ServiceNotFound(NotFound):
    pass


class BadApiKey(Forbidden):
    pass


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: a principal when a valid api_key came with the call."""

    principal: Principal | None
    key_given: bool


def service_code(category: Category) -> str:
    return category.open311_code or category.id


def choose_lang(locale: str | None, accept_language: str | None) -> Language:
    for wanted in (locale, accept_language):
        if wanted and wanted.strip().lower().startswith("zh"):
            return "zh-CN"
        if wanted and wanted.strip().lower().startswith("en"):
            return "en"
    return "en"


def parse_w3c(value: str, name: str) -> datetime:
    try:
        ts = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as err:
        raise Invalid(f"{name} must be a W3C datetime such as 2026-12-01T00:00:00Z") from err
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def w3c(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _float(value: str | None, name: str, low: float, high: float) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        number = float(value)
    except ValueError as err:
        raise Invalid(f"{name} must be a number in degrees") from err
    if not low <= number <= high:  # also refuses NaN
        raise Invalid(f"{name} must be between {low} and {high}")
    return number


class Open311Service:
    def __init__(
        self,
        engine: Engine,
        reports: FieldReportService,
        *,
        config: FieldReportsConfig,
        vocabulary: Vocabulary,
        jurisdiction: str | None,
        clock: Clock | None = None,
        limiter: ClientRateLimiter | None = None,
    ) -> None:
        self.engine = engine
        self.reports = reports
        self.config = config
        self.settings = config.open311
        self.vocabulary = vocabulary
        self.jurisdiction = jurisdiction
        self.clock = clock or SystemClock()
        self.limiter = limiter or ClientRateLimiter(
            self.settings.rate_per_minute / 60.0,
            self.settings.burst,
            max_clients=self.settings.max_clients,
        )

    # --- who is calling ---------------------------------------------------------------------

    def caller(self, api_key: str | None, client_address: str) -> Caller:
        """Authenticate ``api_key`` (if any) and spend one token of the caller's allowance."""
        principal = None
        if api_key:
            principal = repository.principal_for_key(self.engine, api_key.strip())
        client = f"user:{principal.username}" if principal else f"addr:{client_address}"
        wait = self.limiter.admit(client)
        if wait is not None:
            seconds = retry_after_s(wait)
            raise RateLimited(f"too many requests; try again in {seconds} s", seconds)
        return Caller(principal, bool(api_key))

    @staticmethod
    def _require(caller: Caller, permission: Permission, purpose: str) -> Principal:
        principal = caller.principal
        if principal is None:
            what = "is not valid" if caller.key_given else "is required"
            raise BadApiKey(f"api_key {what} to {purpose}")
        if not principal.can(permission):
            raise BadApiKey(f"this api_key's user may not {purpose} (needs {permission.value})")
        return principal

    def stats(self) -> dict[str, int]:
        """The rate limiter's counters (admitted, refused, evicted, clients)."""
        return self.limiter.stats()

    # --- services -----------------------------------------------------------------------------

    def discovery(self, base_url: str) -> dict[str, Any]:
        return {
            "changeset": "2026-12-01T00:00:00Z",
            "contact": "the hub's operators",
            "key_service": "a gridward API token of a user who may file field reports",
            "endpoints": [
                {
                    "specification": "http://wiki.open311.org/GeoReport_v2",
                    "url": base_url.rstrip("/"),
                    "changeset": "2026-12-01T00:00:00Z",
                    "type": "production",
                    "formats": ["application/json"],
                }
            ],
        }

    def _service(self, category: Category, lang: Language) -> dict[str, Any]:
        names = category.names.model_dump(by_alias=True)
        line = next((ln for ln in self.vocabulary.lines if ln.id == category.line), None)
        group = line.names.model_dump(by_alias=True)[lang] if line else category.line
        return {
            "service_code": service_code(category),
            "service_name": names[lang],
            "description": names[lang],
            "metadata": True,  # one optional attribute: client_request_id (idempotency)
            "type": "realtime",
            "keywords": category.id,
            "group": group,
        }

    def services(self, lang: Language) -> list[dict[str, Any]]:
        return [self._service(c, lang) for c in self.vocabulary.reportable()]

    def category_for(self, code: str) -> Category:
        for category in self.vocabulary.reportable():
            if service_code(category) == code:
                return category
        raise ServiceNotFound(f"no service {code!r}; GET services.json lists them")

    def definition(self, code: str) -> dict[str, Any]:
        self.category_for(code)
        return {
            "service_code": code,
            "attributes": [
                {
                    "variable": True,
                    "code": CLIENT_ID_ATTRIBUTE,
                    "datatype": "string",
                    "required": False,
                    "datatype_description": (
                        "an id the client chooses (1-56 characters); a resend with the same id "
                        "returns the first request instead of filing a second"
                    ),
                    "order": 1,
                    "description": "client request id",
                }
            ],
        }

    # --- requests -------------------------------------------------------------------------

    def create(
        self, caller: Caller, fields: dict[str, str], media: bytes | None
    ) -> tuple[dict[str, Any], bool]:
        try:
            username, draft = self._draft(caller, fields, media)
        except DomainError as err:
            self.reports.count(f"refused_{reason_of(err)}")
            raise
        submitted: Submitted = self.reports.submit(username, draft, Channel.OPEN311)
        row = submitted.report
        return (
            {
                "service_request_id": row.number,
                "service_notice": "",
                "account_id": None,
            },
            submitted.created,
        )

    def _draft(
        self, caller: Caller, fields: dict[str, str], media: bytes | None
    ) -> tuple[str, ReportInput]:
        """The POSTed request as a field report of the key's user (refusals are Open311's)."""
        principal = self._require(caller, Permission.FIELD_REPORTS_SUBMIT, "file requests")
        code = (fields.get("service_code") or "").strip()
        if not code:
            raise Invalid("service_code is required")
        category = self.category_for(code)
        lat = _float(fields.get("lat"), "lat", -90, 90)
        lon = _float(fields.get("long"), "long", -180, 180)
        address = (fields.get("address_string") or "").strip()
        if (lat is None) != (lon is None):
            raise Invalid("give both lat and long, or neither")
        if lat is None and not address and media is None:
            raise Invalid("a location is required: lat and long, or address_string")
        description = fields.get("description") or ""
        if not description.strip():
            raise Invalid("description is required")
        client_id = (fields.get(f"attribute[{CLIENT_ID_ATTRIBUTE}]") or "").strip() or None
        if client_id is not None and len(client_id) > CLIENT_ID_MAX_CHARS:
            raise Invalid(
                f"attribute[{CLIENT_ID_ATTRIBUTE}] is at most {CLIENT_ID_MAX_CHARS} characters"
            )
        if len(address) > 200:
            raise Invalid("address_string is at most 200 characters")
        return principal.username, ReportInput(
            description=description,
            # Prefixed: an Open311 client's id never collides with the phone app's ids.
            client_report_id=f"{CLIENT_ID_PREFIX}{client_id}" if client_id else None,
            category=category.id,
            lon=lon,
            lat=lat,
            address=address,
            photos=[media] if media is not None else [],
            site=(fields.get("jurisdiction_id") or None) if self.jurisdiction is None else None,
        )

    def _view(self, row: Any, public: bool, lang: Language) -> dict[str, Any]:
        category = self.vocabulary.category(row.category)
        status = status_of(row)
        closed = status in (ReportStatus.RESOLVED, ReportStatus.CLOSED)
        view: dict[str, Any] = {
            "service_request_id": row.number,
            "status": "closed" if closed else "open",
            "service_code": service_code(category) if category else row.category,
            "requested_datetime": w3c(row.created_at),
            "updated_datetime": w3c(row.incident_updated_at or row.created_at),
        }
        lat, lon = row.lat, row.lon
        if public:
            digits = self.settings.public_coordinate_decimals
            view["lat"] = round(lat, digits) if lat is not None else None
            view["long"] = round(lon, digits) if lon is not None else None
            return view
        names = category.names.model_dump(by_alias=True) if category else {}
        view.update(
            {
                "status_notes": translate(f"field_report.status.{status.value}", lang),
                "service_name": names.get(lang, row.category),
                "description": row.description,
                "agency_responsible": row.department_id,
                "service_notice": "",
                "expected_datetime": None,
                "address": row.address,
                "address_id": None,
                "zipcode": None,
                "lat": lat,
                "long": lon,
                "media_url": None,  # photos: GET /api/v1/field-reports/{id}, with a token
            }
        )
        return view

    def _reader(self, caller: Caller) -> Principal | None:
        """The principal whose view applies (their own reports, or all with reports:read),
        or None for the public view."""
        principal = caller.principal
        if principal is None:
            if self.settings.public_requests and not caller.key_given:
                return None
            return self._require(caller, Permission.FIELD_REPORTS_READ, "read requests")
        if principal.can(Permission.FIELD_REPORTS_READ):
            return principal
        return self._require(caller, Permission.FIELD_REPORTS_SUBMIT, "read requests")

    def request(self, caller: Caller, number: str, lang: Language) -> list[dict[str, Any]]:
        reader = self._reader(caller)
        if reader is None:
            row = self.reports.public_get_by_number(number)
        else:
            row = self.reports.get_by_number(reader, number)
        return [self._view(row, reader is None, lang)]

    def requests(
        self, caller: Caller, query: dict[str, str], lang: Language
    ) -> list[dict[str, Any]]:
        reader = self._reader(caller)
        filters: dict[str, Any] = {}
        ids = [i.strip() for i in (query.get("service_request_id") or "").split(",") if i.strip()]
        if ids:
            if len(ids) > self.settings.max_page_size:
                raise Invalid(f"at most {self.settings.max_page_size} service_request_id values")
            filters["numbers"] = ids  # overrides every other filter (the spec says so)
        else:
            codes = [c.strip() for c in (query.get("service_code") or "").split(",") if c.strip()]
            if codes:
                filters["categories"] = [self.category_for(c).id for c in codes[:100]]
            now = self.clock.now()
            end = parse_w3c(query["end_date"], "end_date") if query.get("end_date") else None
            start = (
                parse_w3c(query["start_date"], "start_date") if query.get("start_date") else None
            )
            if start is None:
                start = (end or now) - MAX_SPAN
            if end is not None and end < start:
                raise Invalid("end_date is before start_date")
            if end is not None and end - start > MAX_SPAN:
                raise Invalid("start_date to end_date may span at most 90 days")
            filters["since"], filters["until"] = start, end
            statuses = {s.strip() for s in (query.get("status") or "").split(",") if s.strip()}
            if statuses - {"open", "closed"}:
                raise Invalid("status is open, closed or both (comma separated)")
            if statuses == {"open"}:
                filters["states"] = list(OPEN_STATES)
            elif statuses == {"closed"}:
                filters["states"] = list(DONE_STATES)
        limit = self.settings.max_page_size
        if reader is None:
            rows = self.reports.public_page(limit=limit, **filters)
        else:
            rows = self.reports.page(reader, limit=limit, **filters)
        return [self._view(r, reader is None, lang) for r in rows]
