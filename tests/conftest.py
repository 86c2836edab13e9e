"""Shared fixtures: a real Mosquitto, unique topic prefixes, and leak checks."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.broker import BrokerHarness, unique_site
from tests.support.postgres import PostgresCluster


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHarness]:
    """One real broker for the session; tests isolate themselves with :func:`site`."""
    harness = BrokerHarness(tmp_path_factory.mktemp("broker"))
    harness.start()
    yield harness
    harness.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[BrokerHarness]:
    """A broker this test may kill and restart."""
    harness = BrokerHarness(tmp_path / "own-broker")
    harness.start()
    yield harness
    harness.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A private PostgreSQL cluster for the session (initdb + pg_ctl on a free port)."""
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on the embedded SQLite store and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/hub.sqlite"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.new_database()


@pytest.fixture
def site() -> str:
    return unique_site()


def _snapshot() -> tuple[set[int], set[int], int]:
    me = psutil.Process()
    threads = {t.ident for t in threading.enumerate() if t.ident is not None}
    children = {p.pid for p in me.children(recursive=True)}
    sockets = len(me.net_connections(kind="inet"))
    return threads, children, sockets


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves threads, child processes or sockets behind."""
    threads0, children0, sockets0 = _snapshot()
    yield
    if request.node.get_closest_marker("allow_leaks"):
        return
    deadline = time.monotonic() + 5.0
    while True:
        threads, children, sockets = _snapshot()
        new_threads = threads - threads0
        new_children = children - children0
        if (not new_threads and not new_children and sockets <= sockets0) or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(0.05)
    names = [t.name for t in threading.enumerate() if t.ident in new_threads]
    assert not names, f"test leaked threads: {names}"
    assert not new_children, f"test leaked child processes: {sorted(new_children)}"
    assert sockets <= sockets0, (
        f"test leaked {sockets - sockets0} socket(s): "
        f"{psutil.Process().net_connections(kind='inet')}"
    )
