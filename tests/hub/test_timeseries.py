"""The time-series writer: line protocol (pure, property-tested), the disk spool, the retry
policy, and the writer itself against a real server that speaks the InfluxDB v2 write API
(Debian's victoria-metrics), read back through that server's own export API."""

from __future__ import annotations

import http.server
import itertools
import logging
import math
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from edge.protocol import EntityKind, Health, Position, PositionBatch
from hub.broker import free_port
from hub.store import position_rows
from hub.timeseries import (
    Backoff,
    EncodeError,
    InfluxConfig,
    Outcome,
    TimeSeriesError,
    TimeSeriesWriter,
    classify_status,
    encode_line,
    escape_key,
    health_line,
    parse_retry_after,
    position_line,
    sanitize_field_key,
    timestamp_ns,
)
from hub.timeseries_spool import HEADER, Spool, SpoolError, SpoolFullError
from tests.support.victoria import VictoriaMetrics
from tests.support.waiting import wait_until

_names = itertools.count(1)


def _measurements() -> tuple[str, str]:
    """Measurement names of their own per test: tests share one server."""
    n = next(_names)
    return f"tp{n}_{int(time.time()) % 100000}", f"th{n}_{int(time.time()) % 100000}"


# -- a line-protocol reader for the tests (the inverse of what the writer emits) -------------


def _split(text: str, sep: str) -> list[str]:
    """Split on ``sep`` where it is not escaped; keeps escapes in the parts."""
    parts, cur, i = [], [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if c == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def parse_line(line: str) -> tuple[str, dict[str, str], dict[str, str], int]:
    head, fields_part, ts = _split(line, " ")
    measurement, *tag_parts = _split(head, ",")
    tags = {}
    for part in tag_parts:
        k, v = _split(part, "=")
        tags[_unescape(k)] = _unescape(v)
    fields = {}
    for part in _split(fields_part, ","):
        k, v = _split(part, "=")
        fields[_unescape(k)] = v
    return measurement, tags, fields, int(ts)


# -- line protocol ---------------------------------------------------------------------------

key_text = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\n\r"), min_size=1
)


@given(tags=st.dictionaries(key_text, key_text, max_size=5), field_key=key_text)
def test_escaped_keys_and_values_read_back_exactly(tags: dict[str, str], field_key: str) -> None:
    line = encode_line("m", sorted(tags.items()), [(field_key, "1.5")], 7)
    measurement, got_tags, got_fields, ts = parse_line(line)
    assert measurement == "m"
    assert got_tags == tags
    assert got_fields == {field_key: "1.5"}
    assert ts == 7
    assert "\n" not in line


def test_line_breaks_cannot_split_a_point() -> None:
    assert escape_key("a\nb\rc") == r"a\ b\ c"


