"""A real hub on loopback (the provisioning API the play calls)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hub.conftest import RunningHub, start_hub, stop_hub
from tests.support.broker import BrokerHarness


@pytest.fixture
def hub(broker: BrokerHarness, site: str, tmp_path: Path) -> Iterator[RunningHub]:
    running = start_hub(broker, site, tmp_path)
    yield running
    stop_hub(broker, running)
