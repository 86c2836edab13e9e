"""Routing: which department an incident goes to (pure; no I/O but the cell-department lookup
the caller passes in).

The rules are tried in order; the first whose conditions all hold and that yields a department
wins. A rule that names a line of work yields the department the incident's cell names for that
line; when the cell names none (or the incident has no cell) the next rule is tried. Hours and
days are read in the site's time zone. Every decision carries a trace: each rule tried and why
it did or did not match, which the dry-run endpoint returns as is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

import shapely
from shapely.geometry import shape

from hub.incidents.config import WEEKDAYS, RoutingRule
from hub.incidents.model import LEVEL_ORDER, IncidentLevel

DepartmentForCell = Callable[[str, str], str | None]  # (cell id, line) -> department id


@dataclass(frozen=True, slots=True)
class RouteQuery:
    category: str
    level: IncidentLevel
    at: datetime  # aware
    cell_id: str | None = None
    lon: float | None = None
    lat: float | None = None


DETAILS = {
    "category": "category {0} is not one of the rule's",
    "levels": "level {0} is not one of the rule's",
    "min_level": "level {0} is below the rule's minimum",
    "cell": "cell {0} is not one of the rule's",
    "area": "the location is not inside the rule's area",
    "hours": "{0} local is outside {1}-{2}",
    "day": "{0} is not one of the rule's days",
    "no_cell": "line {0}: the incident has no cell",
    "no_department": "cell {0} names no department for line {1}",
    "department": "department {0}",
    "line": "cell {0}, line {1}: {2}",
}


@dataclass(frozen=True, slots=True)
class TraceStep:
    rule: str
    matched: bool
    reason: str  # a code: matched, category, level, cell, area, hours, day, no_cell, no_department
    # The detail is formatted only when read: routing an incident keeps its trace's codes
    # and never needs the sentences (the dry run does).
    template: str
    args: tuple[Any, ...] = ()

    @property
    def detail(self) -> str:
        return DETAILS[self.template].format(*self.args)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "matched": self.matched,
            "reason": self.reason,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class RouteDecision:
    rule: str | None
    department: str | None
    trace: list[TraceStep] = field(default_factory=list)


@dataclass(slots=True)
class _Compiled:
    rule: RoutingRule
    categories: frozenset[str] | None
    levels: frozenset[IncidentLevel] | None
    min_rank: int | None
    cells: frozenset[str] | None
    area: Any | None
    hours: tuple[int, int] | None
    days: frozenset[int] | None


def _compile(rule: RoutingRule) -> _Compiled:
    w = rule.when
    area = None
    if w.area is not None:
        area = shape(w.area)
        shapely.prepare(area)
    return _Compiled(
        rule=rule,
        categories=frozenset(w.categories) if w.categories is not None else None,
        levels=frozenset(w.levels) if w.levels is not None else None,
        min_rank=LEVEL_ORDER[w.min_level] if w.min_level is not None else None,
        cells=frozenset(w.cells) if w.cells is not None else None,
        area=area,
        hours=w.hours.minutes() if w.hours is not None else None,
        days=frozenset(WEEKDAYS.index(d) for d in w.days) if w.days is not None else None,
    )


def _in_hours(window: tuple[int, int], minute: int) -> bool:
    start, end = window
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end  # wraps midnight


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class Router:
    """The compiled routing rules of one configuration, for one site time zone."""

    def __init__(self, rules: Sequence[RoutingRule], zone: tzinfo) -> None:
        self.zone = zone
        self._rules = [_compile(r) for r in rules]

    @property
    def rules(self) -> list[RoutingRule]:
        return [c.rule for c in self._rules]

    def route(self, query: RouteQuery, department_for_cell: DepartmentForCell) -> RouteDecision:
        local = query.at.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        weekday = local.weekday()
        trace: list[TraceStep] = []
        looked_up: dict[str, str | None] = {}
        for c in self._rules:
            miss = self._miss(c, query, minute, weekday)
            name = c.rule.name
            if miss is not None:
                trace.append(TraceStep(name, False, *miss))
                continue
            if c.rule.department is not None:
                trace.append(TraceStep(name, True, "matched", "department", (c.rule.department,)))
                return RouteDecision(name, c.rule.department, trace)
            line = c.rule.line or ""
            if query.cell_id is None:
                trace.append(TraceStep(name, False, "no_cell", "no_cell", (line,)))
                continue
            if line not in looked_up:  # several rules may name one line: ask once
                looked_up[line] = department_for_cell(query.cell_id, line)
            department = looked_up[line]
            if department is None:
                trace.append(
                    TraceStep(name, False, "no_department", "no_department", (query.cell_id, line))
                )
                continue
            trace.append(
                TraceStep(name, True, "matched", "line", (query.cell_id, line, department))
            )
            return RouteDecision(name, department, trace)
        return RouteDecision(None, None, trace)

    @staticmethod
    def _miss(  # noqa: PLR0911 - one early return per condition reads best
        c: _Compiled, q: RouteQuery, minute: int, weekday: int
    ) -> tuple[str, str, tuple[Any, ...]] | None:
        """Why the rule's conditions do not hold (reason code, detail template and its
        arguments), or None when they do."""
        if c.categories is not None and q.category not in c.categories:
            return "category", "category", (q.category,)
        if c.levels is not None and q.level not in c.levels:
            return "level", "levels", (q.level.value,)
        if c.min_rank is not None and LEVEL_ORDER[q.level] < c.min_rank:
            return "level", "min_level", (q.level.value,)
        if c.cells is not None and (q.cell_id is None or q.cell_id not in c.cells):
            return "cell", "cell", (q.cell_id or "(none)",)
        if c.area is not None and (
            q.lon is None or q.lat is None or not shapely.intersects_xy(c.area, q.lon, q.lat)
        ):
            return "area", "area", ()
        if c.hours is not None and not _in_hours(c.hours, minute):
            start, end = c.hours
            return "hours", "hours", (_hhmm(minute), _hhmm(start), _hhmm(end))
        if c.days is not None and weekday not in c.days:
            return "day", "day", (WEEKDAYS[weekday],)
        return None