@given(st.text(max_size=80))
def test_sanitized_field_keys_need_no_escaping(text: str) -> None:
    key = sanitize_field_key(text)
    assert key
    assert escape_key(key) == key


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 1),  # noqa: DTZ001  (hypothesis wants naive bounds)
        max_value=datetime(2200, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    )
)
def test_timestamps_are_exact_nanoseconds(ts: datetime) -> None:
    ns = timestamp_ns(ts)
    assert ns % 1000 == 0
    assert (
        datetime.fromtimestamp(ns // 1_000_000_000, UTC)
        + timedelta(microseconds=(ns % 1_000_000_000) // 1000)
        == ts
    )


def test_other_time_zones_are_converted_and_naive_rejected() -> None:
    plus8 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    assert timestamp_ns(plus8) == timestamp_ns(datetime(2024, 5, 1, 0, 0, tzinfo=UTC))
    with pytest.raises(EncodeError):
        timestamp_ns(datetime(2024, 5, 1))  # noqa: DTZ001  (the point of the test)


def _positions(
    site: str, device: str, count: int, start: datetime, entities: int = 3
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(0, count, 400):
        batch = PositionBatch(
            site=site,
            device=device,
            positions=[
                Position(
                    entity=f"e{j % entities}",
                    entity_kind=EntityKind.TRACK if j % 2 else EntityKind.WEARER,
                    lon=116.0 + j * 1e-6,
                    lat=39.9 + (j % 1000) * 1e-6,
                    accuracy_m=None if j % 3 == 0 else 1.5,
                    heading_deg=float(j % 360),
                    speed_mps=None if j % 5 == 0 else 1.25,
                    ts=start + timedelta(milliseconds=j),
                )
                for j in range(i, min(i + 400, count))
            ],
        )
        rows.extend(position_rows(batch))
    return rows


def test_position_row_becomes_one_point_with_optional_fields_left_out() -> None:
    ts = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    rows = position_rows(
        PositionBatch(
            site="s1",
            device="cam-1",
            positions=[
                Position(
                    entity="trk-9",
                    entity_kind=EntityKind.TRACK,
                    lon=116.5,
                    lat=39.75,
                    accuracy_m=2.0,
                    ts=ts,
                )
            ],
        )
    )
    line = position_line(rows[0], "gw_position")
    assert line == (
        "gw_position,device=cam-1,entity=trk-9,entity_kind=track,site=s1 "
        f"lon=116.5,lat=39.75,accuracy_m=2.0 {timestamp_ns(ts)}"
    )


optional_float = st.none() | st.floats(allow_nan=True, allow_infinity=True)


@given(
    tags=st.tuples(key_text, key_text, key_text, key_text),
    lon=st.floats(-180, 180),
    rest=st.tuples(optional_float, optional_float, optional_float, optional_float),
    ts=st.datetimes(timezones=st.just(UTC), min_value=datetime(1970, 1, 2)),  # noqa: DTZ001
)
def test_position_fast_path_matches_the_generic_encoder(
    tags: tuple[str, str, str, str],
    lon: float,
    rest: tuple[float | None, ...],
    ts: datetime,
) -> None:
    row: dict[str, Any] = dict(zip(("device", "entity", "entity_kind", "site"), tags, strict=True))
    row.update(zip(("lat", "accuracy_m", "heading_deg", "speed_mps"), rest, strict=True))
    row.update(lon=lon, ts=ts)
    fields = [
        (name, text)
        for name in ("lon", "lat", "accuracy_m", "heading_deg", "speed_mps")
        if row[name] is not None and (text := repr(float(row[name]))) not in ("nan", "inf", "-inf")
    ]
    expected = encode_line(
        "gw_position",
        [(k, row[k]) for k in ("device", "entity", "entity_kind", "site")],
        fields,
        timestamp_ns(ts),
    )
    assert position_line(row, "gw_position") == expected
    _, got_tags, got_fields, _ = parse_line(expected)
    assert got_tags == dict(zip(("device", "entity", "entity_kind", "site"), tags, strict=True))
    assert float(got_fields["lon"]) == lon


def test_position_row_without_fields_or_time_is_refused() -> None:
    row = {"site": "s", "device": "d", "entity": "e", "entity_kind": "person"}
    with pytest.raises(EncodeError):
        position_line({**row, "ts": datetime.now(UTC)}, "m")  # no lon/lat
    with pytest.raises(EncodeError):
        position_line({**row, "lon": 1.0, "lat": 2.0}, "m")  # no ts
    with pytest.raises(EncodeError):
        position_line({**row, "lon": math.nan, "lat": math.inf, "ts": datetime.now(UTC)}, "m")


def test_health_becomes_one_point_with_typed_fields() -> None:
    ts = datetime(2024, 5, 1, tzinfo=UTC)
    msg = Health(
        site="s1",
        device="cam-1",
        ts=ts,
        uptime_s=12.5,
        fps=14.0,
        queue_depth=3,
        outbox_depth=1,
        cpu_temp_c=51.25,
        metrics={"motion ratio": 0.25, "bad": math.nan},
        dropped={"frames,old": 7},
    )
    measurement, tags, fields, got_ts = parse_line(health_line(msg, "gw_health"))
    assert measurement == "gw_health"
    assert tags == {"device": "cam-1", "site": "s1"}
    assert fields == {
        "uptime_s": "12.5",
        "fps": "14.0",
        "cpu_temp_c": "51.25",
        "queue_depth": "3i",
        "outbox_depth": "1i",
        "metrics.motion_ratio": "0.25",
        "dropped.frames_old": "7i",
    }
    assert got_ts == timestamp_ns(ts)


# -- retry policy ----------------------------------------------------------------------------


def test_retry_after_parses_seconds_and_http_dates() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3", now) == 3.0
    assert parse_retry_after(" 0.5 ", now) == 0.5
    assert parse_retry_after("-4", now) == 0.0
    assert parse_retry_after("Wed, 01 May 2024 12:00:10 GMT", now) == 10.0
    assert parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("", now) is None
    assert parse_retry_after(None, now) is None


@given(
    initial=st.floats(0.01, 5),
    ratio=st.floats(1, 100),
    retry_after=st.none() | st.floats(0, 10_000),
    attempts=st.integers(0, 80),
    seed=st.integers(0, 2**32),
)
def test_backoff_stays_in_its_bounds_and_honours_retry_after(
    initial: float, ratio: float, retry_after: float | None, attempts: int, seed: int
) -> None:
    backoff = Backoff(initial, initial * ratio, 600.0, random.Random(seed), attempt=attempts)
    cap = min(initial * ratio, initial * 2.0**attempts)
    delay = backoff.next_delay(retry_after)
    floor = min(retry_after, 600.0) if retry_after is not None else 0.0
    assert max(cap / 2, floor) <= delay <= max(cap, floor)
    assert backoff.attempt == attempts + 1
    backoff.reset()
    assert backoff.attempt == 0


def test_backoff_grows_then_caps() -> None:
    backoff = Backoff(0.5, 8.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    assert delays[0] <= 0.5
    assert all(4.0 <= d <= 8.0 for d in delays[5:])


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (204, Outcome.WRITTEN),
        (400, Outcome.REJECTED),
        (422, Outcome.REJECTED),
        (401, Outcome.RETRY),
        (403, Outcome.RETRY),
        (404, Outcome.RETRY),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (503, Outcome.RETRY),
    ],
)
def test_status_classification(status: int, outcome: Outcome) -> None:
    assert classify_status(status) is outcome


# -- config ----------------------------------------------------------------------------------


def _config(tmp_path: Path, url: str = "http://127.0.0.1:8086", **overrides: Any) -> InfluxConfig:
    pos, health = _measurements()
    values: dict[str, Any] = {
        "url": url,
        "org": "gridward",
        "bucket": "gridward",
        "batch_size": 500,
        "flush_interval_s": 0.05,
        "queue_max_points": 20_000,
        "spool_dir": tmp_path / "spool",
        "spool_max_bytes": 64 * 1024 * 1024,
        "spool_segment_bytes": 256 * 1024,
        "timeout_s": 2.0,
        "retry_initial_s": 0.05,
        "retry_max_s": 0.4,
        "positions_measurement": pos,
        "health_measurement": health,
    }
    values.update(overrides)
    return InfluxConfig.model_validate(values)


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"token_file": "/x", "token_env": "X"}, "either token_file or token_env"),
        ({"retry_initial_s": 5, "retry_max_s": 1}, "retry_initial_s"),
        ({"batch_size": 5000, "queue_max_points": 100}, "batch_size"),
        ({"spool_segment_bytes": 4 * 1024 * 1024, "spool_max_bytes": 1024 * 1024}, "segment"),
        ({"positions_measurement": "m", "health_measurement": "m"}, "must differ"),
        ({"ca_file": "/ca.pem"}, "https"),
        ({"url": "influx:8086"}, "url"),
        ({"positions_measurement": "bad name"}, "positions_measurement"),
        ({"token": "secret"}, "token"),
    ],
)
def test_config_refuses_nonsense(tmp_path: Path, overrides: dict[str, Any], needle: str) -> None:
    overrides = {"url": "http://127.0.0.1:8086", **overrides}
    with pytest.raises(ValidationError, match=needle):
        _config(tmp_path, **overrides)


