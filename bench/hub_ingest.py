"""Hub ingest throughput (positions stored per second, SQLite and PostgreSQL) and the delay from
a device's publish to a WebSocket client, against raw broker throughput in the same run.

    .venv/bin/python bench/hub_ingest.py [--batches 400] [--per-batch 100]

Positions travel as the contract's PositionBatch (QoS 0). Baseline: the same payloads published
by paho to a plain subscriber on the same broker (nothing decoded or stored).

Then, in process (no broker), the store alone: batches of 50 messages written clean, and the
same batches each carrying one message the database refuses (isolated by halving the batch).

Each store also reports the hub process's CPU time per 1,000 positions (decode, validation,
SQLAlchemy, acks; the database server and the broker are other processes). On a shared,
loaded machine that figure is steadier than the wall-clock rate when comparing two versions.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from websockets.sync.client import connect

from edge.protocol import (
    Channel,
    DeviceKind,
    DeviceState,
    DeviceStatus,
    EntityKind,
    Inbound,
    Position,
    PositionBatch,
    decode_device_message,
    device_topic,
    encode,
)
from edge.validators import utcnow
from hub.auth import Role, create_user, issue_token
from hub.config import ApiConfig, HubConfig
from hub.service import HubService
from hub.store import Store
from tests.support.broker import BrokerHarness
from tests.support.postgres import PostgresCluster

SITE = "bench"
DEVICE = "bench-gw"


def _client(broker: BrokerHarness, user: str, name: str) -> mqtt.Client:
    # A device must use its id as client id (the broker binds them).
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name,
                    protocol=MQTTProtocolVersion.MQTTv5)
    c.username_pw_set(user, broker.passwords[user])
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    deadline = time.monotonic() + 10
    while not c.is_connected():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} could not connect")
        time.sleep(0.01)
    return c


def _payloads(batches: int, per_batch: int) -> list[bytes]:
    out = []
    for b in range(batches):
        now = utcnow()
        out.append(encode(PositionBatch(site=SITE, device=DEVICE, positions=[
            Position(entity=f"e{b % 50}-{i}", entity_kind=EntityKind.WEARER,
                     lon=114.05 + i * 1e-5, lat=22.54, ts=now) for i in range(per_batch)])))
    return out


def raw_broker(broker: BrokerHarness, payloads: list[bytes], per_batch: int) -> float:
    done = threading.Event()
    got = 0

    def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        nonlocal got
        got += 1
        if got >= len(payloads):
            done.set()

    sub = _client(broker, "hub", "bench-raw-sub")
    sub.on_message = on_message
    sub.subscribe(f"gw/v1/{SITE}/+/+/pos", qos=0)
    pub = _client(broker, DEVICE, DEVICE)
    time.sleep(0.5)
    topic = device_topic(SITE, DeviceKind.WRISTBAND, DEVICE, Channel.POS)
    t0 = time.perf_counter()
    for p in payloads:
        pub.publish(topic, p, qos=0)
    done.wait(60)
    elapsed = time.perf_counter() - t0
    for c in (pub, sub):
        c.loop_stop()
        c.disconnect()
    return got * per_batch / elapsed


def hub_ingest(broker: BrokerHarness, db_url: str, payloads: list[bytes], per_batch: int
               ) -> tuple[float, float, float]:
    hub = HubService(HubConfig(site=SITE, database_url=db_url, mqtt=broker.hub_config(),
                               client_id="bench-hub", accept_unprovisioned=True,
                               api=ApiConfig(port=0), ingest_batch_max=5000))
    hub.start()
    assert hub.bus.wait_connected(10)
    pub = _client(broker, DEVICE, DEVICE)
    time.sleep(0.3)
    topic = device_topic(SITE, DeviceKind.WRISTBAND, DEVICE, Channel.POS)
    want = len(payloads) * per_batch
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    for p in payloads:
        pub.publish(topic, p, qos=0)
    deadline = time.monotonic() + 120
    while hub.ingest.stats.stored_positions < want and time.monotonic() < deadline:
        time.sleep(0.005)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    stored = hub.ingest.stats.stored_positions
    pub.loop_stop()
    pub.disconnect()
    hub.stop()
    return stored / elapsed, stored / want, cpu * 1e6 / max(stored, 1)


def store_isolation(db_url: str, payloads: list[bytes], per_batch: int) -> tuple[float, float]:
    """Positions/s through Store.write_batch in batches of 50: clean, then one refused each."""
    topic = device_topic(SITE, DeviceKind.WRISTBAND, DEVICE, Channel.POS)
    items = [decode_device_message(topic, p) for p in payloads]
    state_topic = device_topic(SITE, DeviceKind.WRISTBAND, DEVICE, Channel.STATE)
    rates = []
    for poisoned in (False, True):
        store = Store(db_url)
        t0 = time.perf_counter()
        for start in range(0, len(items), 50):
            batch: list[Inbound] = items[start : start + 50]
            if poisoned:  # decodes, but no INTEGER column takes 2**64
                bad = DeviceState(site=SITE, device=DEVICE, state=DeviceStatus.ONLINE,
                                  kind=DeviceKind.WRISTBAND, config_version=2**64)
                batch = [*batch[:25], decode_device_message(state_topic, encode(bad)), *batch[25:]]
            result = store.write_batch(batch)
            assert len(result.rejected) == int(poisoned)
        rates.append(len(items) * per_batch / (time.perf_counter() - t0))
        store.close()
    return rates[0], rates[1]


def ws_latency(broker: BrokerHarness, db_url: str, samples: int) -> list[float]:
    hub = HubService(HubConfig(site=SITE, database_url=db_url, mqtt=broker.hub_config(),
                               client_id="bench-hub-ws", accept_unprovisioned=True,
                               api=ApiConfig(port=0)))
    with hub.store.engine.begin() as conn:
        create_user(conn, "bench-op", secrets.token_urlsafe(18), Role.OPERATOR)
        token = issue_token(conn, "bench-op", "api", "bench", None)[0]
    hub.start()
    assert hub.bus.wait_connected(10)
    pub = _client(broker, DEVICE, DEVICE)
    topic = device_topic(SITE, DeviceKind.WRISTBAND, DEVICE, Channel.POS)
    sent: dict[str, float] = {}
    delays: list[float] = []
    url = f"ws://127.0.0.1:{hub.api_port}/api/v1/live?token={token}&layers=positions"
    with connect(url) as ws:
        ws.recv(timeout=5)
        for i in range(samples):
            entity = f"lat{i}"
            payload = encode(PositionBatch(site=SITE, device=DEVICE, positions=[
                Position(entity=entity, entity_kind=EntityKind.WEARER, lon=114.05, lat=22.54,
                         ts=utcnow())]))
            sent[entity] = time.perf_counter()
            pub.publish(topic, payload, qos=0)
            seen = False
            while not seen:
                frame = json.loads(ws.recv(timeout=5))
                for event in frame["events"] if frame["layer"] == "batch" else [frame]:
                    if event.get("entity") == entity:
                        delays.append((time.perf_counter() - sent[entity]) * 1000)
                        seen = True
            time.sleep(0.01)
    pub.loop_stop()
    pub.disconnect()
    hub.stop()
    return delays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--per-batch", type=int, default=100)
    parser.add_argument("--latency-samples", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = BrokerHarness(work / "broker")
        broker.start()
        broker.add_device(SITE, DeviceKind.WRISTBAND, DEVICE)
        pg = PostgresCluster()
        pg.start()
        try:
            payloads = _payloads(args.batches, args.per_batch)
            raw = raw_broker(broker, payloads, args.per_batch)
            sqlite_rate, sqlite_frac, sqlite_cpu = hub_ingest(
                broker, f"sqlite:///{work}/hub.sqlite", payloads, args.per_batch)
            pg_rate, pg_frac, pg_cpu = hub_ingest(
                broker, pg.new_database(), payloads, args.per_batch)
            delays = ws_latency(broker, f"sqlite:///{work}/ws.sqlite", args.latency_samples)
            iso_sqlite = store_isolation(f"sqlite:///{work}/iso.sqlite", payloads, args.per_batch)
            iso_pg = store_isolation(pg.new_database(), payloads, args.per_batch)
        finally:
            pg.stop()
            broker.stop()
    n = args.batches * args.per_batch
    q = statistics.quantiles(delays, n=100)
    print(f"positions                {n} in {args.batches} PositionBatch messages of "
          f"{args.per_batch} ({len(payloads[0])} bytes each)")
    print(f"raw broker (baseline)    {raw:10.0f} positions/s delivered to a subscriber")
    print(f"hub ingest, SQLite       {sqlite_rate:10.0f} positions/s stored "
          f"({sqlite_frac:.1%} of sent)   ratio {sqlite_rate / raw:.3f}   "
          f"hub CPU {sqlite_cpu:.1f} ms/1000 positions")
    print(f"hub ingest, PostgreSQL   {pg_rate:10.0f} positions/s stored "
          f"({pg_frac:.1%} of sent)   ratio {pg_rate / raw:.3f}   "
          f"hub CPU {pg_cpu:.1f} ms/1000 positions")
    print(f"publish -> WebSocket     p50 {q[49]:.1f} ms   p99 {q[98]:.1f} ms   "
          f"max {max(delays):.1f} ms  ({len(delays)} samples, one at a time)")
    for name, (clean, poisoned) in (("SQLite", iso_sqlite), ("PostgreSQL", iso_pg)):
        print(f"store only, {name:<10} {clean:10.0f} positions/s in clean batches of 50; "
              f"{poisoned:.0f} with one refused message in each   ratio {poisoned / clean:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
