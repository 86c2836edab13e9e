"""Bundle rules on the real store (SQLite), the real audit trail, the real command outbox and
the real seal/open crypto, time moved by a manual clock: device keys from DeviceState, one
version per change of the active set, expiry and refresh, retired devices, the wire limit, and
the devices' answers (including a forged one). The active set is the one input faked here: a
list standing in for the watchlists area (tests/hub/bundles/test_push_e2e.py uses the real one).
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import Connection, Engine, func, select, update

from edge.faces.bundle import BundleRefusedError, assemble_parts, open_bundle, open_part
from edge.faces.keys import public_key_b64
from edge.protocol import (
    Channel,
    CmdChannel,
    DeviceKind,
    DeviceState,
    DeviceStatus,
    Inbound,
    Message,
    Reply,
    WatchlistBundleEnvelope,
    decode_as,
    decode_device_message,
    device_topic,
    encode,
)
from hub.audit import AuditTrail
from hub.bundles.config import DEFAULT_MODEL, BundlesConfig
from hub.bundles.service import BundleService
from hub.bundles.signing import LazySigningKey
from hub.clock import ManualClock
from hub.commands.outbox import CommandOutbox
from hub.schema import audit_log, bundle_devices, bundle_versions, command_outbox, devices
from hub.store import Store
from tests.support.incident_timers import shared_audit

SITE = "s1"
DAY = timedelta(days=1)


def _vector(seed: int, dim: int = 128) -> bytes:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return (v / np.linalg.norm(v)).astype(np.float32).tobytes()


@dataclass
class Watchlist:
    """The active set as hub.watchlists.repository.active_embeddings answers it."""

    rows: dict[str, tuple[datetime, bytes]] = field(default_factory=dict)
    calls: int = 0

    def active(
        self, _conn: Connection, model: str, now: datetime
    ) -> list[tuple[str, datetime, bytes]]:
        assert model == DEFAULT_MODEL
        self.calls += 1
        return [(k, exp, emb) for k, (exp, emb) in sorted(self.rows.items()) if exp > now]


@dataclass
class Rig:
    store: Store
    service: BundleService
    clock: ManualClock
    watchlist: Watchlist
    audit: AuditTrail
    keys: dict[str, X25519PrivateKey] = field(default_factory=dict)

    def add_device(self, device: str, kind: str = "camera") -> None:
        add_device(self.store.engine, device, kind, self.clock.now())

    def state(
        self,
        device: str,
        *,
        key: str | None = None,
        version: int | None = None,
        kind: str = "camera",
    ) -> Inbound:
        msg = DeviceState(
            site=SITE,
            device=device,
            state=DeviceStatus.ONLINE,
            kind=DeviceKind(kind),
            bundle_key_b64=key,
            watchlist_version=version,
        )
        return inbound(kind, device, Channel.STATE, msg)

    def register(self, device: str, kind: str = "camera") -> X25519PrivateKey:
        self.add_device(device, kind)
        key = X25519PrivateKey.generate()
        self.keys[device] = key
        self.service.on_stored([self.state(device, key=public_key_b64(key), kind=kind)])
        return key

    def envelopes(self, device: str) -> list[tuple[str, WatchlistBundleEnvelope]]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(command_outbox.c.state, command_outbox.c.payload)
                .where(
                    command_outbox.c.device == device,
                    command_outbox.c.channel == CmdChannel.WATCHLIST.value,
                )
                .order_by(command_outbox.c.id)
            ).all()
        return [(r.state, decode_as(WatchlistBundleEnvelope, bytes(r.payload))) for r in rows]

    def latest(self, device: str) -> WatchlistBundleEnvelope:
        return self.envelopes(device)[-1][1]

    def open(
        self, device: str, envelope: WatchlistBundleEnvelope | None = None, applied: int = 0
    ) -> list[str]:
        key = self.service.signing_key()
        payload = open_bundle(
            envelope or self.latest(device),
            site=SITE,
            device=device,
            device_key=self.keys[device],
            hub_keys={key.key_id: key.private.public_key()},
            applied_version=applied,
            now=self.clock.now(),
            max_age_s=2 * 86_400,
            model=DEFAULT_MODEL,
        )
        return [e.entry_id for e in payload.entries]

    def open_parts(self, device: str, parts: list[WatchlistBundleEnvelope]) -> list[str]:
        key = self.service.signing_key()
        opened = [open_part(p, site=SITE, device=device, device_key=self.keys[device],
                            hub_keys={key.key_id: key.private.public_key()}, applied_version=0,
                            now=self.clock.now(), max_age_s=2 * 86_400) for p in parts]
        return list(assemble_parts(parts, opened, DEFAULT_MODEL).entry_ids())

    def actions(self, action: str) -> list[tuple[str, dict[str, object]]]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(audit_log.c.target, audit_log.c.details)
                .where(audit_log.c.action == action)
                .order_by(audit_log.c.seq)
            ).all()
        return [(r.target, r.details) for r in rows]

    def device(self, device: str) -> object:
        with self.store.engine.connect() as conn:
            return conn.execute(
                select(bundle_devices).where(bundle_devices.c.device == device)
            ).one()


def add_device(engine: Engine, device: str, kind: str, now: datetime) -> None:
    """A provisioned, active device in the registry (as ``POST /devices`` leaves it)."""
    with engine.begin() as conn:
        conn.execute(
            devices.insert().values(
                id=device, site=SITE, kind=kind, name="", status="active", created_at=now
            )
        )


def inbound(kind: str, device: str, channel: Channel, msg: Message) -> Inbound:
    return decode_device_message(device_topic(SITE, kind, device, channel), encode(msg))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated database per module; each test copies it (migrating costs ~0.4 s)."""
    path = tmp_path_factory.mktemp("bundles") / "template.sqlite"
    Store(f"sqlite:///{path}").close()
    return path