def test_token_comes_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "token"
    secret.write_text("tok-123\n", encoding="utf-8")
    assert _config(tmp_path, "http://h:1", token_file=secret).read_token() == "tok-123"
    monkeypatch.setenv("GW_TEST_INFLUX_TOKEN", "tok-env")
    assert _config(tmp_path, "http://h:1", token_env="GW_TEST_INFLUX_TOKEN").read_token() == (
        "tok-env"
    )
    assert _config(tmp_path, "http://h:1").read_token() is None
    with pytest.raises(TimeSeriesError, match="GW_TEST_MISSING"):
        _config(tmp_path, "http://h:1", token_env="GW_TEST_MISSING").read_token()
    with pytest.raises(TimeSeriesError, match="token_file"):
        _config(tmp_path, "http://h:1", token_file=tmp_path / "absent").read_token()


# -- spool -----------------------------------------------------------------------------------


def test_spool_replays_in_order_across_segments_and_reopens(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1024 * 1024, segment_bytes=200)
    for i in range(10):
        spool.append(f"batch-{i}".encode() * 10, points=i + 1)
    assert spool.pending_records == 10
    assert spool.pending_points == 55
    assert len(list(tmp_path.glob("*.seg"))) > 3
    got = []
    for _ in range(4):
        rec = spool.peek()
        assert rec is not None
        got.append(rec.payload)
        spool.ack(rec)
    spool.close()

    again = Spool(tmp_path, max_bytes=1024 * 1024, segment_bytes=200)
    assert again.pending_records == 6
    assert again.pending_points == sum(range(5, 11))
    again.append(b"batch-10" * 10, points=11)
    while (rec := again.peek()) is not None:
        got.append(rec.payload)
        again.ack(rec)
    assert got == [f"batch-{i}".encode() * 10 for i in range(11)]
    assert again.pending_points == 0
    assert list(tmp_path.glob("*.seg")) == []  # drained: disk given back
    again.close()


