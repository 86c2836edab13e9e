"""Fixtures for the incident tests: a migrated store (SQLite by default)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path}/incidents.sqlite")
    yield s
    s.close()
