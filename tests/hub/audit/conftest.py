"""A real store (SQLite, and PostgreSQL where a test takes ``db_url``) with a keyed audit trail
whose key files and checkpoint file live in the test's own directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from edge.validators import utcnow
from hub.audit import AuditPaths, AuditSettings, AuditTrail
from hub.config import AuditConfig
from hub.store import Store


@dataclass
class Keyed:
    trail: AuditTrail
    paths: AuditPaths
    config: AuditConfig

    @property
    def key(self) -> bytes:
        assert self.trail.settings.key is not None
        return self.trail.settings.key


TrailFactory = Callable[..., Keyed]


def audit_config(directory: Path, every_records: int = 5, every_minutes: float = 10) -> AuditConfig:
    # key_env=None: a GRIDWARD_AUDIT_KEY in the test runner's environment must not leak in.
    return AuditConfig(
        directory=directory,
        key_env=None,
        checkpoint_every_records=every_records,
        checkpoint_every_minutes=every_minutes,
    )


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path}/hub.sqlite")
    yield s
    s.close()


@pytest.fixture
def make_trail(tmp_path: Path) -> TrailFactory:
    def make(
        store: Store,
        every_records: int = 5,
        every_minutes: float = 10,
        clock: Callable[[], datetime] = utcnow,
    ) -> Keyed:
        config = audit_config(tmp_path / "audit", every_records, every_minutes)
        paths = AuditPaths.resolve(config, store.url)
        trail = AuditTrail(store.engine, AuditSettings.open(config, paths), clock=clock)
        return Keyed(trail, paths, config)

    return make