@pytest.fixture
def rig(template: Path, tmp_path: Path) -> Iterator[Rig]:
    db = tmp_path / "hub.sqlite"
    shutil.copy(template, db)
    store = Store(f"sqlite:///{db}", migrate=False)
    clock = ManualClock()
    audit = shared_audit(store, tmp_path / "audit")
    watchlist = Watchlist()
    service = BundleService(
        store.engine,
        audit,
        BundlesConfig(),
        CommandOutbox(),
        LazySigningKey(tmp_path / "secrets" / "watchlist-signing.key"),
        clock=clock,
        hub_id="hub-a",
        active_set=watchlist.active,
    )
    yield Rig(store, service, clock, watchlist, audit)
    store.close()


def test_a_registered_device_gets_the_signed_sealed_version_and_each_change_a_new_one(
    rig: Rig,
) -> None:
    rig.watchlist.rows["e1"] = (rig.clock.now() + 10 * DAY, _vector(1))
    assert rig.service.sync().version == 1  # no device yet: a version, nothing pushed
    rig.register("cam-1")
    assert [t for t, _ in rig.actions("bundle.device_key_changed")] == ["cam-1"]
    first = rig.service.sync()
    assert (first.version, first.issued, first.pushed) == (1, False, ("cam-1",))
    assert rig.open("cam-1") == ["e1"]
    # Nothing changed: no version, no push, no write.
    assert rig.service.sync() == type(first)(1, False, (), ())
    rig.watchlist.rows["e2"] = (rig.clock.now() + 10 * DAY, _vector(2))
    second = rig.service.sync()
    assert (second.version, second.issued, second.pushed) == (2, True, ("cam-1",))
    assert rig.open("cam-1", applied=1) == ["e1", "e2"]
    # The older envelope stops being retried: the retained one on the broker is the newest.
    assert [s for s, _ in rig.envelopes("cam-1")] == ["superseded", "pending"]
    del rig.watchlist.rows["e1"]  # revoked
    assert rig.service.sync().version == 3
    assert rig.open("cam-1", applied=2) == ["e2"]
    del rig.watchlist.rows["e2"]  # the last one: an empty bundle still goes out (a regression)
    assert rig.service.sync().pushed == ("cam-1",)
    assert rig.open("cam-1", applied=3) == []
    pushes = rig.actions("bundle.push")
    assert [(t, d["version"], d["entries"]) for t, d in pushes] == [
        ("cam-1", 1, 1),
        ("cam-1", 2, 2),
        ("cam-1", 3, 1),
        ("cam-1", 4, 0),
    ]
    assert all("embedding" not in str(d) for _, d in pushes)
    # Another device's key cannot open cam-1's bundle.
    rig.register("cam-2")
    rig.keys["cam-2"], real = rig.keys["cam-1"], rig.keys["cam-2"]
    with pytest.raises(BundleRefusedError):
        rig.open("cam-2", rig.latest("cam-1"))
    rig.keys["cam-2"] = real


