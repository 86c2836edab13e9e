"""Watchlist rules on the real store (SQLite, and PostgreSQL once), with the real face models:
governance refusals, the two-person approval, expiry, the hooks bundles and matches read."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from edge.faces.backends import FaceBackendConfig
from edge.faces.quality import QualityConfig
from hub.audit import AuditTrail
from hub.auth import Role
from hub.clock import ManualClock
from hub.errors import Conflict, Forbidden, Invalid
from hub.schema import audit_log, watchlist_entries
from hub.store import Store
from hub.watchlists import repository as repo
from hub.watchlists.config import WatchlistsConfig
from hub.watchlists.faces import FaceEngine
from hub.watchlists.photos import PhotoVault
from hub.watchlists.service import EnrolInput, WatchlistService
from tests.hub.watchlists.conftest import models_dir, photo, principal

MODEL = "sface-2021dec"
DIM = 128
OPERATOR = principal("olga", Role.OPERATOR)
COMMANDER = principal("chen", Role.COMMANDER)
COMMANDER2 = principal("wang", Role.COMMANDER)
AUDITOR = principal("ada", Role.AUDITOR)


@dataclass
class World:
    store: Store
    clock: ManualClock
    service: WatchlistService
    changes: list[str]

    def item(self, **overrides: object) -> EnrolInput:
        base = EnrolInput(
            label="Zhang San",
            category="wanted_person",
            reason="suspect in robbery case 2026-114",
            legal_basis="warrant 2026-WX-0041, district court",
            expires_at=self.clock.now() + timedelta(days=30),
            photo=photo("obama"),
            photo_type="image/jpeg",
        )
        return replace(base, **overrides)  # type: ignore[arg-type]

    def actions(self) -> list[tuple[str, str, str]]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(audit_log.c.actor, audit_log.c.action, audit_log.c.target)
                .where(audit_log.c.action.like("watchlist.%"))
                .order_by(audit_log.c.seq)
            ).all()
        return [(r.actor, r.action, r.target) for r in rows]


@pytest.fixture(scope="module")
def engine_faces() -> FaceEngine:
    return FaceEngine(FaceBackendConfig(models_dir=models_dir()), QualityConfig())


def _world(url: str, tmp_path: Path, faces: FaceEngine) -> Iterator[World]:
    store = Store(url)
    clock = ManualClock()
    service = WatchlistService(
        store.engine,
        AuditTrail(store.engine),
        WatchlistsConfig(max_expiry_days=90),
        vault=PhotoVault(tmp_path / "secrets" / "watchlist-photos.key"),
        faces=faces,
        clock=clock,
    )
    changes: list[str] = []
    service.on_change.append(lambda: changes.append("changed"))
    yield World(store, clock, service, changes)
    store.close()


@pytest.fixture
def world(db_url: str, tmp_path: Path, engine_faces: FaceEngine) -> Iterator[World]:
    """On SQLite and on PostgreSQL: the repository's SQL runs on both."""
    yield from _world(db_url, tmp_path, engine_faces)


@pytest.fixture
def sqlite_world(tmp_path: Path, engine_faces: FaceEngine) -> Iterator[World]:
    """Rules that do not depend on the database: SQLite only (suite time)."""
    yield from _world(f"sqlite:///{tmp_path}/hub.sqlite", tmp_path, engine_faces)


