"""Bundles in parts on the edge: collected in bounded memory, answered per part, the gallery
swapped only when every part is in and the set verifies; out of order, missing, replayed,
spliced, forged and flooding parts; a revocation while parts are in flight; future-dated
bundles; 12,000 entries in three parts over a real Mosquitto."""

from __future__ import annotations

import json
import queue
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.agent import AgentRuntime
from edge.bus import Bus
from edge.config import AgentConfig
from edge.faces.bundle import PART_PLAINTEXT_BYTES, BundleRefusal, seal_bundle_parts
from edge.faces.keys import ed25519_public_b64, x25519_public_from_b64
from edge.faces.watchlist import EdgeWatchlist, WatchlistConfig
from edge.protocol import (
    Channel,
    CmdChannel,
    DeviceKind,
    DeviceState,
    Reply,
    WatchlistBundleEnvelope,
    cmd_topic,
    decode_as,
    device_filter,
    encode,
)
from tests.edge.faces.bundles import MODEL, T0, Keys, payload
from tests.edge.faces.test_watchlist import Rig
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

PART_BYTES = 3000  # 30 entries (~8 KB) come in 3 parts


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    r = Rig(tmp_path, part_timeout_s=60)
    yield r
    r.close()


def _sent(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> list[Reply]:
    """The Replies the watchlist sends by itself (a timed-out set), captured."""
    sent: list[Reply] = []
    monkeypatch.setattr(rig.runtime, "send_reply", sent.append)
    return sent


def _parts(rig: Rig, version: int, n: int = 30, **kw: Any) -> list[WatchlistBundleEnvelope]:
    parts = rig.keys.seal_parts(payload(version=version, n=n, seed=version), part_bytes=kw.pop(
        "part_bytes", PART_BYTES), **kw)
    assert len(parts) >= 3 or kw
    return parts


def _refused(rig: Rig, env: WatchlistBundleEnvelope) -> str | None:
    reply = rig.send(env)
    assert not reply.ok
    return reply.error


def test_parts_out_of_order_swap_the_gallery_only_after_the_last(rig: Rig) -> None:
    assert rig.send(rig.keys.seal(payload(version=1, n=3))).ok
    parts = _parts(rig, 2)
    assert len(parts) == 3 and len({p.set_sha256 for p in parts}) == 1
    for received, part in enumerate([parts[2], parts[0]], start=1):
        reply = rig.send(part)
        assert (reply.ok, reply.request_id, reply.result) == (True, part.id, {
            "bundle_version": 2, "part": part.part, "parts": 3, "received": received,
            "complete": False})
        # Until the last part the bundle in force keeps matching.
        assert (rig.watchlist.gallery().version, rig.watchlist.gallery().size) == (1, 3)
        assert rig.state().watchlist_version == 1
    assert rig.send(parts[0]).ok and rig.watchlist.counters["part_redelivered"] == 1
    assert rig.watchlist.pending_parts() == (2, 2, 3)
    reply = rig.send(parts[1])
    assert reply.result == {"bundle_version": 2, "part": 1, "parts": 3, "received": 3,
                            "complete": True, "entries": 30}
    assert (rig.watchlist.gallery().version, rig.watchlist.gallery().size) == (2, 30)
    assert rig.watchlist.pending_parts() is None
    stored = rig.store()
    assert stored["envelope"] is None and [
        decode_as(WatchlistBundleEnvelope, t.encode()).part for t in stored["parts"]] == [0, 1, 2]
    # Restarted: the stored parts verified again; the retained part is a redelivery.
    rig.restart()
    assert (rig.watchlist.gallery().version, rig.watchlist.gallery().size) == (2, 30)
    assert rig.send(parts[2]).ok and rig.watchlist.counters["redelivered"] == 1
    assert _refused(rig, _parts(rig, 2)[0]) == "replayed"  # another sealing of v2


def test_a_stored_set_with_a_spliced_part_is_dropped_at_start(rig: Rig) -> None:
    for part in _parts(rig, 2):
        assert rig.send(part).ok
    store = rig.tmp / "cam-1-watchlist.json"
    data = json.loads(store.read_text())
    data["parts"][1] = encode(_parts(rig, 2)[1]).decode()  # signed, but of another sealing
    store.write_text(json.dumps(data))
    rig.restart()
    assert rig.watchlist.gallery().version == 0
    assert rig.watchlist.counters["reload_part_mismatch"] == 1
    assert _refused(rig, _parts(rig, 2)[0]) == "replayed"  # the mark stays


def test_a_missing_part_leaves_the_gallery_and_times_out(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = _sent(rig, monkeypatch)
    assert rig.send(rig.keys.seal(payload(version=1, n=3))).ok
    parts = _parts(rig, 2)
    assert rig.send(parts[0]).ok and rig.send(parts[1]).ok
    rig.clock.advance(59)
    assert not rig.watchlist.enforce_part_timeout()
    rig.clock.advance(2)
    assert rig.watchlist.enforce_part_timeout()
    assert rig.watchlist.gallery().version == 1 and rig.watchlist.pending_parts() is None
    assert rig.watchlist._health_fields()["dropped"]["bundle_incomplete"] == 1
    assert [(r.ok, r.error, r.request_id, r.result["received"]) for r in sent] == [
        (False, "incomplete", parts[1].id, 2)]
    # The late part starts a set of its own; nothing applies from it alone.
    reply = rig.send(parts[2])
    assert reply.ok and reply.result["received"] == 1 and rig.watchlist.gallery().version == 1


def test_older_and_spliced_parts_are_refused(rig: Rig) -> None:
    v2 = _parts(rig, 2)
    for part in v2:
        assert rig.send(part).ok
    assert _refused(rig, _parts(rig, 1)[0]) == "replayed"  # a part of an older version
    sealing_a = _parts(rig, 3)
    sealing_b = _parts(rig, 3)  # the hub sealed v3 again (a new device key, a re-push)
    assert rig.send(sealing_a[0]).ok
    assert rig.send(sealing_b[0]).ok and rig.watchlist.counters["parts_restarted"] == 1
    assert _refused(rig, sealing_a[1]) == "part_mismatch"  # spliced from the older sealing
    assert rig.send(v2[1]).ok  # a part of the set in force: a redelivery, until v3 is in
    for part in sealing_b[1:]:
        assert rig.send(part).ok
    assert rig.watchlist.gallery().version == 3
    assert _refused(rig, v2[1]) == "replayed"
    assert rig.watchlist.counters["part_mismatch"] == 1


def test_forged_and_misaddressed_parts_are_refused(rig: Rig) -> None:
    parts = _parts(rig, 2)
    other_device = _parts(rig, 2, device="cam-2")
    assert _refused(rig, other_device[0]) == "wrong_recipient"
    for change in ({"part": 1}, {"parts": 4}, {"set_sha256": "0" * 64},
                   {"part": None, "parts": None, "set_sha256": None}):
        assert _refused(rig, parts[0].model_copy(update=change)) == "bad_signature"
    other_hub = Keys(device=rig.keys.device).seal_parts(payload(version=2, n=30),
                                                        part_bytes=PART_BYTES)
    assert _refused(rig, other_hub[0]) == "unknown_key"
    assert rig.watchlist.pending_parts() is None and rig.watchlist.gallery().version == 0


def test_a_flood_of_parts_is_bounded(tmp_path: Path) -> None:
    rig = Rig(tmp_path, max_bundle_parts=6, max_bundle_bytes=1_000_000)
    try:
        many = _parts(rig, 2, part_bytes=1000)  # 9 parts, more than this edge takes
        assert {_refused(rig, p) for p in many} == {"too_many_parts"}
        # Unsigned parts claiming the largest count the contract allows: nothing is held.
        forged = [many[0].model_copy(update={"part": i, "parts": 1024}) for i in range(300)]
        assert {_refused(rig, p) for p in forged} == {"bad_signature"}
        assert rig.watchlist.pending_parts() is None
        # Few parts, but more bytes than the edge holds: dropped as soon as they would exceed it.
        big = _parts(rig, 3, n=3600, part_bytes=200_000)  # 5 parts of ~267 KB on the wire
        assert [rig.send(p).ok for p in big[:3]] == [True, True, True]
        assert _refused(rig, big[3]) == "too_large"
        assert rig.watchlist.pending_parts() is None and rig.watchlist.gallery().version == 0
        counted = rig.watchlist._health_fields()["dropped"]
        assert (counted["bundle_too_many_parts"], counted["bundle_bad_signature"],
                counted["bundle_too_large"]) == (len(many), 300, 1)
    finally:
        rig.close()


def test_a_revocation_while_parts_are_in_flight_wins(rig: Rig) -> None:
    assert rig.send(rig.keys.seal(payload(version=1, n=3))).ok
    v2 = _parts(rig, 2)
    assert rig.send(v2[0]).ok and rig.send(v2[1]).ok
    v3 = _parts(rig, 3)  # an entry revoked: a new version, in parts too
    assert rig.send(v3[1]).ok and rig.watchlist.counters["parts_superseded"] == 1
    revoked = rig.keys.seal(payload(version=4, n=2))  # revoked again: small, one envelope
    assert rig.send(revoked).ok
    assert rig.watchlist.pending_parts() is None
    assert (rig.watchlist.gallery().version, rig.watchlist.gallery().size) == (4, 2)
    assert _refused(rig, v2[2]) == "replayed" and _refused(rig, v3[0]) == "replayed"
    assert rig.watchlist.gallery().version == 4


def test_a_future_dated_bundle_is_refused(rig: Rig) -> None:
    now = rig.clock()
    ahead = payload(version=2, n=3, issued_at=now + timedelta(seconds=121))
    assert _refused(rig, rig.keys.seal(ahead)) == "future"
    ahead_parts = rig.keys.seal_parts(payload(version=2, n=30, issued_at=now + timedelta(
        seconds=500)), part_bytes=PART_BYTES)
    assert _refused(rig, ahead_parts[0]) == "future"
    assert rig.watchlist.counters[BundleRefusal.FUTURE] == 2
    within = payload(version=2, n=3, issued_at=now + timedelta(seconds=119))  # clock skew
    assert rig.send(rig.keys.seal(within)).ok


def test_a_bundle_that_fits_is_one_envelope_without_part_fields() -> None:
    keys = Keys()
    (env,) = seal_bundle_parts(payload(version=1, n=30), site="s1", device="cam-1",
                               recipient_key=keys.device.public_key(), signing_key=keys.signing,
                               key_id=keys.key_id)
    assert (env.part, env.parts, env.set_sha256) == (None, None, None)
    assert b'"part' not in encode(env) and b"set_sha256" not in encode(env)


# -- over a real broker -------------------------------------------------------------------------


def test_12000_entries_in_three_parts_reach_a_running_agent_out_of_order(
        broker: BrokerHarness, site: str, tmp_path: Path) -> None:
    keys = Keys()
    device = "cam-big"
    mqtt = broker.add_device(site, DeviceKind.CAMERA, device)
    inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
    hub = Bus(broker.hub_config(), client_id=f"{site}-hub")
    hub.subscribe(device_filter(site), lambda t, p: inbox.put((t, p)), qos=1)
    hub.start()
    replies: list[Reply] = []
    states: list[DeviceState] = []
    seen: list[tuple[bool, int]] = []  # (reply ok and complete, gallery version after it)

    def drain() -> None:
        while not inbox.empty():
            topic, raw = inbox.get()
            if topic.endswith("/" + Channel.REPLY):
                replies.append(decode_as(Reply, raw))
            elif topic.endswith("/" + Channel.STATE):
                states.append(decode_as(DeviceState, raw))

    runtime = AgentRuntime(AgentConfig(site=site, device=device, data_dir=tmp_path, mqtt=mqtt),
                           DeviceKind.CAMERA)
    watchlist = EdgeWatchlist(
        WatchlistConfig(hub_keys={keys.key_id: ed25519_public_b64(keys.signing)}), runtime,
        MODEL, clock=lambda: T0 + timedelta(seconds=5))
    handle: Callable[[WatchlistBundleEnvelope], Reply] = watchlist.handle

    def recording(env: WatchlistBundleEnvelope) -> Reply:
        reply = handle(env)
        seen.append((reply.ok and reply.result.get("complete") is True,
                     watchlist.gallery().version))
        return reply

    watchlist.handle = recording  # type: ignore[method-assign,assignment]
    topic = cmd_topic(site, device, CmdChannel.WATCHLIST)
    try:
        runtime.start()
        assert hub.wait_connected(5)
        wait_until(lambda: drain() or any(s.bundle_key_b64 for s in states), message="key")
        key = x25519_public_from_b64(states[-1].bundle_key_b64 or "")
        parts = keys.seal_parts(payload(version=7, n=12_000), site=site, device=device,
                                recipient_key=key, part_bytes=PART_PLAINTEXT_BYTES)
        assert len(parts) == 3
        for part in (parts[1], parts[2], parts[0]):  # out of order, retained as the hub does
            hub.publish(topic, encode(part), qos=1, retain=True).wait_for_publish(5)
        wait_until(lambda: drain() or len(replies) >= 3, message="three replies")
        assert sorted(r.request_id for r in replies) == sorted(p.id for p in parts)
        assert all(r.ok for r in replies)
        assert seen == [(False, 0), (False, 0), (True, 7)]  # switched with the last part only
        assert watchlist.gallery().size == 12_000
        wait_until(lambda: drain() or states[-1].watchlist_version == 7, message="state v7")
    finally:
        runtime.stop()
        hub.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
        hub.stop()
