"""The printable summary page in real Chromium: no CSP violation, the stylesheet applies,
the figures equal the API's, text is escaped, and it prints to PDF."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import update

from hub.auth import Role
from hub.i18n import Language, translate
from hub.schema import grid_cells
from tests.hub.conftest import RunningHub
from tests.hub.incstats.seeding import T0

Seeded = tuple[RunningHub, dict[str, str]]
NUMBERS = ("opened", "open", "resolved", "closed", "overdue")
TIMES = {
    "resolve_median_s": ("time_to_resolve", "median_s"),
    "resolve_mean_s": ("time_to_resolve", "mean_s"),
    "resolve_p90_s": ("time_to_resolve", "p90_s"),
    "close_median_s": ("time_to_close", "median_s"),
    "close_mean_s": ("time_to_close", "mean_s"),
    "close_p90_s": ("time_to_close", "p90_s"),
}


def _open(chromium: Browser, hub: RunningHub, path: str) -> tuple[Page, list[str]]:
    token = hub.client(Role.AUDITOR).headers["Authorization"]
    context = chromium.new_context(extra_http_headers={"Authorization": token})
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    response = page.goto(hub.base_url + path)
    assert response is not None and response.status == 200
    return page, problems


def _table_rows(page: Page, by: str) -> dict[str, dict[str, str]]:
    rows: Any = page.eval_on_selector_all(
        f"table[data-by='{by}'] tbody tr",
        """rows => rows.map(r => Object.fromEntries(
            [...r.querySelectorAll('[data-col]')].map(c =>
                [c.dataset.col, c.dataset.col === 'name' ? c.dataset.key : c.dataset.value])))""",
    )
    return {r["name"]: r for r in rows}


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_summary_page_shows_the_api_figures_and_prints(
    seeded_hub: Seeded, chromium: Browser, lang: Language
) -> None:
    hub, _ = seeded_hub
    query = f"since={T0.isoformat().replace('+', '%2B')}&site={hub.site}&lang={lang}"
    page, problems = _open(chromium, hub, f"/api/v1/incident-stats/summary.html?{query}")
    try:
        assert page.locator("h1").inner_text() == translate("incstats.title", lang)
        assert page.get_attribute("html", "lang") == lang
        # the stylesheet loaded under the CSP (no inline style is allowed, none is used)
        collapse = page.eval_on_selector("table", "t => getComputedStyle(t).borderCollapse")
        assert collapse == "collapse"
        api = hub.client(Role.AUDITOR)
        for by in ("cell", "department", "category", "worker"):
            expected = api.get(
                "/api/v1/incident-stats",
                params={"by": by, "since": T0.isoformat(), "site": hub.site, "lang": lang},
            ).json()["items"]
            shown = _table_rows(page, by)
            assert set(shown) == {i["key"] or "" for i in expected}, by
            for item in expected:
                row = shown[item["key"] or ""]
                for column in NUMBERS:
                    assert int(row[column]) == item[column], (by, item["key"], column)
                for column, (group, part) in TIMES.items():
                    value = item[group][part]
                    assert (float(row[column]) if row[column] else None) == value
        assert page.locator("p.total").get_attribute("data-value") == "6"
        # the noise incident's title never reaches the page, and no markup from data runs
        assert page.locator("b").count() == 0
        heading = translate("incstats.by.worker", lang)
        assert page.get_by_role("heading", name=heading).is_visible()
        pdf = page.pdf(format="A4", landscape=True)
        assert pdf.startswith(b"%PDF-") and len(pdf) > 1000
        assert not problems, problems
    finally:
        page.context.close()


@pytest.mark.browser
def test_summary_page_escapes_names_and_shows_site_times(
    seeded_hub: Seeded, chromium: Browser
) -> None:
    hub, _ = seeded_hub
    with hub.service.store.engine.begin() as conn:
        conn.execute(
            update(grid_cells)
            .where(grid_cells.c.id == "c1")
            .values(name="<img src=x onerror=alert(1)>North")
        )
    page, problems = _open(chromium, hub, f"/api/v1/incident-stats/summary.html?site={hub.site}")
    try:
        cell = page.locator("table[data-by='cell'] th[data-key='c1']")
        assert cell.inner_text() == "<img src=x onerror=alert(1)>North"
        assert page.locator("img").count() == 0
        # the site's zone is UTC by default, and the page says so
        assert "(UTC)" in page.locator("p.generated").inner_text()
        assert not problems, problems
    finally:
        page.context.close()