def test_two_person_rule_lifecycle_and_hooks(world: World) -> None:
    """Pending entries are in no bundle; the enroller cannot approve; another approver can;
    revocation takes it out; each step is audited with actor and entry id; the listeners run
    after each change of the active set, and only then."""
    s = world.service
    entry = s.enrol(OPERATOR, world.item())
    assert entry.status == "pending" and entry.enrolled_by == "olga"
    assert entry.model == MODEL and entry.dim == DIM
    with world.store.engine.connect() as conn:
        assert repo.active_embeddings(conn, MODEL, world.clock.now()) == []
    assert world.changes == []

    own = s.enrol(COMMANDER, world.item(label="Li Si"))
    with pytest.raises(Forbidden) as refused:
        s.approve(COMMANDER, own.id)
    assert refused.value.code == "governance.own_entry"
    with pytest.raises(Forbidden) as no_perm:
        s.approve(OPERATOR, own.id)
    assert no_perm.value.code == "governance.not_an_approver"

    s.approve(COMMANDER, entry.id)
    assert world.changes == ["changed"]
    with pytest.raises(Conflict):  # approving twice changes nothing
        s.approve(COMMANDER2, entry.id)
    with world.store.engine.connect() as conn:
        active = repo.active_embeddings(conn, MODEL, world.clock.now())
        assert repo.active_embeddings(conn, "other-model", world.clock.now()) == []
        summaries = repo.entry_summaries(conn, [entry.id, own.id, "nope"])
    assert [a[0] for a in active] == [entry.id]
    vector = np.frombuffer(active[0][2], dtype=np.float32)
    assert vector.shape == (DIM,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-4
    assert set(summaries) == {entry.id, own.id}
    assert summaries[entry.id].status == "active" and summaries[own.id].status == "pending"
    assert summaries[entry.id].label == "Zhang San"

    s.refuse(COMMANDER2, own.id, "no warrant attached")
    assert s.get(own.id).status == "refused"
    assert world.changes == ["changed"]  # a refused pending entry never was active
    s.revoke(OPERATOR, entry.id, "suspect arrested")
    assert world.changes == ["changed", "changed"]
    with world.store.engine.connect() as conn:
        assert repo.active_embeddings(conn, MODEL, world.clock.now()) == []
    with pytest.raises(Conflict):
        s.revoke(OPERATOR, entry.id, "again")
    assert world.actions() == [
        ("olga", "watchlist.enrol", entry.id),
        ("chen", "watchlist.enrol", own.id),
        ("chen", "watchlist.approve", entry.id),
        ("wang", "watchlist.refuse", own.id),
        ("olga", "watchlist.revoke", entry.id),
    ]


def test_expiry_drops_entries_at_expires_at_then_the_sweeper_records_it(world: World) -> None:
    s = world.service
    entry = s.enrol(OPERATOR, world.item(expires_at=world.clock.now() + timedelta(days=2)))
    stale = s.enrol(OPERATOR, world.item(expires_at=world.clock.now() + timedelta(days=1)))
    s.approve(COMMANDER, entry.id)
    world.changes.clear()
    world.clock.advance(timedelta(days=2))
    now = world.clock.now()
    # Before any sweep: nothing active, both read as expired, the pending one cannot be approved.
    with world.store.engine.connect() as conn:
        assert repo.active_embeddings(conn, MODEL, now) == []
        assert repo.entry_summaries(conn, [entry.id], now)[entry.id].status == "expired"
    assert {r.id for r in s.page("expired", limit=10, after=None)} == {entry.id, stale.id}
    assert s.page("active", limit=10, after=None) == []
    with pytest.raises(Conflict):
        s.approve(COMMANDER, stale.id)
    assert s.expire_due() == 2
    assert s.expire_due() == 0  # a second pass (or another replica) marks nothing again
    assert world.changes == ["changed"]
    assert ("system:watchlists", "watchlist.expire", entry.id) in world.actions()
    with world.store.engine.connect() as conn:
        stored = conn.execute(
            select(watchlist_entries.c.status).where(watchlist_entries.c.id == entry.id)
        ).scalar_one()
    assert stored == "expired"


GOVERNANCE_CASES: list[tuple[dict[str, object], str]] = [
    ({"reason": "  "}, "governance.missing_reason"),
    ({"legal_basis": ""}, "governance.missing_legal_basis"),
    ({"label": ""}, "governance.missing_label"),
    ({"category": "political_dissident"}, "governance.unknown_category"),
    ({"expires_at": "too_far"}, "governance.expiry_too_far"),
    ({"expires_at": "past"}, "governance.expiry_in_past"),
    ({"reason": "x" * 1001}, "governance.reason_too_long"),
]


def test_governance_refusals_write_nothing(sqlite_world: World) -> None:
    world = sqlite_world
    now = world.clock.now()
    for case, code in GOVERNANCE_CASES:
        overrides = case
        if case.get("expires_at") == "too_far":
            overrides = {"expires_at": now + timedelta(days=90, seconds=1)}
        elif case.get("expires_at") == "past":
            overrides = {"expires_at": now - timedelta(seconds=1)}
        with pytest.raises(Invalid) as refused:
            world.service.enrol(OPERATOR, world.item(**overrides))
        assert refused.value.code == code, case
        assert str(refused.value)  # a sentence for the user
    with world.store.engine.connect() as conn:
        assert conn.execute(select(watchlist_entries.c.id)).first() is None
    assert world.actions() == []
    # The limit itself is allowed.
    entry = world.service.enrol(OPERATOR, world.item(expires_at=now + timedelta(days=90)))
    assert entry.status == "pending"


def test_enrolment_needs_the_permission(sqlite_world: World) -> None:
    with pytest.raises(Forbidden):
        sqlite_world.service.enrol(AUDITOR, sqlite_world.item())


def test_pose_rule_refuses_a_turned_face(sqlite_world: World) -> None:
    """obama2 is turned (about 18 degrees of yaw from its landmarks): a strict pose limit
    refuses it as extreme_pose while the frontal obama passes."""
    world = sqlite_world
    strict = FaceEngine(FaceBackendConfig(models_dir=models_dir()), QualityConfig(max_yaw_deg=12))
    service = WatchlistService(
        world.store.engine,
        AuditTrail(world.store.engine),
        WatchlistsConfig(),
        vault=world.service.vault,
        faces=strict,
        clock=world.clock,
    )
    with pytest.raises(Invalid) as refused:
        service.enrol(OPERATOR, world.item(photo=photo("obama2")))
    assert refused.value.code == "quality.extreme_pose"
    assert service.enrol(OPERATOR, world.item()).status == "pending"


def test_a_failing_listener_neither_undoes_nor_hides_the_change(sqlite_world: World) -> None:
    world = sqlite_world

    def broken() -> None:
        raise RuntimeError("bundle builder down")

    world.service.on_change.insert(0, broken)
    entry = world.service.enrol(OPERATOR, world.item())
    assert world.service.approve(COMMANDER, entry.id).status == "active"
    assert world.changes == ["changed"]  # the listener after the broken one still ran
    assert world.service.stats_snapshot()["on_change_errors"] == 1
