"""Incident statistics: the rules (what counts as open, overdue, a time to resolve), the
aggregation over streamed facts, and the exports' formats.

Definitions (docs/incidents-stats.md):
- the window bounds *creation*: an incident counts when ``since <= created_at < until``;
- ``opened`` = ``open`` + ``resolved`` + ``closed``, by the incident's state now;
- ``overdue``: open and past ``deadline_at`` by the injected clock;
- time to resolve: ``resolved_at - created_at`` of incidents resolved or closed with a
  ``resolved_at``; time to close: ``closed_at - created_at`` of closed incidents;
- median and p90 by the nearest-rank method over the exact values (no binning).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from hub.clock import Clock, SystemClock
from hub.config import HubConfig
from hub.csv_export import safe_cell
from hub.i18n import Language
from hub.incidents.model import OPEN_STATES, IncidentState
from hub.incstats import repository
from hub.incstats.repository import CountRow, Dimension, DurationRow, IncidentFilter

OPEN = frozenset(s.value for s in OPEN_STATES)
RESOLVED = IncidentState.RESOLVED.value
CLOSED = IncidentState.CLOSED.value
STAT_COLUMNS = (
    "key",
    "name",
    "opened",
    "open",
    "resolved",
    "closed",
    "overdue",
    "reported",
    "assigned",
    "resolve_median_s",
    "resolve_mean_s",
    "resolve_p90_s",
    "close_median_s",
    "close_mean_s",
    "close_p90_s",
)
EXPORT_COLUMNS = (
    "number",
    "id",
    "site",
    "source",
    "category",
    "level",
    "state",
    "title",
    "description",
    "cell_id",
    "department_id",
    "assignee",
    "opened_by",
    "lon",
    "lat",
    "created_at",
    "deadline_at",
    "resolved_at",
    "closed_at",
    "overdue",
)


@dataclass(frozen=True, slots=True)
class Durations:
    median_s: float | None
    mean_s: float | None
    p90_s: float | None

    @classmethod
    def of(cls, values: list[float]) -> Durations:
        if not values:
            return cls(None, None, None)
        ordered = sorted(values)
        return cls(
            median_s=nearest_rank(ordered, 0.5),
            mean_s=sum(ordered) / len(ordered),
            p90_s=nearest_rank(ordered, 0.9),
        )


def nearest_rank(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted values by nearest rank: the smallest value with at least
    ``q`` of the values at or below it (an observed value, never an interpolation)."""
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class StatsRow:
    key: str | None  # None: incidents with no cell / no department
    name: str
    opened: int
    open: int
    resolved: int
    closed: int
    overdue: int
    reported: int | None  # by=worker only
    assigned: int | None  # by=worker only
    to_resolve: Durations
    to_close: Durations

    def flat(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "opened": self.opened,
            "open": self.open,
            "resolved": self.resolved,
            "closed": self.closed,
            "overdue": self.overdue,
            "reported": self.reported,
            "assigned": self.assigned,
            "resolve_median_s": self.to_resolve.median_s,
            "resolve_mean_s": self.to_resolve.mean_s,
            "resolve_p90_s": self.to_resolve.p90_s,
            "close_median_s": self.to_close.median_s,
            "close_mean_s": self.to_close.mean_s,
            "close_p90_s": self.to_close.p90_s,
        }


@dataclass
class _Tally:
    opened: int = 0
    open: int = 0
    resolved: int = 0
    closed: int = 0
    overdue: int = 0
    reported: int = 0
    assigned: int = 0
    to_resolve: list[float] = field(default_factory=list)
    to_close: list[float] = field(default_factory=list)

    def count(self, row: CountRow) -> None:
        self.opened += row.incidents
        self.reported += row.reported
        self.assigned += row.assigned
        if row.state in OPEN:
            self.open += row.incidents
            self.overdue += row.overdue
        elif row.state == RESOLVED:
            self.resolved += row.incidents
        elif row.state == CLOSED:
            self.closed += row.incidents

    def time(self, row: DurationRow) -> None:
        if row.resolve_s is not None:
            self.to_resolve.append(row.resolve_s)
        if row.state == CLOSED and row.close_s is not None:
            self.to_close.append(row.close_s)


def aggregate(
    counts: Iterable[CountRow], durations: Iterable[DurationRow]
) -> dict[str | None, _Tally]:
    tallies: dict[str | None, _Tally] = {}
    for row in counts:
        tallies.setdefault(row.key, _Tally()).count(row)
    for timed in durations:
        tallies.setdefault(timed.key, _Tally()).time(timed)
    return tallies


