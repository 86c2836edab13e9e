"""Poison-proof ingest through the whole hub (real broker, real uvicorn, SQLite and
PostgreSQL): issue 10's defect 1 replayed by a provisioned device, the dead letters an admin
lists, and hub worker liveness in /health and /stats with a really killed worker."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.bus import Bus, BusConfig
from edge.protocol import (
    Alert,
    AlertKind,
    Channel,
    CmdChannel,
    DeviceKind,
    DeviceState,
    DeviceStatus,
    Health,
    Severity,
    cmd_topic,
    device_topic,
    encode,
)
from hub.api.deps import encode_cursor
from hub.auth import Role
from tests.hub.conftest import RunningHub, start_hub, stop_hub
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until


@pytest.fixture
def any_db_hub(
    broker: BrokerHarness, site: str, tmp_path: Path, db_url: str
) -> Iterator[RunningHub]:
    running = start_hub(broker, site, tmp_path, database_url=db_url)
    yield running
    stop_hub(broker, running)


class Device:
    """A provisioned camera speaking raw MQTT, so it can send what no agent would."""

    def __init__(self, hub: RunningHub, name: str, tmp_path: Path, port: int) -> None:
        res = hub.client(Role.INSTALLER).post(
            "/api/v1/devices", json={"id": name, "site": hub.site, "kind": "camera"}
        )
        assert res.status_code == 201, res.text
        secret = tmp_path / f"{name}.pw"
        secret.write_text(res.json()["mqtt_password"])
        self.site, self.name = hub.site, name
        self.acked: set[str] = set()
        self._lock = threading.Lock()
        self.bus = Bus(BusConfig(port=port, username=name, password_file=secret), client_id=name)
        self.bus.subscribe(cmd_topic(hub.site, name, CmdChannel.ACK), self._on_ack, 1)
        self.bus.start()
        assert self.bus.wait_connected(30)

    def _on_ack(self, _topic: str, payload: bytes) -> None:
        with self._lock:
            self.acked.update(json.loads(payload)["ids"])

    def send(self, channel: Channel, payload: bytes) -> None:
        topic = device_topic(self.site, DeviceKind.CAMERA, self.name, channel)
        self.bus.publish(topic, payload, qos=1).wait_for_publish(5)

    def alert(self) -> Alert:
        alert = Alert(site=self.site, device=self.name, kind=AlertKind.SOS, severity=Severity.HIGH)
        self.send(Channel.ALERT, encode(alert))
        return alert


def test_nan_health_and_a_poison_state_do_not_stop_the_alerts(
    any_db_hub: RunningHub, broker: BrokerHarness, tmp_path: Path
) -> None:
    """Issue 10, defect 1. Before: the NaN health failed the whole PostgreSQL batch for ever,
    the alert beside it was never stored or acked, and the queue filled."""
    hub = any_db_hub
    dev = Device(hub, f"{hub.site}-cam", tmp_path, broker.port)
    try:
        beat = encode(Health(site=hub.site, device=dev.name, uptime_s=3, metrics={"t": 1.5}))
        # Issue 11, item 6: the contract now refuses it at decode (integers beyond 2**53-1);
        # the store-level isolation of a value the database refuses: tests/hub/test_dead_letters.py.
        poison = DeviceState.model_construct(
            site=hub.site,
            device=dev.name,
            state=DeviceStatus.ONLINE,
            kind=DeviceKind.CAMERA,
            config_version=2**64,  # once decoded, and no INTEGER column took it
        )
        dev.send(Channel.HEALTH, beat.replace(b"1.5", b"NaN"))
        dev.send(Channel.STATE, encode(poison))
        first = dev.alert()
        dev.send(Channel.HEALTH, beat.replace(b'"uptime_s":3.0', b'"uptime_s":3.0,"uptime_s":4'))
        wait_until(lambda: first.id in dev.acked, message="the alert is stored and acked")
        stats = hub.service.ingest.stats
        wait_until(lambda: stats.rejected["bad_json_number"] == 1, message="poison refused")
        # Sent after the alert: its ack does not mean the hub has read this one yet.
        wait_until(lambda: stats.rejected["bad_json_duplicate_key"] == 1, message="duplicate key")
        assert stats.rejected == {
            "bad_json_constant": 1,
            "bad_json_duplicate_key": 1,
            "bad_json_number": 1,
        }
        later = dev.alert()  # nothing is stuck behind them
        wait_until(lambda: later.id in dev.acked, message="ingest carries on")
        assert sorted(hub.service.store.alert_ids(hub.site)) == sorted([first.id, later.id])

        admin = hub.client(Role.ADMIN)
        wait_until(
            lambda: len(admin.get("/api/v1/ingest/rejected").json()["items"]) == 3,
            message="three dead letters listed",
        )
        items = admin.get("/api/v1/ingest/rejected").json()["items"]
        assert [i["id"] for i in items] == sorted((i["id"] for i in items), reverse=True)
        by_reason = {i["reason"]: i for i in items}
        assert set(by_reason) == {"bad_json_constant", "bad_json_duplicate_key", "bad_json_number"}
        nan = by_reason["bad_json_constant"]
        assert nan["device"] == dev.name and nan["channel"] == "health"
        assert '"t":NaN' in nan["payload_head_text"] and nan["message_id"] is None
        assert str(2**64) in by_reason["bad_json_number"]["payload_head_text"]
        assert all(i["device"] == dev.name and i["site"] == hub.site for i in items)
        one = admin.get("/api/v1/ingest/rejected", params={"reason": "bad_json_number"}).json()
        assert [i["id"] for i in one["items"]] == [by_reason["bad_json_number"]["id"]]
        page = admin.get("/api/v1/ingest/rejected", params={"limit": 2}).json()
        rest = admin.get("/api/v1/ingest/rejected", params={"cursor": page["next_cursor"]}).json()
        assert [i["id"] for i in page["items"] + rest["items"]] == [i["id"] for i in items]
        for forged in ([10**30], ["1"], [True], [-5]):  # a cursor this API never issued
            res = admin.get("/api/v1/ingest/rejected", params={"cursor": encode_cursor(forged)})
            assert res.status_code == 422, forged
        none = admin.get("/api/v1/ingest/rejected", params={"device": f"{hub.site}-other"})
        assert none.json()["items"] == []
        assert hub.client(Role.COMMANDER).get("/api/v1/ingest/rejected").status_code == 403
        assert hub.client(None).get("/api/v1/ingest/rejected").status_code == 401
        assert "/api/v1/ingest/rejected" in admin.get("/openapi.json").json()["paths"]
        counted = admin.get("/api/v1/stats").json()["ingest"]
        assert counted["rejected"]["bad_json_constant"] == 1
        assert counted["dead_letters_kept"] == 3
    finally:
        dev.bus.stop()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_worker_liveness_in_health_and_a_failing_callback_does_not_kill_ingest(
    hub: RunningHub, broker: BrokerHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    anon = hub.client(None)
    ok = anon.get("/api/v1/health")
    assert ok.status_code == 200
    assert ok.json()["status"] == "ok"
    assert ok.json()["workers"] == {
        "ingest": {"alive": True, "queue_depth": 0},
        "retention": {"alive": True, "queue_depth": None},
        "commands": {"alive": True, "queue_depth": None},
        "timers": {"alive": True, "queue_depth": None},
        "warnings": {"alive": True, "queue_depth": None},
        "incident-intake": {"alive": True, "queue_depth": None},
        "dispatch": {"alive": True, "queue_depth": None},
        "watchlists": {"alive": True, "queue_depth": None},
        "bundles": {"alive": True, "queue_depth": None},
        "match-intake": {"alive": True, "queue_depth": None},
        "matches": {"alive": True, "queue_depth": None},
    }
    dev = Device(hub, f"{hub.site}-cam", tmp_path, broker.port)
    service = hub.service
    try:

        def broken_live(*_args: object) -> None:
            raise RuntimeError("injected: live map failure")

        # The time series or fusion failing after a commit once escaped the ingest loop.
        monkeypatch.setattr(service.live, "on_stored", broken_live)
        first = dev.alert()
        wait_until(lambda: first.id in dev.acked, message="stored and acked")
        wait_until(lambda: service.ingest.stats.callback_errors >= 1, message="counted")
        second = dev.alert()
        wait_until(lambda: second.id in dev.acked, message="ingest survived the callback")
        assert anon.get("/api/v1/health").json()["status"] == "ok"

        class InjectedCrashError(Exception):
            pass

        def crash(*_args: object, **_kw: object) -> list[object]:
            raise InjectedCrashError

        monkeypatch.setattr(service.ingest.queue, "get_batch", crash)  # kills the ingest thread
        wait_until(lambda: anon.get("/api/v1/health").status_code == 503, message="degraded")
        body = anon.get("/api/v1/health").json()
        assert body["status"] == "degraded"
        assert body["workers"]["ingest"]["alive"] is False
        assert body["workers"]["retention"]["alive"] is True
        stats = hub.client(Role.OPERATOR).get("/api/v1/stats").json()
        assert stats["workers"]["ingest"]["alive"] is False
        assert stats["ingest_queue"]["max"] == service.config.ingest_queue_max
    finally:
        monkeypatch.undo()
        dev.bus.stop()