def test_spool_cuts_off_a_torn_record(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1024 * 1024, segment_bytes=1024 * 1024)
    spool.append(b"whole", points=1)
    spool.close()
    segment = next(tmp_path.glob("*.seg"))
    with segment.open("ab") as f:
        f.write(HEADER.pack(b"GWL1", 100, 3, 0) + b"only part")  # crash mid-append
    again = Spool(tmp_path, max_bytes=1024 * 1024, segment_bytes=1024 * 1024)
    assert again.torn_bytes == HEADER.size + len(b"only part")
    assert again.pending_records == 1
    again.append(b"after", points=1)
    payloads = []
    while (rec := again.peek()) is not None:
        payloads.append(rec.payload)
        again.ack(rec)
    assert payloads == [b"whole", b"after"]
    again.close()


def test_spool_skips_and_counts_a_corrupt_record(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1024 * 1024, segment_bytes=64)
    spool.append(b"first-batch-" * 8, points=2)  # fills segment 1
    spool.append(b"second-batch" * 8, points=3)  # segment 2
    spool.close()
    first = sorted(tmp_path.glob("*.seg"))[0]
    data = bytearray(first.read_bytes())
    data[HEADER.size + 3] ^= 0xFF  # flip a payload byte: CRC mismatch
    first.write_bytes(bytes(data))
    again = Spool(tmp_path, max_bytes=1024 * 1024, segment_bytes=64)
    rec = again.peek()
    assert rec is not None
    assert rec.payload == b"second-batch" * 8
    assert again.corrupt_records == 1
    again.ack(rec)
    assert again.pending_records == 0
    again.close()


def test_spool_refuses_to_grow_past_its_limit(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1000, segment_bytes=500)
    spool.append(b"x" * 400, points=1)
    spool.append(b"x" * 400, points=1)
    with pytest.raises(SpoolFullError, match="spool_max_bytes"):
        spool.append(b"x" * 400, points=1)
    assert spool.pending_records == 2
    spool.close()
    with pytest.raises(SpoolError, match="closed"):
        spool.append(b"x", points=1)


def test_spool_ack_must_follow_peek(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10_000, segment_bytes=1000)
    spool.append(b"a", 1)
    spool.append(b"b", 1)
    first = spool.peek()
    assert first is not None
    spool.ack(first)
    with pytest.raises(SpoolError, match="out of order"):
        spool.ack(first)
    spool.close()


def test_one_spool_directory_serves_one_writer(tmp_path: Path) -> None:
    first = Spool(tmp_path, max_bytes=10_000, segment_bytes=1000)
    with pytest.raises(SpoolError, match="in use by another process"):
        Spool(tmp_path, max_bytes=10_000, segment_bytes=1000)
    first.close()
    second = Spool(tmp_path, max_bytes=10_000, segment_bytes=1000)
    second.close()


def test_a_stranger_file_in_the_spool_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.seg").write_text("mine", encoding="utf-8")
    with pytest.raises(SpoolError, match="not a spool segment"):
        Spool(tmp_path, max_bytes=10_000, segment_bytes=1000)
    (tmp_path / "notes.seg").unlink()
    Spool(tmp_path, max_bytes=10_000, segment_bytes=1000).close()  # the lock was released


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("append"), st.binary(min_size=0, max_size=120)),
            st.tuples(st.just("send"), st.just(b"")),
            st.tuples(st.just("reopen"), st.just(b"")),
        ),
        max_size=40,
    )
)
def test_spool_behaves_like_a_fifo_across_restarts(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, bytes]]
) -> None:
    directory = tmp_path_factory.mktemp("spool")
    spool = Spool(directory, max_bytes=1024 * 1024, segment_bytes=300)
    model: list[bytes] = []
    for op, data in ops:
        if op == "append":
            spool.append(data, points=len(data))
            model.append(data)
        elif op == "send":
            rec = spool.peek()
            if not model:
                assert rec is None
                continue
            assert rec is not None
            assert rec.payload == model.pop(0)
            spool.ack(rec)
        else:
            spool.close()
            spool = Spool(directory, max_bytes=1024 * 1024, segment_bytes=300)
        assert spool.pending_records == len(model)
        assert spool.pending_points == sum(len(m) for m in model)
    spool.close()


