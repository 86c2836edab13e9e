"""One device floods, two others must not lose alerts or positions (issue 11 item 4).

    .venv/bin/python bench/flood.py [--flood 100000] [--alerts 50] [--positions 500]

Each scenario gets a fresh Mosquitto and hub (SQLite). The flooder is Mosquitto's own
``mosquitto_pub -l`` in another process, publishing ``--flood`` QoS 0 position batches as fast
as it can; two quiet devices each send ``--alerts`` QoS 1 alerts and ``--positions`` QoS 0
position batches at ~250 messages a second meanwhile, once each (no resend), so every loss
shows. Scenarios, all in the same run:

- ``baseline``: the flood alone into a bare paho subscriber (nothing decoded or stored): how
  many messages the broker delivers to a client that does nothing, and how fast.
- ``before``: the previous code, rebuilt in-process: broker ``max_queued_messages 20000``, no
  per-device limiter, and the bus matching every message against each subscription.
- ``hub only``: this code's hub (limiter + per-topic routes) with the old broker queue limit.
- ``after``: this code.

``sys_interval`` is set in every scenario so the broker's drop counter can be read; it changes
nothing else. Figures vary with load on a shared machine: compare within one run.
"""

from __future__ import annotations

import argparse
import logging
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt

import hub.broker
from edge.bus import Bus, _strip_share
from edge.protocol import Channel, DeviceKind, device_topic
from tests.support.broker import BrokerHarness, unique_site
from tests.support.flood import FLOODER, FloodResult, _position, raw_client, run_flood, start_hub

OLD_LIMITS = (
    "max_queued_messages 20000",
    "max_inflight_messages 100",
    "message_size_limit 3000000",
    "sys_interval 2",
)


def _old_handle_message(
    self: Bus, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage
) -> None:
    """The bus's message dispatch before this change: every filter matched per message."""
    with self._subs_lock:
        subs = list(self._subs.items())
    for topic_filter, (_, handler) in subs:
        if mqtt.topic_matches_sub(_strip_share(topic_filter), msg.topic):
            handler(msg.topic, bytes(msg.payload))
            return


@contextmanager
def _patched(limits: tuple[str, ...], old_bus: bool) -> Iterator[None]:
    saved_limits, saved_handle = hub.broker.FLOOD_LIMITS, Bus._handle_message
    hub.broker.FLOOD_LIMITS = limits
    if old_bus:
        Bus._handle_message = _old_handle_message  # type: ignore[method-assign]
    try:
        yield
    finally:
        hub.broker.FLOOD_LIMITS = saved_limits
        Bus._handle_message = saved_handle  # type: ignore[method-assign]


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def baseline(flood_n: int) -> tuple[int, float, int]:
    """Messages a bare subscriber receives of the flood, seconds to the last one, broker drops."""
    with tempfile.TemporaryDirectory() as tmp, _patched(OLD_LIMITS, old_bus=False):
        broker = BrokerHarness(Path(tmp))
        broker.start()
        try:
            site = unique_site("bl")
            broker.add_device(site, DeviceKind.CAMERA, FLOODER)
            got = 0
            last = time.perf_counter()
            dropped: list[int] = []

            def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
                nonlocal got, last
                if m.topic.startswith("$SYS"):
                    dropped.append(int(m.payload))
                    return
                got += 1
                last = time.perf_counter()

            sub = raw_client(broker, "hub", f"{site}-bare")
            sub.on_message = on_message
            sub.subscribe(device_topic(site, DeviceKind.CAMERA, FLOODER, Channel.POS), qos=0)
            sub.subscribe("$SYS/broker/publish/messages/dropped", qos=0)
            time.sleep(0.5)
            topic = device_topic(site, DeviceKind.CAMERA, FLOODER, Channel.POS)
            lines = (_position(site, FLOODER, "e", 0) + b"\n") * flood_n
            t0 = time.perf_counter()
            subprocess.run(
                ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-V", "mqttv5",
                 "-u", FLOODER, "-i", FLOODER, "-P", broker.passwords[FLOODER], "-t", topic,
                 "-q", "0", "-l"],
                input=lines, check=True, timeout=120,
            )  # fmt: skip
            before = -1
            while got != before:
                before = got
                time.sleep(1.5)
            time.sleep(2.5)  # one more $SYS report
            sub.disconnect()
            sub.loop_stop()
            return got, last - t0, dropped[-1] if dropped else -1
        finally:
            broker.stop()


def scenario(name: str, args: argparse.Namespace, limits: tuple[str, ...], *, old_hub: bool
             ) -> tuple[FloodResult, float, float]:
    with tempfile.TemporaryDirectory() as tmp, _patched(limits, old_bus=old_hub):
        broker = BrokerHarness(Path(tmp) / "broker")
        broker.start()
        site = unique_site(name[:2])
        service = start_hub(broker, site, Path(tmp))
        if old_hub:
            service.ingest.flood = None
        try:
            cpu0, t0 = _cpu_s(), time.perf_counter()
            result = run_flood(broker, service, site, flood_n=args.flood, alerts=args.alerts,
                               positions=args.positions, settle_s=90)  # fmt: skip
            elapsed = time.perf_counter() - t0
            cpu = _cpu_s() - cpu0
            deadline = time.monotonic() + 6
            while service.broker_stats.dropped() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(2.5)  # the broker's next $SYS report after the flood
            result.broker_dropped = service.broker_stats.dropped()
            return result, elapsed, cpu
        finally:
            service.stop()
            broker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flood", type=int, default=100_000)
    parser.add_argument("--alerts", type=int, default=50)
    parser.add_argument("--positions", type=int, default=500)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    got, took, dropped = baseline(args.flood)
    print(f"baseline: bare subscriber got {got}/{args.flood} ({got / args.flood:.1%}) in "
          f"{took:.1f}s ({got / took:,.0f} msg/s), broker dropped {dropped}")  # fmt: skip
    rows = []
    for name, limits, old_hub in (
        ("before", OLD_LIMITS, True),
        ("hub only", OLD_LIMITS, False),
        ("after", hub.broker.FLOOD_LIMITS, False),
    ):
        result, elapsed, cpu = scenario(name, args, limits, old_hub=old_hub)
        alerts_sent = sum(result.alerts_sent.values())
        alerts_stored = sum(result.alerts_stored.values())
        pos_sent = sum(result.positions_sent.values())
        pos_stored = sum(result.positions_stored.values())
        received = result.hub_stats.get("received", 0)
        rows.append((name, alerts_stored, alerts_sent, pos_stored, pos_sent,
                     result.broker_dropped, received, elapsed, cpu))  # fmt: skip
        print(f"{name}: {result.summary()}; hub received {received}; "
              f"flood to settled {elapsed:.1f}s; hub-process CPU {cpu:.1f}s")  # fmt: skip
    print()
    print("| scenario | alerts stored | quiet positions lost | broker dropped | hub received "
          "| flood to settled | hub CPU | CPU vs before |")
    print("|---|---|---|---|---|---|---|---|")
    before_cpu = rows[0][8]
    for name, a_st, a_se, p_st, p_se, drop, rec, el, cpu in rows:
        print(f"| {name} | {a_st}/{a_se} | {1 - p_st / p_se:.1%} | {drop} | {rec} | "
              f"{el:.1f} s | {cpu:.1f} s | {cpu / before_cpu:.2f}x |")
    print(f"\nbaseline (bare subscriber, same run): {got / args.flood:.1%} of the flood "
          f"delivered, {got / took:,.0f} msg/s, broker dropped {dropped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
