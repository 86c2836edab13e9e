"""The edge watchlist: apply, refuse and count, persist across restarts, expire by the device
clock with no hub, and answer a retained bundle over a real Mosquitto."""

from __future__ import annotations

import json
import logging
import queue
import stat
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from edge.agent import AgentRuntime
from edge.bus import Bus, BusConfig
from edge.config import AgentConfig
from edge.faces.bundle import BundleEntry, BundlePayload, BundleRefusal
from edge.faces.keys import (
    ed25519_public_b64,
    load_or_create_device_key,
    public_key_b64,
    x25519_public_from_b64,
)
from edge.faces.watchlist import EdgeWatchlist, WatchlistConfig
from edge.protocol import (
    Channel,
    CmdChannel,
    DeviceKind,
    DeviceState,
    DeviceStatus,
    Reply,
    WatchlistBundleEnvelope,
    cmd_topic,
    decode_as,
    device_filter,
    encode,
)
from hub.broker import free_port
from tests.edge.faces.bundles import MODEL, T0, Keys, payload
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until


class Clock:
    """The device's wall clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Rig:
    """A real AgentRuntime (not connected) with a watchlist; replies are read from its queue."""

    def __init__(self, tmp_path: Path, keys: Keys | None = None, **config: Any) -> None:
        self.tmp = tmp_path
        self.keys = keys or Keys()
        self.clock = Clock(T0 + timedelta(seconds=10))
        self.config = WatchlistConfig(
            hub_keys={self.keys.key_id: ed25519_public_b64(self.keys.signing)},
            key_file=tmp_path / "bundle.key", **config)
        self.runtime: AgentRuntime | None = None
        self.watchlist = self.boot()

    def boot(self) -> EdgeWatchlist:
        cfg = AgentConfig(site="s1", device="cam-1", data_dir=self.tmp,
                          mqtt=BusConfig(port=free_port()))
        self.runtime = AgentRuntime(cfg, DeviceKind.CAMERA)
        watchlist = EdgeWatchlist(self.config, self.runtime, MODEL, clock=self.clock)
        self.keys.device = load_or_create_device_key(self.tmp / "bundle.key")
        return watchlist  # the hub seals for the key the device made for itself

    def restart(self) -> EdgeWatchlist:
        self.close()
        self.watchlist = self.boot()
        return self.watchlist

    def close(self) -> None:
        if self.runtime is not None:
            self.runtime.bus.stop()
            self.runtime.outbox.close()
            self.runtime = None

    def send(self, env: WatchlistBundleEnvelope) -> Reply:
        return self.watchlist.handle(env)

    def state(self) -> DeviceState:
        assert self.runtime is not None
        return decode_as(DeviceState, self.runtime._state_payload(DeviceStatus.ONLINE))

    def store(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.tmp / "cam-1-watchlist.json").read_text())
        return data


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.close()


def test_a_bundle_is_applied_reported_and_searchable(rig: Rig) -> None:
    p = payload(version=3, n=4)
    env = rig.keys.seal(p)
    reply = rig.send(env)
    assert (reply.ok, reply.request_id, reply.result) == (
        True, env.id, {"bundle_version": 3, "entries": 4})
    gallery = rig.watchlist.gallery()
    assert gallery.version == 3
    assert gallery.search(p.embeddings()[2], 1, rig.clock())[0][0].entry_id == "e2"
    state = rig.state()
    assert state.watchlist_version == 3
    assert state.bundle_key_b64 == public_key_b64(rig.keys.device)
    assert rig.runtime is not None
    health = rig.runtime.health_message()
    assert health.metrics["watchlist_version"] == 3.0
    assert health.metrics["watchlist_entries"] == 4.0


def test_a_device_without_a_bundle_reports_version_0_and_its_key(rig: Rig) -> None:
    state = rig.state()
    assert (state.watchlist_version, state.bundle_key_b64) == (0, public_key_b64(rig.keys.device))
    assert stat.S_IMODE((rig.tmp / "bundle.key").stat().st_mode) == 0o600


def test_refusals_are_replied_counted_per_reason_and_change_nothing(rig: Rig) -> None:
    good = payload(version=5, n=2)
    assert rig.send(rig.keys.seal(good)).ok
    forged = Keys(device=rig.keys.device).seal(payload(version=6), key_id=rig.keys.key_id)
    stranger = Keys(device=rig.keys.device).seal(payload(version=7))
    replies = [rig.send(forged), rig.send(forged), rig.send(stranger),
               rig.send(rig.keys.seal(payload(version=4)))]
    assert [(r.ok, r.error) for r in replies] == [
        (False, "bad_signature"), (False, "bad_signature"), (False, "unknown_key"),
        (False, "replayed")]
    assert rig.watchlist.gallery().version == 5 and rig.state().watchlist_version == 5
    assert rig.runtime is not None
    dropped = rig.runtime.health_message().dropped
    assert (dropped["bundle_bad_signature"], dropped["bundle_unknown_key"],
            dropped["bundle_replayed"]) == (2, 1, 1)
    assert rig.store()["applied_version"] == 5


def test_a_redelivered_bundle_is_accepted_once_a_resealed_one_is_a_replay(rig: Rig) -> None:
    p = payload(version=2)
    env = rig.keys.seal(p)
    assert rig.send(env).ok
    wire = decode_as(WatchlistBundleEnvelope, encode(env))  # the retained copy, again
    again = rig.send(wire)
    assert (again.ok, again.result["bundle_version"]) == (True, 2)
    assert rig.watchlist.counters["redelivered"] == 1
    resealed = rig.send(rig.keys.seal(p))  # same version, other bytes
    assert (resealed.ok, resealed.error) == (False, BundleRefusal.REPLAYED.value)
    rig.clock.advance(86_400)  # past the bundle's expiry; the timer has not run yet
    late = rig.send(wire)
    assert (late.ok, late.error) == (False, BundleRefusal.EXPIRED.value)


def test_the_bundle_survives_a_restart_still_encrypted_and_the_mark_too(rig: Rig) -> None:
    p = payload(version=3, n=3)
    assert rig.send(rig.keys.seal(p)).ok
    stored = rig.store()
    assert stored["applied_version"] == 3
    assert '"e1"' not in stored["envelope"]  # the ids travel and rest encrypted
    assert stat.S_IMODE((rig.tmp / "cam-1-watchlist.json").stat().st_mode) == 0o600
    watchlist = rig.restart()
    assert watchlist.gallery().version == 3 and watchlist.gallery().ids == ("e0", "e1", "e2")
    assert rig.state().watchlist_version == 3
    older = rig.send(rig.keys.seal(payload(version=2)))
    assert (older.ok, older.error) == (False, "replayed")
    assert rig.send(rig.keys.seal(payload(version=4, n=1))).ok


@pytest.mark.parametrize(("valid_s", "advance_s", "reason"), [
    (86_400, 86_400, "reload_expired"), (30 * 86_400, 8 * 86_400, "reload_stale")])
def test_a_stored_bundle_past_its_time_is_dropped_at_start(
        rig: Rig, valid_s: float, advance_s: float, reason: str) -> None:
    env = rig.keys.seal(payload(version=3, valid_s=valid_s))
    assert rig.send(env).ok
    rig.clock.advance(advance_s)
    watchlist = rig.restart()
    assert watchlist.gallery().version == 0 and watchlist.counters[reason] == 1
    assert rig.state().watchlist_version == 0
    assert rig.store()["envelope"] is None and rig.store()["applied_version"] == 3
    # The retained copy arrives after the reconnect: refused, with the reason it was dropped.
    again = rig.send(decode_as(WatchlistBundleEnvelope, encode(env)))
    assert (again.ok, again.error) == (False, reason.removeprefix("reload_"))


def test_a_stored_bundle_a_rotated_key_no_longer_verifies_is_dropped(tmp_path: Path) -> None:
    first = Rig(tmp_path)
    try:
        assert first.send(first.keys.seal(payload(version=2))).ok
    finally:
        first.close()
    rotated = Rig(tmp_path)  # a new hub key pinned; the old bundle's key is gone
    try:
        assert rotated.watchlist.gallery().version == 0
        assert rotated.watchlist.counters["reload_unknown_key"] == 1
        assert rotated.watchlist.applied_version == 2
    finally:
        rotated.close()


def test_a_corrupt_store_is_counted_and_ignored(tmp_path: Path) -> None:
    (tmp_path / "cam-1-watchlist.json").write_text("{not json")
    r = Rig(tmp_path)
    try:
        assert r.watchlist.counters["store_unreadable"] == 1
        assert r.watchlist.gallery().version == 0
        assert r.send(r.keys.seal(payload(version=1))).ok
    finally:
        r.close()


def test_entries_then_the_bundle_expire_by_the_device_clock_offline(rig: Rig) -> None:
    """No hub, no broker: only the device clock moves."""
    p = payload(version=4, n=3, valid_s=600, entry_valid_s=[100, 200, 900])
    assert rig.send(rig.keys.seal(p)).ok
    assert not rig.watchlist.enforce_expiry()
    rig.clock.advance(100)  # T0 + 110 s: e0 has expired
    hits = rig.watchlist.gallery().search(p.embeddings()[0], 3, rig.clock())[0]
    assert sorted(c.entry_id for c in hits) == ["e1", "e2"]  # even before the timer ran
    assert rig.watchlist.enforce_expiry()
    assert rig.watchlist.gallery().ids == ("e1", "e2") and rig.state().watchlist_version == 4
    rig.clock.advance(500)  # T0 + 610 s: the bundle itself has expired
    assert rig.watchlist.enforce_expiry()
    assert rig.watchlist.gallery().size == 0 and rig.state().watchlist_version == 0
    assert rig.store()["envelope"] is None  # nothing of it stays on disk
    assert not rig.watchlist.enforce_expiry()


def test_every_entry_expired_reports_version_0_though_the_bundle_is_valid(rig: Rig) -> None:
    p = payload(version=6, n=2, valid_s=3600, entry_valid_s=[50, 60])
    assert rig.send(rig.keys.seal(p)).ok
    rig.clock.advance(60)
    assert rig.watchlist.enforce_expiry()
    assert rig.watchlist.gallery().size == 0 and rig.state().watchlist_version == 0


def test_the_expiry_timer_runs_by_itself(tmp_path: Path) -> None:
    r = Rig(tmp_path, expiry_check_interval_s=0.01)
    try:
        assert r.send(r.keys.seal(payload(version=1, n=2, entry_valid_s=[30, 9000]))).ok
        r.watchlist.start()
        r.clock.advance(30)
        wait_until(lambda: r.watchlist.gallery().ids == ("e1",), message="timer pruned e0")
    finally:
        r.watchlist.stop()
        r.close()


def test_the_config_refuses_a_key_under_the_wrong_id() -> None:
    keys, other = Keys(), Keys()
    with pytest.raises(ValidationError, match="does not match"):
        WatchlistConfig(hub_keys={keys.key_id: ed25519_public_b64(other.signing)})
    with pytest.raises(ValidationError):
        WatchlistConfig(hub_keys={})


# -- over a real broker -------------------------------------------------------------------------


def test_a_retained_bundle_reaches_a_running_agent_which_replies_and_reports(
        broker: BrokerHarness, site: str, tmp_path: Path) -> None:
    device = f"{site}-cam"
    keys = Keys()
    mqtt = broker.add_device(site, DeviceKind.CAMERA, device)
    inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
    hub = Bus(broker.hub_config(), client_id=f"{site}-hub")
    hub.subscribe(device_filter(site), lambda t, p: inbox.put((t, p)), qos=1)
    hub.start()
    runtime: AgentRuntime | None = None
    watchlist: EdgeWatchlist | None = None
    replies: list[Reply] = []
    states: list[DeviceState] = []

    def drain() -> None:
        while not inbox.empty():
            topic, raw = inbox.get()
            if topic.endswith("/" + Channel.REPLY):
                replies.append(decode_as(Reply, raw))
            elif topic.endswith("/" + Channel.STATE):
                states.append(decode_as(DeviceState, raw))

    def boot() -> tuple[AgentRuntime, EdgeWatchlist]:
        cfg = AgentConfig(site=site, device=device, data_dir=tmp_path, mqtt=mqtt)
        rt = AgentRuntime(cfg, DeviceKind.CAMERA)
        wl = EdgeWatchlist(
            WatchlistConfig(hub_keys={keys.key_id: ed25519_public_b64(keys.signing)}), rt, MODEL,
            clock=lambda: T0 + timedelta(seconds=5))
        rt.start()
        return rt, wl

    try:
        assert hub.wait_connected(5)
        runtime, watchlist = boot()
        # The hub learns the device's bundle key from its retained state, then seals for it.
        wait_until(lambda: drain() or any(s.bundle_key_b64 for s in states), message="key")
        device_key = x25519_public_from_b64(states[-1].bundle_key_b64 or "")
        assert states[-1].watchlist_version == 0
        env = keys.seal(payload(version=9, n=3), site=site, device=device,
                        recipient_key=device_key)
        hub.publish(cmd_topic(site, device, CmdChannel.WATCHLIST), encode(env), qos=1,
                    retain=True).wait_for_publish(5)
        wait_until(lambda: drain() or replies, message="the reply")
        assert (replies[0].request_id, replies[0].ok, replies[0].result["bundle_version"]) == (
            env.id, True, 9)
        wait_until(lambda: drain() or states[-1].watchlist_version == 9, message="state v9")
        assert watchlist.gallery().size == 3
        # A restarted agent gets the retained bundle again: the same one, answered ok.
        runtime.stop()
        runtime, watchlist = boot()
        assert watchlist.gallery().version == 9  # reloaded from disk before the broker spoke
        wait_until(lambda: drain() or len(replies) >= 2, message="the redelivery reply")
        assert replies[1].ok and watchlist.counters["redelivered"] == 1
    finally:
        if runtime is not None:
            runtime.stop()
        hub.publish(cmd_topic(site, device, CmdChannel.WATCHLIST), b"", qos=1,
                    retain=True).wait_for_publish(5)
        hub.stop()


def test_no_entry_id_or_embedding_reaches_the_logs(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """Apply, refuse, expire and reload a bundle whose ids are distinctive: the logs carry
    versions, reasons and counts, never an id or a number of an embedding."""
    base = payload(version=3, n=3, valid_s=600, entry_valid_s=[100, 9000, 9000])
    secret_ids = ("zz-canary-entry-0", "zz-canary-entry-1", "zz-canary-entry-2")
    p = BundlePayload(base.version, base.issued_at, base.expires_at, MODEL, base.dim, tuple(
        BundleEntry(i, e.expires_at, e.embedding)
        for i, e in zip(secret_ids, base.entries, strict=True)))
    with caplog.at_level(logging.DEBUG):
        r = Rig(tmp_path)
        try:
            assert r.send(r.keys.seal(p)).ok
            r.send(Keys(device=r.keys.device).seal(payload(version=4)))  # refused
            r.clock.advance(100)
            assert r.watchlist.enforce_expiry()
            r.restart()
            r.clock.advance(600)
            assert r.watchlist.enforce_expiry()
        finally:
            r.close()
    text = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "watchlist bundle version 3 applied" in text  # the logs did speak
    assert "canary" not in text
    for value in p.embeddings()[0][:8]:
        assert f"{value:.4f}" not in text