# -- the writer against a real server ---------------------------------------------------------


@pytest.fixture(scope="module")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    server = VictoriaMetrics(tmp_path_factory.mktemp("victoria"))
    server.start()
    yield server
    server.stop()


def _ms(ts: datetime) -> int:
    return timestamp_ns(ts) // 1_000_000


def _expected_positions(rows: list[dict[str, Any]]) -> dict[tuple[str, str, int], float]:
    return {(r["entity"], r["entity_kind"], _ms(r["ts"])): r["lon"] for r in rows}


def _stored_positions(
    server: VictoriaMetrics, measurement: str
) -> dict[tuple[str, str, int], float]:
    out = {}
    for series in server.export(f'{{__name__="{measurement}_lon"}}'):
        for ts, value in series.samples.items():
            out[(series.labels["entity"], series.labels["entity_kind"], ts)] = value
    return out


def test_points_arrive_with_their_values_tags_and_timestamps(
    victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    config = _config(tmp_path, victoria.url)
    writer = TimeSeriesWriter(config)
    writer.start()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    rows = _positions("s1", "cam-7", 1200, start)
    health = Health(
        site="s1",
        device="cam-7",
        ts=start,
        uptime_s=99.5,
        fps=12.5,
        inference_ms=31.0,
        queue_depth=4,
        outbox_depth=2,
        cpu_temp_c=48.5,
        metrics={"motion_ratio": 0.125},
        dropped={"frames": 9},
    )
    try:
        assert writer.write_positions(rows) == 1200
        writer.write_health(health)
        wait_until(lambda: writer.idle, 30, message="writer idle")
        wait_until(
            lambda: len(_stored_positions(victoria, config.positions_measurement)) == 1200,
            30,
            message="1200 positions readable",
        )
    finally:
        writer.stop()

    assert _stored_positions(victoria, config.positions_measurement) == _expected_positions(rows)
    by_field: dict[str, dict[tuple[str, int], float]] = {}
    for series in victoria.export(f'{{__name__=~"{config.positions_measurement}_.*"}}'):
        assert series.labels["site"] == "s1"
        assert series.labels["device"] == "cam-7"
        by_field.setdefault(series.name.removeprefix(config.positions_measurement + "_"), {})
        by_field[series.name.removeprefix(config.positions_measurement + "_")].update(
            {(series.labels["entity"], ts): v for ts, v in series.samples.items()}
        )
    assert set(by_field) == {"lon", "lat", "accuracy_m", "heading_deg", "speed_mps"}
    assert len(by_field["accuracy_m"]) == sum(1 for r in rows if r["accuracy_m"] is not None)
    assert len(by_field["speed_mps"]) == sum(1 for r in rows if r["speed_mps"] is not None)
    for r in rows[:50]:
        assert by_field["lat"][(r["entity"], _ms(r["ts"]))] == pytest.approx(r["lat"], abs=1e-12)

    health_series = {
        s.name.removeprefix(config.health_measurement + "_"): s
        for s in victoria.export(f'{{__name__=~"{config.health_measurement}_.*"}}')
    }
    assert {k: list(s.samples.items()) for k, s in health_series.items()} == {
        "uptime_s": [(_ms(start), 99.5)],
        "fps": [(_ms(start), 12.5)],
        "inference_ms": [(_ms(start), 31.0)],
        "queue_depth": [(_ms(start), 4)],
        "outbox_depth": [(_ms(start), 2)],
        "cpu_temp_c": [(_ms(start), 48.5)],
        "metrics.motion_ratio": [(_ms(start), 0.125)],
        "dropped.frames": [(_ms(start), 9)],
    }
    assert all(s.labels == {"site": "s1", "device": "cam-7"} for s in health_series.values())
    stats = writer.stats()
    assert stats["written_points"] == 1201
    assert stats["failed_points"] == 0
    assert stats["spooled_points"] == 0


def test_an_outage_of_the_server_loses_no_points(tmp_path: Path) -> None:
    server = VictoriaMetrics(tmp_path / "vm")
    server.start()
    config = _config(tmp_path, server.url, batch_size=200)
    writer = TimeSeriesWriter(config, rng=random.Random(7))
    writer.start()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    rows = _positions("s2", "band-gw", 6000, start, entities=5)
    chunks = [rows[i : i + 100] for i in range(0, len(rows), 100)]
    try:
        for chunk in chunks[:20]:
            writer.write_positions(chunk)
        wait_until(lambda: writer.stats()["written_points"] >= 1000, 30, message="first writes")
        server.stop()  # outage while the stream goes on
        for chunk in chunks[20:45]:
            writer.write_positions(chunk)
        wait_until(lambda: writer.stats()["spool_pending_points"] > 0, 30, message="spooling")
        wait_until(lambda: writer.stats()["retries"] >= 2, 30, message="retrying")
        server.start()  # same port, same data directory
        for chunk in chunks[45:]:
            writer.write_positions(chunk)
        wait_until(lambda: writer.idle, 30, message="spool drained after the outage")
        stats = writer.stats()
        wait_until(
            lambda: len(_stored_positions(server, config.positions_measurement)) >= len(rows),
            15,
            message="every position readable",
        )
        assert _stored_positions(server, config.positions_measurement) == (
            _expected_positions(rows)
        )
    finally:
        writer.stop()
        server.stop()
    assert stats["failed_points"] == 0
    assert stats["spooled_points"] > 0
    assert stats["replayed_points"] == stats["spooled_points"]
    assert stats["written_points"] == len(rows)


def test_spooled_points_survive_a_writer_restart(victoria: VictoriaMetrics, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    down = _config(tmp_path, dead)
    writer = TimeSeriesWriter(down)
    writer.start()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=15)
    rows = _positions("s3", "cam-1", 900, start)
    writer.write_positions(rows)
    wait_until(lambda: writer.stats()["spool_pending_points"] > 0, 30, message="spooled")
    writer.stop()
    assert writer.stats()["spool_pending_points"] == 900
    assert writer.stats()["queued_points"] == 0

    up = down.model_copy(update={"url": victoria.url})
    again = TimeSeriesWriter(up)
    again.start()
    try:
        wait_until(lambda: again.idle, 15, message="replayed after restart")
        wait_until(
            lambda: len(_stored_positions(victoria, up.positions_measurement)) == 900,
            30,
            message="900 positions readable",
        )
    finally:
        again.stop()
    assert _stored_positions(victoria, up.positions_measurement) == _expected_positions(rows)
    assert again.stats()["replayed_points"] == 900
    assert list((tmp_path / "spool").glob("*.seg")) == []


_CRASHING_WRITER = """
import json, sys, time
from datetime import datetime, timedelta, UTC
from hub.timeseries import InfluxConfig, TimeSeriesWriter
config = InfluxConfig.model_validate_json(sys.argv[1])
start = datetime.fromisoformat(sys.argv[2])
count = int(sys.argv[3])
writer = TimeSeriesWriter(config)
writer.start()
rows = [
    {"site": "s8", "device": "gw-1", "entity": f"e{i % 7}", "entity_kind": "wearer",
     "lon": 100.0 + i * 1e-6, "lat": 30.0, "accuracy_m": None, "heading_deg": None,
     "speed_mps": None, "ts": start + timedelta(milliseconds=i)}
    for i in range(count)
]
writer.write_positions(rows)
while writer.stats()["spool_pending_points"] < count:
    time.sleep(0.01)
print("spooled", flush=True)
time.sleep(60)  # killed here, never stopped
"""


def test_the_spool_survives_a_crash_of_the_hub_process(
    victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    config = _config(tmp_path, dead, retry_initial_s=5.0, retry_max_s=5.0)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=25)
    count = 1500
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _CRASHING_WRITER,
            config.model_dump_json(),
            start.isoformat(),
            str(count),
        ],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"spooled"
    finally:
        proc.kill()  # SIGKILL: no stop(), no flush, no cursor written
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()

    up = config.model_copy(update={"url": victoria.url})
    writer = TimeSeriesWriter(up)
    writer.start()
    try:
        wait_until(lambda: writer.idle, 15, message="replayed after the crash")
        wait_until(
            lambda: len(_stored_positions(victoria, up.positions_measurement)) == count,
            30,
            message="every position readable",
        )
    finally:
        writer.stop()
    stored = _stored_positions(victoria, up.positions_measurement)
    assert stored == {
        (f"e{i % 7}", "wearer", _ms(start + timedelta(milliseconds=i))): pytest.approx(
            100.0 + i * 1e-6, abs=1e-12
        )
        for i in range(count)
    }
    assert writer.stats()["replayed_points"] == count