def test_expiry_wakes_the_sweeper_and_refresh_keeps_the_bundle_alive(rig: Rig) -> None:
    now = rig.clock.now()
    rig.watchlist.rows["soon"] = (now + timedelta(hours=2), _vector(3))
    rig.watchlist.rows["later"] = (now + 30 * DAY, _vector(4))
    rig.register("cam-1")
    assert rig.service.sync().version == 1
    assert rig.service._next_due == now + timedelta(hours=2)  # the sweeper's next look
    rig.clock.advance(timedelta(hours=2, seconds=1))
    expired = rig.service.sync()
    assert (expired.version, expired.pushed) == (2, ("cam-1",))
    assert rig.open("cam-1", applied=1) == ["later"]
    # Same entries, but half the bundle's lifetime has gone: a fresh version with a new expiry.
    assert rig.service._next_due == rig.clock.now() + timedelta(hours=12)
    rig.clock.advance(timedelta(hours=12))
    refreshed = rig.service.sync()
    assert (refreshed.version, refreshed.issued) == (3, True)
    env = rig.latest("cam-1")
    assert env.expires_at == rig.clock.now() + DAY
    with rig.store.engine.connect() as conn:
        reasons = (
            conn.execute(select(bundle_versions.c.reason).order_by(bundle_versions.c.version))
            .scalars()
            .all()
        )
    assert reasons == ["change", "change", "refresh"]


def test_a_changed_key_is_audited_and_gets_the_bundle_sealed_for_the_new_key(rig: Rig) -> None:
    rig.watchlist.rows["e1"] = (rig.clock.now() + 10 * DAY, _vector(1))
    old = rig.register("gl-1", kind="glasses")
    rig.service.sync()
    new = X25519PrivateKey.generate()
    rig.service.on_stored([rig.state("gl-1", key=public_key_b64(new), kind="glasses")])
    assert [d["first"] for _, d in rig.actions("bundle.device_key_changed")] == [True, False]
    result = rig.service.sync()
    assert (result.version, result.issued, result.pushed) == (1, False, ("gl-1",))
    rig.keys["gl-1"] = new
    assert rig.open("gl-1") == ["e1"]
    rig.keys["gl-1"] = old
    with pytest.raises(BundleRefusedError):
        rig.open("gl-1")
    # The same state again (it is retained, and resent on every reconnect) changes nothing.
    rig.service.on_stored([rig.state("gl-1", key=public_key_b64(new), kind="glasses")])
    assert len(rig.actions("bundle.device_key_changed")) == 2
    assert rig.service.sync().pushed == ()


def test_retired_devices_and_other_kinds_get_no_bundle(rig: Rig) -> None:
    rig.watchlist.rows["e1"] = (rig.clock.now() + 10 * DAY, _vector(1))
    rig.register("cam-1")
    rig.register("cam-old")
    rig.register("lidar-1", kind="lidar")  # not a face-matching kind: its key is ignored
    with rig.store.engine.begin() as conn:
        conn.execute(update(devices).where(devices.c.id == "cam-old").values(status="retired"))
    assert rig.service.sync().pushed == ("cam-1",)
    assert rig.envelopes("cam-old") == [] and rig.envelopes("lidar-1") == []
    listed = {s.device: s for s in rig.service.devices()}
    assert set(listed) == {"cam-1"}
    assert (listed["cam-1"].version_pushed, listed["cam-1"].entries) == (1, 1)


def test_unusable_keys_are_counted_and_never_recorded(rig: Rig) -> None:
    rig.add_device("cam-1")
    # A low-order X25519 point: matches the contract's pattern, but the shared secret would be
    # all zeros, so anyone could decrypt the bundle.
    zero = base64.b64encode(bytes(32)).decode()
    rig.service.on_stored([rig.state("cam-1", key=zero, version=0)])
    assert rig.service.stats_snapshot()["bad_device_keys"] == 1
    row = rig.device("cam-1")
    assert row.key_b64 is None and row.version_reported == 0  # type: ignore[attr-defined]
    # An unprovisioned device id (hub run with accept_unprovisioned) is not recorded at all.
    rig.service.on_stored([rig.state("cam-ghost", key=public_key_b64(X25519PrivateKey.generate()))])
    assert rig.actions("bundle.device_key_changed") == []


def _reply(rig: Rig, device: str, env: WatchlistBundleEnvelope, **kw: object) -> None:
    msg = Reply(site=SITE, device=device, request_id=env.id, **kw)  # type: ignore[arg-type]
    rig.service.on_stored([inbound("camera", device, Channel.REPLY, msg)])


def _status(rig: Rig, device: str) -> tuple[int | None, int | None, int | None]:
    listed = {d.device: d for d in rig.service.devices()}[device]
    return listed.version_applied, listed.parts, listed.parts_acknowledged


