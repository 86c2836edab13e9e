"""Two hub replicas on one PostgreSQL react to the same changes at the same moment (each
replica's sweeper sees an expiry, each hears a change): every change gives exactly one new
version, numbers are never issued twice, each device gets one envelope per version, and the
audit chain the two wrote together verifies."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import func, select

from edge.faces.keys import public_key_b64
from edge.protocol import Channel, DeviceKind, DeviceState, DeviceStatus
from hub.audit import verify
from hub.bundles.config import BundlesConfig
from hub.bundles.service import BundleService, SyncResult
from hub.bundles.signing import LazySigningKey
from hub.clock import ManualClock
from hub.commands.outbox import CommandOutbox
from hub.schema import bundle_pushes, bundle_versions, command_outbox
from hub.store import Store
from tests.hub.bundles.test_service import SITE, Watchlist, _vector, add_device, inbound
from tests.hub.dispatch.test_replicas import _race
from tests.support.incident_timers import shared_audit
from tests.support.postgres import PostgresCluster

DEVICES = ("cam-1", "cam-2", "gl-1")
ROUNDS = 4


@pytest.mark.postgres
def test_two_replicas_never_issue_a_version_twice(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    url = postgres.new_database()
    stores = [Store(url), Store(url, migrate=False)]
    clock = ManualClock()
    watchlist = Watchlist()
    signing = tmp_path / "secrets" / "watchlist-signing.key"  # one key, shared like the audit's
    replicas = [
        BundleService(
            s.engine,
            shared_audit(s, tmp_path / "audit"),
            BundlesConfig(),
            CommandOutbox(),
            LazySigningKey(signing),
            clock=clock,
            hub_id=f"hub-{i}",
            active_set=watchlist.active,
        )
        for i, s in enumerate(stores)
    ]
    try:
        engine = stores[0].engine
        for n, device in enumerate(DEVICES):
            kind = "glasses" if device.startswith("gl") else "camera"
            add_device(engine, device, kind, clock.now())
            state = DeviceState(
                site=SITE,
                device=device,
                state=DeviceStatus.ONLINE,
                kind=DeviceKind(kind),
                bundle_key_b64=public_key_b64(X25519PrivateKey.generate()),
            )
            # Shared subscriptions hand each state to one replica: alternate them.
            replicas[n % 2].on_stored([inbound(kind, device, Channel.STATE, state)])
        for n in range(ROUNDS):
            watchlist.rows[f"e{n}"] = (clock.now() + timedelta(days=10), _vector(n))
            results: list[SyncResult] = _race([r.sync for r in replicas])
            assert sorted(r.issued for r in results) == [False, True], results
            assert {r.version for r in results} == {n + 1}
            pushed = sorted(d for r in results for d in r.pushed)
            assert pushed == sorted(DEVICES)
        with engine.connect() as conn:
            versions = conn.execute(
                select(bundle_versions.c.version, bundle_versions.c.entries).order_by(
                    bundle_versions.c.version
                )
            ).all()
            per_device = conn.execute(
                select(bundle_pushes.c.device, func.count()).group_by(bundle_pushes.c.device)
            ).all()
            commands = conn.execute(select(func.count()).select_from(command_outbox)).scalar()
        assert [tuple(v) for v in versions] == [(n + 1, n + 1) for n in range(ROUNDS)]
        assert dict(per_device) == dict.fromkeys(DEVICES, ROUNDS)
        assert commands == ROUNDS * len(DEVICES)
        result = verify(engine, key=replicas[0].audit.settings.key)
        assert result.ok, result.failures
    finally:
        for s in stores:
            s.close()