def test_overflow_of_the_memory_queue_goes_to_disk_not_away(
    victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    config = _config(
        tmp_path, victoria.url, batch_size=50, queue_max_points=100, flush_interval_s=5.0
    )
    writer = TimeSeriesWriter(config)
    writer.start()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    rows = _positions("s4", "cam-2", 3000, start)
    try:
        writer.write_positions(rows)  # one call far larger than the queue
        stats = writer.stats()
        assert stats["overflow_spooled_points"] >= 2900
        wait_until(lambda: writer.idle, 15, message="overflow replayed")
        wait_until(
            lambda: len(_stored_positions(victoria, config.positions_measurement)) == 3000,
            30,
            message="3000 positions readable",
        )
    finally:
        writer.stop()
    assert _stored_positions(victoria, config.positions_measurement) == _expected_positions(rows)
    assert writer.stats()["failed_points"] == 0


def test_a_full_spool_counts_every_lost_point(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    config = _config(
        tmp_path,
        dead,
        spool_max_bytes=1024 * 1024,
        spool_segment_bytes=64 * 1024,
        retry_initial_s=5.0,
        retry_max_s=5.0,
    )
    writer = TimeSeriesWriter(config)
    writer.start()
    start = datetime.now(UTC).replace(microsecond=0)
    rows = _positions("s6", "cam-4", 12_000, start)
    bad = {**rows[0], "ts": datetime(2024, 1, 1)}  # noqa: DTZ001  (naive: refused)
    try:
        assert writer.write_positions([*rows, bad]) == 12_000
        wait_until(
            lambda: writer.stats()["queued_points"] == 0 and writer.stats()["lost_points"] > 0,
            30,
            message="spool full",
        )
    finally:
        writer.stop()
    stats = writer.stats()
    assert stats["invalid_rows"] == 1
    assert stats["written_points"] == 0
    assert stats["spool_bytes"] <= 1024 * 1024
    # Every point is somewhere: on disk, or counted as lost. None vanished.
    assert stats["spool_pending_points"] + stats["lost_points"] == 12_000
    assert stats["failed_points"] == stats["lost_points"]


# -- protocol edge cases against a scripted HTTP server ---------------------------------------


@dataclass
class Scripted:
    """A tiny HTTP server that answers write requests from a script of (status, headers)."""

    script: list[tuple[int, dict[str, str]]]
    requests: list[tuple[float, str, dict[str, str], bytes]] = field(default_factory=list)
    server: http.server.HTTPServer | None = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                outer.requests.append(
                    (time.monotonic(), self.path, dict(self.headers.items()), body)
                )
                status, headers = outer.script.pop(0) if outer.script else (204, {})
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                message = b'{"code":"x","message":"scripted"}' if status >= 400 else b""
                self.send_header("Content-Length", str(len(message)))
                self.end_headers()
                self.wfile.write(message)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="scripted-http")
        self.thread.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.thread is not None:
            self.thread.join(5)


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted(script=[])
    server.start()
    yield server
    server.stop()


def _health(n: int) -> Health:
    return Health(
        site="s5",
        device="cam-3",
        ts=datetime(2024, 5, 1, tzinfo=UTC) + timedelta(seconds=n),
        uptime_s=float(n),
    )


def test_retry_after_is_honoured(scripted: Scripted, tmp_path: Path) -> None:
    scripted.script = [(429, {"Retry-After": "1"}), (503, {"Retry-After": "1"})]
    writer = TimeSeriesWriter(_config(tmp_path, scripted.url, retry_initial_s=0.01))
    writer.start()
    try:
        for n in range(3):
            writer.write_health(_health(n))
        wait_until(lambda: writer.idle and len(scripted.requests) >= 3, 30, message="delivered")
    finally:
        writer.stop()
    times = [t for t, *_ in scripted.requests]
    assert len(times) == 3
    assert times[1] - times[0] >= 1.0
    assert times[2] - times[1] >= 1.0
    bodies = [body for *_, body in scripted.requests]
    assert bodies[0] == bodies[1] == bodies[2]  # the same batch, in full
    assert len(bodies[0].splitlines()) == 3
    path = scripted.requests[0][1]
    assert path.startswith("/api/v2/write?")
    assert "precision=ns" in path
    assert "bucket=gridward" in path
    stats = writer.stats()
    assert stats["retries"] == 2
    assert stats["written_points"] == 3
    assert stats["failed_points"] == 0


def test_rejected_points_are_kept_and_counted_not_retried(
    scripted: Scripted, tmp_path: Path
) -> None:
    scripted.script = [(400, {})]
    config = _config(tmp_path, scripted.url)
    writer = TimeSeriesWriter(config)
    writer.start()
    try:
        writer.write_health(_health(1))
        wait_until(lambda: writer.stats()["rejected_points"] == 1, 30, message="rejected")
        writer.write_health(_health(2))
        wait_until(lambda: writer.stats()["written_points"] == 1, 30, message="next one written")
    finally:
        writer.stop()
    assert len(scripted.requests) == 2
    kept = (config.spool_dir / "rejected.lp").read_bytes()
    assert kept.decode().strip() == health_line(_health(1), config.health_measurement)


def test_a_batch_too_large_for_the_server_is_split(scripted: Scripted, tmp_path: Path) -> None:
    scripted.script = [(413, {})]
    writer = TimeSeriesWriter(_config(tmp_path, scripted.url, flush_interval_s=0.5))
    writer.start()
    try:
        for n in range(10):
            writer.write_health(_health(n))
        wait_until(lambda: writer.stats()["written_points"] == 10, 30, message="written")
    finally:
        writer.stop()
    sizes = [len(body.splitlines()) for *_, body in scripted.requests]
    assert sizes == [10, 5, 5]
    assert writer.stats()["split_batches"] == 1


def test_a_split_record_that_half_fails_keeps_only_the_unsent_half(
    scripted: Scripted, tmp_path: Path
) -> None:
    # fresh batch: 503 -> spooled; replay: 413 -> split; first half 204; second half 503 ->
    # only those 5 stay in the spool; their replay: 204.
    scripted.script = [(503, {}), (413, {}), (204, {}), (503, {}), (204, {})]
    writer = TimeSeriesWriter(_config(tmp_path, scripted.url, flush_interval_s=0.5))
    writer.start()
    try:
        for n in range(10):
            writer.write_health(_health(n))
        wait_until(lambda: writer.idle and len(scripted.requests) == 5, 30, message="written")
    finally:
        writer.stop()
    bodies = [body.splitlines() for *_, body in scripted.requests]
    assert [len(b) for b in bodies] == [10, 10, 5, 5, 5]
    assert bodies[3] == bodies[4] == bodies[0][5:]
    stats = writer.stats()
    assert stats["written_points"] == 10
    assert stats["replayed_points"] == 10
    assert stats["spooled_points"] == 15  # the batch, then the unsent half of it
    assert stats["failed_points"] == 0
    assert stats["spool_pending_points"] == 0


def test_auth_failures_keep_points_and_never_log_the_token(
    scripted: Scripted,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("GW_TEST_TOKEN", "s3cr3t-t0ken")
    scripted.script = [(401, {}), (401, {})]
    writer = TimeSeriesWriter(_config(tmp_path, scripted.url, token_env="GW_TEST_TOKEN"))
    caplog.set_level(logging.DEBUG)
    writer.start()
    try:
        writer.write_health(_health(1))
        wait_until(lambda: writer.stats()["written_points"] == 1, 30, message="written")
    finally:
        writer.stop()
    assert scripted.requests[0][2]["Authorization"] == "Token s3cr3t-t0ken"
    assert writer.stats()["retries"] == 2
    assert "HTTP 401" in caplog.text
    assert "s3cr3t-t0ken" not in caplog.text
    assert "s3cr3t-t0ken" not in repr(writer.stats())


def test_ingest_messages_become_points(scripted: Scripted, tmp_path: Path) -> None:
    config = _config(tmp_path, scripted.url)
    writer = TimeSeriesWriter(config)
    ts = datetime(2024, 5, 1, tzinfo=UTC)
    batch = PositionBatch(
        site="s7",
        device="band-gw",
        positions=[
            Position(entity=f"w{i}", entity_kind=EntityKind.WEARER, lon=1.0, lat=2.0, ts=ts)
            for i in range(3)
        ],
    )
    writer.start()
    try:
        assert writer.write_messages([batch, _health(1), "not a time series"]) == 4
        wait_until(lambda: writer.stats()["written_points"] == 4, 30, message="written")
    finally:
        writer.stop()
    lines = [
        parse_line(line) for *_, body in scripted.requests for line in body.decode().splitlines()
    ]
    assert sorted(m for m, *_ in lines) == sorted(
        [config.positions_measurement] * 3 + [config.health_measurement]
    )
    assert {t["entity"] for m, t, *_ in lines if m == config.positions_measurement} == {
        "w0",
        "w1",
        "w2",
    }


def test_writes_need_a_running_writer(tmp_path: Path) -> None:
    writer = TimeSeriesWriter(_config(tmp_path, "http://127.0.0.1:9"))
    with pytest.raises(TimeSeriesError, match="not running"):
        writer.write_health(_health(1))
    writer.start()
    writer.stop()
    with pytest.raises(TimeSeriesError, match="not running"):
        writer.write_health(_health(1))