def test_a_bundle_over_one_envelope_goes_in_parts_with_progress_per_device(rig: Rig) -> None:
    rig.service.config = BundlesConfig(part_bytes=100_000)
    now = rig.clock.now()
    rig.watchlist.rows["e1"] = (now + 10 * DAY, _vector(1))
    rig.register("cam-1")
    assert rig.service.sync().pushed == ("cam-1",)
    assert _status(rig, "cam-1") == (None, 1, 0)  # one envelope
    _reply(rig, "cam-1", rig.latest("cam-1"), ok=True, result={"bundle_version": 1, "entries": 1})
    assert _status(rig, "cam-1") == (1, 1, 1)
    blob = _vector(9)
    for n in range(600):  # ~180 KB: 2 parts of 100 KB (the default part fills one message)
        rig.watchlist.rows[f"bulk-{n:05d}"] = (now + 10 * DAY, blob)
    assert rig.service.sync().pushed == ("cam-1",)
    sent = rig.envelopes("cam-1")
    # The v1 row is superseded (no publisher runs here to mark it answered); both v2 parts open.
    assert [(state, e.bundle_version, e.part) for state, e in sent] == [
        ("superseded", 1, None), ("pending", 2, 0), ("pending", 2, 1)]
    parts = [e for _, e in sent[1:]]
    assert rig.open_parts("cam-1", parts)[:2] == ["bulk-00000", "bulk-00001"]
    assert _status(rig, "cam-1") == (1, 2, 0)
    _reply(rig, "cam-1", parts[1], ok=True,
           result={"bundle_version": 2, "part": 1, "parts": 2, "complete": False})
    assert _status(rig, "cam-1") == (1, 2, 1)  # a part held, not yet applied
    _reply(rig, "cam-1", parts[0], ok=True, result={
        "bundle_version": 2, "part": 0, "parts": 2, "complete": True, "entries": 601})
    assert _status(rig, "cam-1") == (2, 2, 2)
    assert [d["parts"] for _, d in rig.actions("bundle.push")] == [1, 2]


def _pushed_in_two_parts(rig: Rig) -> None:
    rig.service.config = BundlesConfig(part_bytes=100_000)
    now = rig.clock.now()
    blob = _vector(9)
    for n in range(600):  # ~180 KB: 2 parts of 100 KB
        rig.watchlist.rows[f"bulk-{n:05d}"] = (now + 10 * DAY, blob)
    rig.register("cam-1")
    assert rig.service.sync().pushed == ("cam-1",)


def test_a_revocation_supersedes_the_parts_not_yet_delivered(rig: Rig) -> None:
    _pushed_in_two_parts(rig)
    old = [e for _, e in rig.envelopes("cam-1")]
    _reply(rig, "cam-1", old[0], ok=True,
           result={"bundle_version": 1, "part": 0, "parts": 2, "complete": False})
    del rig.watchlist.rows["bulk-00000"]  # revoked while part 1 is still in flight
    assert rig.service.sync().pushed == ("cam-1",)
    assert [(state, e.bundle_version, e.part) for state, e in rig.envelopes("cam-1")] == [
        ("superseded", 1, 0), ("superseded", 1, 1), ("pending", 2, 0), ("pending", 2, 1)]
    assert _status(rig, "cam-1") == (None, 2, 0)
    # A late answer to the old sealing counts nothing towards the new one.
    _reply(rig, "cam-1", old[1], ok=True, result={
        "bundle_version": 1, "part": 1, "parts": 2, "complete": True, "entries": 600})
    assert _status(rig, "cam-1") == (1, 2, 0)
    assert "bulk-00000" not in rig.open_parts(
        "cam-1", [e for _, e in rig.envelopes("cam-1")[2:]])


def test_an_incomplete_set_is_sealed_again_for_that_device(rig: Rig) -> None:
    _pushed_in_two_parts(rig)
    first = [e for _, e in rig.envelopes("cam-1")]
    _reply(rig, "cam-1", first[0], ok=True,
           result={"bundle_version": 1, "part": 0, "parts": 2, "complete": False})
    _reply(rig, "cam-1", first[0], ok=False, error="incomplete",
           result={"bundle_version": 1, "parts": 2, "received": 1})
    assert rig.service.stats_snapshot()["parts_incomplete"] == 1
    result = rig.service.sync()
    assert (result.version, result.issued, result.pushed) == (1, False, ("cam-1",))
    again = [e for _, e in rig.envelopes("cam-1")[2:]]
    assert [e.part for e in again] == [0, 1] and again[0].set_sha256 != first[0].set_sha256
    assert rig.service.sync().pushed == ()  # once, not on every pass


