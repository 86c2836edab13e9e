"""Time-series writer throughput against a raw influxdb-client loop on the same server, same run.

    .venv/bin/python bench/timeseries.py [--count 100000] [--batch 5000]

Server: Debian's victoria-metrics (InfluxDB v2 write API) started on a free loopback port.
Baseline: one thread calling influxdb-client's synchronous ``write`` with pre-encoded line
protocol in batches of ``--batch`` points (transport + server only).
Writer, live: position rows handed to ``TimeSeriesWriter.write_positions`` in chunks of 500 (as
ingest does), timed until every point is acknowledged by the server (includes encoding).
Writer, replay: the same number of points written while the server is down (all spooled to
disk, fsync'd), then timed from the server's restart until the spool is drained.
Also reported: what a ``write_positions`` call costs the ingest thread per point.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision

from hub.timeseries import InfluxConfig, TimeSeriesWriter, position_line
from tests.support.victoria import VictoriaMetrics

CHUNK = 500  # rows per write_positions call, like one ingest batch


def make_rows(count: int, start: datetime, entities: int = 200) -> list[dict[str, Any]]:
    return [
        {
            "msg_id": "bench",
            "site": "bench",
            "device": f"gw-{i % 10}",
            "entity": f"e{i % entities}",
            "entity_kind": "wearer",
            "lon": 116.0 + (i % 10_000) * 1e-6,
            "lat": 39.9 + (i % 7_000) * 1e-6,
            "accuracy_m": 2.5,
            "heading_deg": float(i % 360),
            "speed_mps": 1.25,
            "ts": start + timedelta(milliseconds=i // entities),
        }
        for i in range(count)
    ]


def raw_loop(server: VictoriaMetrics, rows: list[dict[str, Any]], batch: int) -> float:
    lines = [position_line(r, "bench_raw") for r in rows]
    payloads = [
        "\n".join(lines[i : i + batch]).encode("utf-8") for i in range(0, len(lines), batch)
    ]
    client = InfluxDBClient(url=server.url, token="", org="bench", retries=False)
    write_api = client.write_api(write_options=SYNCHRONOUS)
    t0 = time.perf_counter()
    for payload in payloads:
        write_api.write(
            bucket="bench", org="bench", record=payload, write_precision=WritePrecision.NS
        )
    elapsed = time.perf_counter() - t0
    client.close()
    return len(rows) / elapsed


def writer_config(server: VictoriaMetrics, spool: Path, batch: int, name: str) -> InfluxConfig:
    return InfluxConfig(
        url=server.url,
        org="bench",
        bucket="bench",
        batch_size=batch,
        flush_interval_s=0.2,
        queue_max_points=max(batch * 20, 100_000),
        spool_dir=spool,
        spool_max_bytes=4 * 1024 * 1024 * 1024,
        retry_initial_s=0.05,
        retry_max_s=0.2,
        positions_measurement=name,
        health_measurement=f"{name}_health",
    )


def wait_idle(writer: TimeSeriesWriter, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while not writer.idle:
        if time.monotonic() > deadline:
            raise SystemExit(f"writer not idle after {timeout_s}s: {writer.stats()}")
        time.sleep(0.002)


def writer_live(
    server: VictoriaMetrics, rows: list[dict[str, Any]], batch: int, spool: Path
) -> tuple[float, float, dict[str, Any]]:
    writer = TimeSeriesWriter(writer_config(server, spool, batch, "bench_live"))
    writer.start()
    t0 = time.perf_counter()
    in_calls = 0.0
    for i in range(0, len(rows), CHUNK):
        c0 = time.perf_counter()
        writer.write_positions(rows[i : i + CHUNK])
        in_calls += time.perf_counter() - c0
    wait_idle(writer)
    elapsed = time.perf_counter() - t0
    writer.stop()
    return len(rows) / elapsed, in_calls / len(rows) * 1e6, dict(writer.stats())


def writer_replay(
    server: VictoriaMetrics, rows: list[dict[str, Any]], batch: int, spool: Path
) -> tuple[float, dict[str, Any]]:
    server.stop()
    writer = TimeSeriesWriter(writer_config(server, spool, batch, "bench_replay"))
    writer.start()
    for i in range(0, len(rows), CHUNK):
        writer.write_positions(rows[i : i + CHUNK])
    deadline = time.monotonic() + 120
    while writer.stats()["spool_pending_points"] < len(rows):
        if time.monotonic() > deadline:
            raise SystemExit(f"points did not reach the spool: {writer.stats()}")
        time.sleep(0.01)
    server.start()
    t0 = time.perf_counter()
    wait_idle(writer)
    elapsed = time.perf_counter() - t0
    writer.stop()
    return len(rows) / elapsed, dict(writer.stats())


def stored(server: VictoriaMetrics, measurement: str) -> int:
    return server.sample_count(f'{{__name__="{measurement}_lon"}}')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    # The replay run stops the server on purpose: its retry warnings are expected noise.
    logging.basicConfig(level=logging.ERROR)

    with tempfile.TemporaryDirectory(prefix="gw-bench-ts-") as tmp:
        root = Path(tmp)
        server = VictoriaMetrics(root / "vm")
        server.start()
        try:
            now = datetime.now(UTC).replace(microsecond=0)
            rows_raw = make_rows(args.count, now - timedelta(hours=3))
            rows_live = make_rows(args.count, now - timedelta(hours=2))
            rows_replay = make_rows(args.count, now - timedelta(hours=1))
            raw = raw_loop(server, rows_raw, args.batch)
            live, per_point_us, live_stats = writer_live(
                server, rows_live, args.batch, root / "spool-live"
            )
            replay, replay_stats = writer_replay(
                server, rows_replay, args.batch, root / "spool-replay"
            )
            deadline = time.monotonic() + 30
            counts = {}
            while time.monotonic() < deadline:
                counts = {m: stored(server, m) for m in ("bench_live", "bench_replay")}
                if all(c >= args.count for c in counts.values()):
                    break
                time.sleep(0.5)
        finally:
            server.stop()

    print(f"points: {args.count}, batch {args.batch}, server victoria-metrics (loopback)")
    print(f"raw influxdb-client sync loop : {raw:12,.0f} points/s (baseline)")
    print(f"TimeSeriesWriter live         : {live:12,.0f} points/s  ratio {live / raw:.2f}")
    print(f"TimeSeriesWriter spool replay : {replay:12,.0f} points/s  ratio {replay / raw:.2f}")
    print(f"write_positions cost to ingest: {per_point_us:8.2f} us/point (encode + enqueue)")
    print(
        f"stored and read back          : live {counts.get('bench_live')}, "
        f"replay {counts.get('bench_replay')} of {args.count} each"
    )
    print(
        f"failed points                 : live {live_stats['failed_points']}, "
        f"replay {replay_stats['failed_points']}"
    )
    lost = any(c < args.count for c in counts.values())
    return 1 if lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