class IncidentStats:
    def __init__(self, engine: Engine, config: HubConfig, clock: Clock | None = None) -> None:
        self.engine = engine
        self.config = config
        self.clock = clock or SystemClock()

    def rows(self, by: Dimension, f: IncidentFilter, lang: Language = "en") -> list[StatsRow]:
        """One row per key, most incidents first (then by key, None last)."""
        now = self.clock.now()
        tallies = aggregate(
            repository.counts(self.engine, by, f, now), repository.durations(self.engine, by, f)
        )
        keys = [k for k in tallies if k is not None]
        found = self._names(by, keys, lang)
        rows = [
            StatsRow(
                key=key,
                name=found.get(key, key) if key is not None else "",
                opened=t.opened,
                open=t.open,
                resolved=t.resolved,
                closed=t.closed,
                overdue=t.overdue,
                reported=t.reported if by == "worker" else None,
                assigned=t.assigned if by == "worker" else None,
                to_resolve=Durations.of(t.to_resolve),
                to_close=Durations.of(t.to_close),
            )
            for key, t in tallies.items()
        ]
        rows.sort(key=lambda r: (-r.opened, r.key is None, r.key or ""))
        return rows

    def count(self, f: IncidentFilter) -> int:
        return repository.count(self.engine, f)

    def _names(self, by: Dimension, keys: list[str], lang: Language) -> dict[str, str]:
        if by == "category":
            vocabulary = self.config.incidents
            named = {c.id: c.names for c in vocabulary.categories}
            return {
                k: (named[k].en if lang == "en" else named[k].zh_CN) for k in keys if k in named
            }
        return repository.names(self.engine, by, keys)

    def rows_csv(self, by: Dimension, f: IncidentFilter, lang: Language = "en") -> str:
        rows = self.rows(by, f, lang)  # one row per key: small however many incidents
        return "".join(_csv_lines([STAT_COLUMNS], [r.flat() for r in rows], STAT_COLUMNS))

    def export_csv(self, f: IncidentFilter) -> Iterator[str]:
        """The incidents as formula-safe CSV, streamed in chunks of one keyset page."""
        now = self.clock.now()
        yield from _csv_lines([EXPORT_COLUMNS], [], EXPORT_COLUMNS)
        chunk: list[dict[str, Any]] = []
        for row in repository.export_rows(self.engine, f):
            chunk.append(_export_record(row, now))
            if len(chunk) >= repository.EXPORT_BATCH:
                yield "".join(_csv_lines([], chunk, EXPORT_COLUMNS))
                chunk = []
        if chunk:
            yield "".join(_csv_lines([], chunk, EXPORT_COLUMNS))

    def export_geojson(self, f: IncidentFilter) -> Iterator[str]:
        """The incidents as a GeoJSON FeatureCollection (RFC 7946), streamed. An incident
        with no location is a Feature with ``"geometry": null`` (RFC 7946 section 3.2)."""
        now = self.clock.now()
        yield '{"type":"FeatureCollection","features":['
        first = True
        for row in repository.export_rows(self.engine, f):
            record = _export_record(row, now)
            lon, lat = record.pop("lon"), record.pop("lat")
            located = lon is not None and lat is not None and math.isfinite(lon + lat)
            geometry = {"type": "Point", "coordinates": [lon, lat]} if located else None
            feature = {
                "type": "Feature",
                "id": record["id"],
                "geometry": geometry,
                "properties": record,
            }
            yield ("" if first else ",") + json.dumps(feature, ensure_ascii=False, allow_nan=False)
            first = False
        yield "]}"


def _iso(ts: datetime | None) -> str | None:
    ts = repository.aware(ts)
    return ts.isoformat() if ts is not None else None


def _export_record(row: Any, now: datetime) -> dict[str, Any]:
    m = row._mapping
    deadline = repository.aware(m["deadline_at"])
    return {
        "number": m["number"],
        "id": m["id"],
        "site": m["site"],
        "source": m["source"],
        "category": m["category"],
        "level": m["level"],
        "state": m["state"],
        "title": m["title"],
        "description": m["description"],
        "cell_id": m["cell_id"],
        "department_id": m["department_id"],
        "assignee": m["assignee"],
        "opened_by": m["opened_by"],
        "lon": m["lon"],
        "lat": m["lat"],
        "created_at": _iso(m["created_at"]),
        "deadline_at": _iso(deadline),
        "resolved_at": _iso(m["resolved_at"]),
        "closed_at": _iso(m["closed_at"]),
        "overdue": m["state"] in OPEN and deadline is not None and deadline < now,
    }


def _csv_lines(
    header: list[Sequence[str]], rows: list[dict[str, Any]], columns: Sequence[str]
) -> list[str]:
    # hub/csv_export.safe_cell neutralises every cell, as write_csv does; written here line
    # by line so an export streams instead of being built whole.
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    for line in header:
        writer.writerow([safe_cell(c) for c in line])
    for row in rows:
        writer.writerow([safe_cell(row.get(c)) for c in columns])
    return [out.getvalue()]