def test_a_bundle_over_the_part_limit_is_not_sent_and_the_previous_one_stays(rig: Rig) -> None:
    rig.service.config = BundlesConfig(part_bytes=200_000, max_parts=2)
    now = rig.clock.now()
    rig.watchlist.rows["e1"] = (now + 10 * DAY, _vector(1))
    rig.register("cam-1")
    assert rig.service.sync().pushed == ("cam-1",)
    blob = _vector(9)
    for n in range(2000):  # ~600 KB: 3 parts of 200 KB
        rig.watchlist.rows[f"bulk-{n:05d}"] = (now + 10 * DAY, blob)
    result = rig.service.sync()
    assert (result.version, result.pushed, result.failed) == (2, (), ("cam-1",))
    assert rig.service.stats_snapshot()["too_large"] == 1
    row = rig.device("cam-1")
    assert (row.version_pushed, row.failed_version) == (1, 2)  # type: ignore[attr-defined]
    assert "more than 2 parts" in row.last_error  # type: ignore[attr-defined]
    assert [s for s, _ in rig.envelopes("cam-1")] == ["pending"]  # the old one, untouched
    assert rig.open("cam-1") == ["e1"]
    assert [d["reason"] for _, d in rig.actions("bundle.push_failed")] == ["too_large"]
    # Not retried (and not re-logged) on every pass; the next version is tried again.
    assert rig.service.sync().failed == ()
    for n in range(1000):
        del rig.watchlist.rows[f"bulk-{n:05d}"]
    assert rig.service.sync().pushed == ("cam-1",)

def test_answers_mark_applied_or_refused_and_a_forged_answer_changes_nothing(rig: Rig) -> None:
    rig.watchlist.rows["e1"] = (rig.clock.now() + 10 * DAY, _vector(1))
    rig.register("cam-1")
    rig.register("cam-2")
    rig.service.sync()
    env1, env2 = rig.latest("cam-1"), rig.latest("cam-2")

    def reply(device: str, request_id: str, ok: bool, error: str | None = None) -> Inbound:
        msg = Reply(
            site=SITE,
            device=device,
            request_id=request_id,
            ok=ok,
            error=error,
            result={"bundle_version": 1} if ok else {},
        )
        return inbound("camera", device, Channel.REPLY, msg)

    # cam-2 claims to have applied cam-1's bundle (on its own topic: the ACL allows no other).
    rig.service.on_stored([reply("cam-2", env1.id, ok=True)])
    assert rig.service.stats_snapshot()["forged_replies"] == 1
    assert rig.device("cam-1").version_applied is None  # type: ignore[attr-defined]
    rig.service.on_stored([reply("cam-1", env1.id, ok=True)])
    rig.service.on_stored([reply("cam-1", env1.id, ok=True)])  # replayed: recorded once
    rig.service.on_stored([reply("cam-2", env2.id, ok=False, error="wrong_model")])
    assert rig.device("cam-1").version_applied == 1  # type: ignore[attr-defined]
    refused = rig.device("cam-2")
    assert refused.version_applied is None  # type: ignore[attr-defined]
    assert "wrong_model" in refused.last_error  # type: ignore[attr-defined]
    assert [t for t, _ in rig.actions("bundle.applied")] == ["cam-1"]
    assert [(t, d["reason"]) for t, d in rig.actions("bundle.refused")] == [
        ("cam-2", "wrong_model")
    ]
    # The version each device reports in its state is recorded too.
    rig.service.on_stored([rig.state("cam-1", version=1)])
    listed = {s.device: s for s in rig.service.devices()}
    assert listed["cam-1"].version_reported == 1
    with rig.store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_log)).scalar_one() > 0


def test_entries_no_edge_would_accept_are_left_out_and_the_rest_still_go(rig: Rig) -> None:
    """Regression: one such row made every seal fail, so no revocation reached any edge."""
    exp = rig.clock.now() + 10 * DAY
    nan = np.frombuffer(_vector(5), dtype=np.float32).copy()
    nan[3] = np.nan
    rig.watchlist.rows.update(
        {
            "e1": (exp, _vector(1)),
            "bad-nan": (exp, nan.tobytes()),
            "bad-norm": (exp, (2 * np.frombuffer(_vector(6), dtype=np.float32)).tobytes()),
            "bad id\n": (exp, _vector(7)),
            "bad-size": (exp, _vector(8, dim=512)),
        }
    )
    rig.register("cam-1")
    assert rig.service.sync().pushed == ("cam-1",)
    assert rig.open("cam-1") == ["e1"]
    assert rig.service.stats_snapshot()["entries_skipped"] == 4
