"""The printable summary page: server-rendered HTML, every string from the catalogue, every
value escaped, times in the site's zone. No script and no inline style (the hub's CSP): the
print layout is the stylesheet ``static/summary.css``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from hub.i18n import Language, translate
from hub.incstats.repository import Dimension
from hub.incstats.service import Durations, StatsRow

STYLESHEET = "/api/v1/incident-stats/summary.css"


@dataclass(frozen=True, slots=True)
class Summary:
    lang: Language
    zone: ZoneInfo
    generated_at: datetime
    site: str | None
    since: datetime | None
    until: datetime | None
    total: int
    tables: Sequence[tuple[Dimension, Sequence[StatsRow]]]


def _t(lang: Language, key: str, **params: object) -> str:
    return escape(translate(key, lang, **params))


def local_time(ts: datetime, zone: ZoneInfo) -> str:
    return ts.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def duration(lang: Language, seconds: float | None) -> str:
    """A human duration: minutes under two hours, hours under two days, else days."""
    if seconds is None:
        return translate("incstats.no_value", lang)
    if seconds < 2 * 3600:
        return translate("incstats.minutes", lang, value=f"{seconds / 60:.0f}")
    if seconds < 2 * 86400:
        return translate("incstats.hours", lang, value=f"{seconds / 3600:.1f}")
    return translate("incstats.days", lang, value=f"{seconds / 86400:.1f}")


def _number_cell(column: str, value: int | None) -> str:
    shown = "" if value is None else str(value)
    return f'<td class="num" data-col="{column}" data-value="{shown}">{shown}</td>'


def _duration_cells(lang: Language, prefix: str, d: Durations) -> list[str]:
    cells = []
    for part, value in (("median", d.median_s), ("mean", d.mean_s), ("p90", d.p90_s)):
        raw = "" if value is None else repr(value)
        cells.append(
            f'<td class="num" data-col="{prefix}_{part}_s" data-value="{raw}">'
            f"{escape(duration(lang, value))}</td>"
        )
    return cells


def _table(lang: Language, by: Dimension, rows: Sequence[StatsRow]) -> str:
    worker = by == "worker"
    heads = ["name", "opened", "open", "resolved", "closed", "overdue"]
    if worker:
        heads += ["reported", "assigned"]
    heads += [
        f"{kind}_{part}" for kind in ("resolve", "close") for part in ("median", "mean", "p90")
    ]
    head = "".join(f'<th scope="col">{_t(lang, "incstats.col." + h)}</th>' for h in heads)
    body: list[str] = []
    for row in rows:
        name = row.name or row.key or translate("incstats.none_key", lang)
        key = "" if row.key is None else row.key
        cells = [f'<th scope="row" data-col="name" data-key="{escape(key)}">{escape(name)}</th>']
        cells.extend(
            _number_cell(column, getattr(row, column))
            for column in ("opened", "open", "resolved", "closed", "overdue")
        )
        if worker:
            cells += [
                _number_cell("reported", row.reported),
                _number_cell("assigned", row.assigned),
            ]
        cells += _duration_cells(lang, "resolve", row.to_resolve)
        cells += _duration_cells(lang, "close", row.to_close)
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not rows:
        span = len(heads)
        body.append(
            f'<tr><td colspan="{span}" class="empty">{_t(lang, "incstats.empty")}</td></tr>'
        )
    return (
        f'<section class="by" id="by-{by}" aria-labelledby="h-{by}">'
        f'<h2 id="h-{by}">{_t(lang, "incstats.by." + by)}</h2>'
        f'<table data-by="{by}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></section>"
    )


def render(summary: Summary) -> str:
    lang, zone = summary.lang, summary.zone
    since = (
        local_time(summary.since, zone)
        if summary.since
        else translate("incstats.window_start", lang)
    )
    until = (
        local_time(summary.until, zone) if summary.until else translate("incstats.window_now", lang)
    )
    site = (
        _t(lang, "incstats.site", site=summary.site)
        if summary.site
        else _t(lang, "incstats.all_sites")
    )
    tables = "".join(_table(lang, by, rows) for by, rows in summary.tables)
    generated = _t(
        lang, "incstats.generated", at=local_time(summary.generated_at, zone), zone=zone.key
    )
    return (
        "<!doctype html>\n"
        f'<html lang="{escape(lang)}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_t(lang, 'incstats.title')}</title>\n"
        # An empty icon: otherwise the browser asks the hub for /favicon.ico and logs a 404.
        '<link rel="icon" href="data:,">\n'
        f'<link rel="stylesheet" href="{STYLESHEET}">\n</head>\n<body>\n'
        f"<header><h1>{_t(lang, 'incstats.title')}</h1>\n"
        f'<p class="site">{site}</p>\n'
        f'<p class="window">{_t(lang, "incstats.window", since=since, until=until)}</p>\n'
        f'<p class="generated">{generated}</p>\n'
        f'<p class="total" data-value="{summary.total}">'
        f"{_t(lang, 'incstats.total', count=summary.total)}</p></header>\n"
        f"<main>{tables}</main>\n"
        f"<footer><p>{_t(lang, 'incstats.note')}</p></footer>\n"
        "</body>\n</html>\n"
    )
