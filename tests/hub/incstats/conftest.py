"""A running hub seeded with the statistics scenario, and Chromium for the summary page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.hub.conftest import RunningHub
from tests.hub.dashboard.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.hub.incstats.seeding import Seeder, seed_district


@pytest.fixture
def seeded_hub(hub: RunningHub) -> tuple[RunningHub, dict[str, str]]:
    service = hub.service
    seeder = Seeder(service.store.engine, service.ctx.incidents, hub.site)
    return hub, seed_district(seeder)


@pytest.fixture
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: apt-get install chromium (bootstrap does)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
