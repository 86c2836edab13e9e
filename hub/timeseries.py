"""Positions and device health as time series, written to InfluxDB (2.x, 3.x, or any server
with the InfluxDB v2 write API) through influxdb-client.

Ingest hands rows over without waiting: they are encoded to line protocol and queued in memory
(bounded, counted in points). One background thread sends batches with influxdb-client's
synchronous write API. A batch that fails for a reason that can pass (server down, 5xx, 429,
auth not yet fixed) goes to the disk spool and is replayed oldest first, with jittered
exponential backoff that waits at least as long as the server's ``Retry-After``. While the
spool holds anything, new batches join it behind the older ones, so replay keeps the order they
arrived in. When the memory queue is full the overflow is spooled directly from the caller.

Nothing is dropped silently: every point ends up written, in the spool, in the dead-letter file
(rejected as invalid by the server), or counted as lost with an ERROR log (spool full).
Replays may resend a batch the server already stored (it died before answering); InfluxDB keeps
one point per measurement, tag set and timestamp, so the copy is harmless.
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypedDict, cast

from pydantic import Field, model_validator

from edge.config import StrictModel
from edge.protocol import Health, PositionBatch
from hub.timeseries_spool import Spool, SpoolError, SpoolFullError

log = logging.getLogger(__name__)

MeasurementName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
EnvVarName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
MiB = 1024 * 1024


class TimeSeriesError(Exception):
    """The time-series writer cannot work as configured; the message says what to fix."""


class InfluxConfig(StrictModel):
    """Where and how positions and health go as time series. Absent = not written at all."""

    url: Annotated[str, Field(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")] = Field(
        description="base URL of the server, e.g. http://influx:8086 (the client appends "
        "/api/v2/write)"
    )
    org: Annotated[str, Field(min_length=1, max_length=256)] = Field(
        description="InfluxDB 2.x organisation name or id; InfluxDB 3.x ignores it"
    )
    bucket: Annotated[str, Field(min_length=1, max_length=256)] = Field(
        description="InfluxDB 2.x bucket; for InfluxDB 3.x the database name"
    )
    token_file: Path | None = Field(
        default=None, description="file holding the API token (first line); never commit it"
    )
    token_env: EnvVarName | None = Field(
        default=None, description="name of the environment variable holding the API token"
    )
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 5000
    flush_interval_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    queue_max_points: Annotated[int, Field(ge=1, le=10_000_000)] = 100_000
    spool_dir: Path = Path("/var/lib/gridward/influx-spool")
    spool_max_bytes: Annotated[int, Field(ge=MiB)] = 1024 * MiB
    spool_segment_bytes: Annotated[int, Field(ge=64 * 1024)] = 16 * MiB
    rejected_max_bytes: Annotated[int, Field(ge=0)] = 64 * MiB
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    retry_initial_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    retry_max_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    retry_after_max_s: Annotated[float, Field(gt=0, le=86_400)] = 600.0
    gzip: bool = False
    verify_tls: bool = True
    ca_file: Path | None = None
    positions_measurement: MeasurementName = "gw_position"
    health_measurement: MeasurementName = "gw_health"

    @model_validator(mode="after")
    def _coherent(self) -> InfluxConfig:
        if self.token_file is not None and self.token_env is not None:
            raise ValueError("set either token_file or token_env, not both")
        if self.retry_initial_s > self.retry_max_s:
            raise ValueError("retry_initial_s must not be larger than retry_max_s")
        if self.batch_size > self.queue_max_points:
            raise ValueError("batch_size must not be larger than queue_max_points")
        if self.spool_segment_bytes > self.spool_max_bytes:
            raise ValueError("spool_segment_bytes must not be larger than spool_max_bytes")
        if self.positions_measurement == self.health_measurement:
            raise ValueError("positions_measurement and health_measurement must differ")
        if self.ca_file is not None and not self.url.startswith("https://"):
            raise ValueError("ca_file only applies to an https:// url")
        return self

    def read_token(self) -> str | None:
        """The API token, or None when neither token_file nor token_env is set."""
        if self.token_file is not None:
            try:
                token = self.token_file.read_text(encoding="utf-8").strip().splitlines()
            except OSError as err:
                raise TimeSeriesError(
                    f"cannot read the time-series token_file {self.token_file}: {err.strerror}"
                ) from err
            if not token or not token[0].strip():
                raise TimeSeriesError(f"the time-series token_file {self.token_file} is empty")
            return token[0].strip()
        if self.token_env is not None:
            value = os.environ.get(self.token_env, "").strip()
            if not value:
                raise TimeSeriesError(
                    f"the environment variable {self.token_env} (token_env) is not set"
                )
            return value
        return None


# -- line protocol (pure) -------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\\": "\\\\"})
_LINE_BREAKS = str.maketrans({"\n": " ", "\r": " "})
_NEEDS_ESCAPE = re.compile(r"[,= \\\n\r]")
_TAG_CACHE_MAX = 100_000
POSITION_TAGS = ("device", "entity", "entity_kind", "site")  # sorted: InfluxDB's fast path
POSITION_FIELDS = ("lon", "lat", "accuracy_m", "heading_deg", "speed_mps")
HEALTH_FLOAT_FIELDS = ("uptime_s", "fps", "inference_ms", "cpu_temp_c")
HEALTH_INT_FIELDS = ("queue_depth", "outbox_depth")


class EncodeError(ValueError):
    """A row that cannot become a point (no usable field, naive timestamp)."""


def escape_key(text: str) -> str:
    """Escape a tag key, tag value or field key (line breaks cannot be escaped: replaced)."""
    if _NEEDS_ESCAPE.search(text) is None:
        return text  # the common case (ids are [A-Za-z0-9_-]): skip two translate passes
    return text.translate(_LINE_BREAKS).translate(_KEY_ESCAPES)


def sanitize_field_key(text: str) -> str:
    """A device-chosen metric name as a plain field key (no escaping needed anywhere)."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "_.:-") else "_" for c in text)
    return cleaned or "_"


def timestamp_ns(ts: datetime) -> int:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise EncodeError("timestamp has no time zone; expected aware UTC")
    delta = ts - _EPOCH  # exact integer arithmetic: a float timestamp would lose nanoseconds
    return ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1000


def format_float(value: float) -> str | None:
    """A float field value, or None for NaN/inf (line protocol cannot carry them)."""
    if not math.isfinite(value):
        return None
    return repr(float(value))


def encode_line(
    measurement: str,
    tags: Iterable[tuple[str, str]],
    fields: Iterable[tuple[str, str]],
    ts_ns: int,
) -> str:
    """One line of line protocol; ``fields`` values are already formatted."""
    tag_part = "".join(f",{escape_key(k)}={escape_key(v)}" for k, v in tags if v != "")
    field_part = ",".join(f"{escape_key(k)}={v}" for k, v in fields)
    if not field_part:
        raise EncodeError(f"a {measurement} point needs at least one field")
    return f"{measurement}{tag_part} {field_part} {ts_ns}"


_tag_cache: dict[tuple[str, ...], str] = {}


def _position_head(measurement: str, values: tuple[str, ...]) -> str:
    """``measurement,tag=value,...`` for one entity; cached, the same few thousand repeat."""
    key = (measurement, *values)
    head = _tag_cache.get(key)
    if head is None:
        tags = "".join(
            f",{k}={escape_key(v)}" for k, v in zip(POSITION_TAGS, values, strict=True) if v
        )
        head = f"{measurement}{tags}"
        if len(_tag_cache) >= _TAG_CACHE_MAX:
            _tag_cache.clear()
        _tag_cache[key] = head
    return head


def position_line(row: Mapping[str, Any], measurement: str) -> str:
    """A row of :func:`hub.store.position_rows` as one point (the hot path of the writer:
    the same text as :func:`encode_line`, built with fewer steps)."""
    try:
        head = _position_head(measurement, tuple(str(row[k]) for k in POSITION_TAGS))
        fields = []
        for name in POSITION_FIELDS:
            value = row.get(name)
            if value is None:
                continue
            number = float(value)
            if math.isfinite(number):
                fields.append(f"{name}={number!r}")
        ts = row["ts"]
    except (KeyError, TypeError, ValueError) as err:
        raise EncodeError(f"position row is missing or has a bad {err}") from err
    if not isinstance(ts, datetime):
        raise EncodeError("position row ts is not a datetime")
    if not fields:
        raise EncodeError(f"a {measurement} point needs at least one field")
    return f"{head} {','.join(fields)} {timestamp_ns(ts)}"


def health_line(msg: Health, measurement: str) -> str:
    """A health heartbeat as one point: site/device tags, every number a field."""
    fields: dict[str, str] = {}
    for name in HEALTH_FLOAT_FIELDS:
        value = getattr(msg, name)
        if value is not None and (text := format_float(value)) is not None:
            fields[name] = text
    for name in HEALTH_INT_FIELDS:
        fields[name] = f"{int(getattr(msg, name))}i"
    for key, metric in sorted(msg.metrics.items()):
        if (text := format_float(metric)) is not None:
            fields[f"metrics.{sanitize_field_key(key)}"] = text
    for key, count in sorted(msg.dropped.items()):
        fields[f"dropped.{sanitize_field_key(key)}"] = f"{int(count)}i"
    tags = [("device", msg.device), ("site", msg.site)]
    return encode_line(measurement, tags, fields.items(), timestamp_ns(msg.ts))


# -- retry policy (pure) --------------------------------------------------------------------


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max((when - current).total_seconds(), 0.0)


@dataclass
class Backoff:
    """Exponential backoff with "equal jitter" (half fixed, half random), capped; a server's
    Retry-After is a floor, capped at ``retry_after_max_s`` so a broken header cannot park
    the writer for days."""

    initial_s: float
    max_s: float
    retry_after_max_s: float = 600.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def next_delay(self, retry_after_s: float | None = None) -> float:
        cap = min(self.max_s, self.initial_s * (2.0 ** min(self.attempt, 62)))
        self.attempt += 1
        delay = cap / 2 + self.rng.uniform(0, cap / 2)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.retry_after_max_s))
        return delay

    def reset(self) -> None:
        self.attempt = 0


class Outcome(Enum):
    WRITTEN = "written"
    RETRY = "retry"  # keep it, try again later
    REJECTED = "rejected"  # the server refuses these points for good (bad data)


@dataclass(frozen=True, slots=True)
class SendResult:
    """How one delivery went. On RETRY, ``remainder`` holds the lines still to send (all of
    them, or the tail of a batch that was split after HTTP 413 and partly written)."""

    outcome: Outcome
    status: int | None = None
    retry_after_s: float | None = None
    reason: str = ""
    written: int = 0
    remainder: bytes = b""
    remainder_points: int = 0


def classify_status(status: int) -> Outcome:
    """What an HTTP status from the write endpoint means for the batch."""
    if 200 <= status < 300:
        return Outcome.WRITTEN
    if status in (400, 422):
        # 400: line protocol the server cannot parse (or a partial write: the valid points
        # were stored); 422: points outside the bucket's retention. Resending cannot help.
        return Outcome.REJECTED
    # 401/403/404 (token, permission, bucket) are fixed by an operator; 413 is split before
    # we get here; 429/5xx/0 (no response) pass by themselves. Keep the points meanwhile.
    return Outcome.RETRY


# -- the writer -----------------------------------------------------------------------------


class WriterStats(TypedDict):
    """What :meth:`TimeSeriesWriter.stats` reports. Every point handed to the writer is in
    exactly one of: written, queued, spool_pending, failed (rejected + lost)."""

    written_points: int
    written_batches: int
    spooled_points: int  # ever put on disk (batches that failed, or queued behind them)
    overflow_spooled_points: int  # of those, spooled by the caller because the queue was full
    replayed_points: int  # written from the spool
    retries: int  # failed attempts that will be retried
    rejected_points: int  # refused by the server as invalid; kept in rejected.lp
    lost_points: int  # spool full, disk error, or rejected.lp full: logged at ERROR
    failed_points: int  # rejected + lost
    invalid_rows: int  # rows that could not be encoded (never became points)
    split_batches: int  # batches split in two after HTTP 413
    queued_points: int
    in_flight_points: int
    spool_pending_points: int
    spool_pending_records: int
    spool_bytes: int
    spool_corrupt_records: int
    backing_off: bool
    next_attempt_in_s: float
    last_status: int | None
    last_error: str
    last_success: str | None
    running: bool


SendFn = Callable[[bytes], None]


@dataclass
class _Counters:
    written_points: int = 0
    written_batches: int = 0
    spooled_points: int = 0
    overflow_spooled_points: int = 0
    replayed_points: int = 0
    retries: int = 0
    rejected_points: int = 0
    lost_points: int = 0
    invalid_rows: int = 0
    split_batches: int = 0


class TimeSeriesWriter:
    """See the module docstring. ``start`` / ``stop`` bracket its life; ``write_*`` are
    thread-safe and never wait for the network."""

    def __init__(
        self,
        config: InfluxConfig,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._token = config.read_token()
        self._clock = clock
        self._backoff = Backoff(
            config.retry_initial_s,
            config.retry_max_s,
            config.retry_after_max_s,
            rng or random.Random(),  # noqa: S311  (jitter, not cryptography)
        )
        self._queue: deque[str] = deque()
        self._first_queued_at: float | None = None
        self._cond = threading.Condition()
        self._stopping = False
        self._closed = False
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._spool: Spool | None = None
        self._client: Any = None
        self._send: SendFn | None = None
        self._next_attempt = 0.0
        self._counts = _Counters()
        self._count_lock = threading.Lock()
        self._last_error = ""
        self._last_status: int | None = None
        self._last_success: datetime | None = None
        self._last_loud_log: dict[str, float] = {}

    # -- life -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise TimeSeriesError("the time-series writer is already running")
        try:
            self._spool = Spool(
                self.config.spool_dir, self.config.spool_max_bytes, self.config.spool_segment_bytes
            )
        except SpoolError as err:
            raise TimeSeriesError(str(err)) from err
        self._client, self._send = self._make_client()
        self._stopping = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="influx-writer", daemon=True)
        self._thread.start()
        log.info(
            "time-series writer started: %s bucket %s (%s points waiting in the spool)",
            self.config.url,
            self.config.bucket,
            self._spool.pending_points,
        )

    @property
    def alive(self) -> bool:
        """Whether the writer thread runs (for the hub's health: a dead writer spools nothing)."""
        return self._thread is not None and self._thread.is_alive()

    def _make_client(self) -> tuple[Any, SendFn]:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS
        from influxdb_client.domain.write_precision import WritePrecision

        cfg = self.config
        client = InfluxDBClient(
            url=cfg.url,
            token=self._token or "",  # empty: no Authorization header (servers without auth)
            org=cfg.org,
            timeout=int(cfg.timeout_s * 1000),
            enable_gzip=cfg.gzip,
            verify_ssl=cfg.verify_tls,
            ssl_ca_cert=str(cfg.ca_file) if cfg.ca_file else None,
            retries=False,  # our backoff and spool decide; urllib3 must not retry on its own
        )
        write_api = client.write_api(write_options=SYNCHRONOUS)
        precision = cast(WritePrecision, WritePrecision.NS)  # the stubs type it as str

        def send(payload: bytes) -> None:
            write_api.write(
                bucket=cfg.bucket, org=cfg.org, record=payload, write_precision=precision
            )

        return client, send

    def stop(self, timeout_s: float | None = None) -> None:
        """Flush the queue (sent if the server is up, else spooled) and stop. Unsent spool
        records stay on disk for the next start."""
        thread = self._thread
        if thread is None:
            return
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        limit = timeout_s if timeout_s is not None else self.config.timeout_s * 3 + 5
        thread.join(limit)
        if thread.is_alive():
            log.error("time-series writer did not stop within %.1fs", limit)
            return
        self._thread = None
        with self._cond:
            # Rows handed over after the thread's last look at the queue: keep them on disk.
            self._closed = True
            leftover = list(self._queue)
            self._queue.clear()
            self._first_queued_at = None
        if leftover:
            self._spool_lines(leftover)
        if self._client is not None:
            _close_connection_pools(self._client)
            self._client.close()
            self._client = None
        if self._spool is not None:
            self._spool.close()
        log.info("time-series writer stopped: %s", self.stats())

    # -- input ------------------------------------------------------------------------------

    def write_positions(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Queue position rows (as made by ``hub.store.position_rows``); returns how many
        became points. Bad rows are counted (``invalid_rows``) and logged, not raised."""
        measurement = self.config.positions_measurement
        lines = []
        bad = 0
        first_error: EncodeError | None = None
        for row in rows:
            try:
                lines.append(position_line(row, measurement))
            except EncodeError as err:
                bad += 1
                first_error = first_error or err
        if bad:
            with self._count_lock:
                self._counts.invalid_rows += bad
            log.warning("%s position rows not written as time series: %s", bad, first_error)
        self._enqueue(lines)
        return len(lines)

    def write_messages(self, messages: Iterable[object]) -> int:
        """Queue the time-series part of stored ingest messages (``PositionBatch`` and
        ``Health``; others are ignored). Call after the store committed them. Returns points."""
        from hub.store import position_rows

        rows: list[dict[str, Any]] = []
        points = 0
        for msg in messages:
            if isinstance(msg, PositionBatch):
                rows.extend(position_rows(msg))
            elif isinstance(msg, Health):
                self.write_health(msg)
                points += 1
        if rows:
            points += self.write_positions(rows)
        return points

    def write_health(self, msg: Health) -> None:
        try:
            line = health_line(msg, self.config.health_measurement)
        except EncodeError as err:
            with self._count_lock:
                self._counts.invalid_rows += 1
            log.warning("health of %s not written as a time series: %s", msg.device, err)
            return
        self._enqueue([line])

    def _enqueue(self, lines: list[str]) -> None:
        if not lines:
            return
        overflow: list[str] = []
        with self._cond:
            if self._spool is None or self._closed:
                raise TimeSeriesError("the time-series writer is not running")
            room = self.config.queue_max_points - len(self._queue)
            if room < len(lines):
                overflow = lines[max(room, 0) :]
                lines = lines[: max(room, 0)]
            if lines:
                was_empty = not self._queue
                if was_empty:
                    self._first_queued_at = self._clock()
                self._queue.extend(lines)
                # Wake the writer for a full batch, or so it starts the flush_interval clock.
                if was_empty or len(self._queue) >= self.config.batch_size:
                    self._cond.notify()
        if overflow:
            # The writer cannot keep up (or the server is down and replay is slow): the
            # caller pays one fsync rather than losing points or blocking on the network.
            if self._spool_lines(overflow):
                with self._count_lock:
                    self._counts.overflow_spooled_points += len(overflow)
            with self._cond:
                self._cond.notify()

    # -- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch, stopping = self._take_batch()
            if batch:
                try:
                    self._handle_batch(batch, stopping)
                finally:
                    with self._cond:
                        self._in_flight = 0
            spool = self._spool
            if (
                not stopping
                and spool is not None
                and spool.pending_records
                and self._clock() >= self._next_attempt
            ):
                try:
                    self._replay_one()
                except (SpoolError, OSError) as err:
                    # The records stay on disk; try again after a backoff step.
                    self._loud("time-series spool replay failed: %s", err)
                    self._schedule_retry(SendResult(Outcome.RETRY, reason=str(err)), stopping)
            if stopping:
                with self._cond:
                    if not self._queue:
                        return

    def _take_batch(self) -> tuple[list[str], bool]:
        size = self.config.batch_size
        with self._cond:
            while True:
                now = self._clock()
                if self._stopping:
                    return self._pop(size), True
                if len(self._queue) >= size:
                    return self._pop(size), False
                if self._queue and self._first_queued_at is not None:
                    due = self._first_queued_at + self.config.flush_interval_s
                    if now >= due:
                        return self._pop(size), False
                else:
                    due = math.inf
                spool = self._spool
                if spool is not None and spool.pending_records:
                    if now >= self._next_attempt:
                        return [], False
                    due = min(due, self._next_attempt)
                wait = None if due == math.inf else max(due - now, 0.001)
                self._cond.wait(wait)

    def _pop(self, size: int) -> list[str]:
        count = min(size, len(self._queue))
        batch = [self._queue.popleft() for _ in range(count)]
        self._in_flight = count
        self._first_queued_at = self._clock() if self._queue else None
        return batch

    def _handle_batch(self, lines: list[str], stopping: bool) -> None:
        spool = self._spool
        assert spool is not None  # noqa: S101  (set in start, the thread runs after)
        if spool.pending_records or self._clock() < self._next_attempt:
            # Older points wait on disk, or the server asked us to hold off: queue behind them.
            self._spool_lines(lines)
            return
        payload = "\n".join(lines).encode("utf-8")
        result = self._deliver(payload, len(lines))
        if result.written:
            self._written(result.written)
        if result.outcome is Outcome.RETRY:
            self._spool_payload(result.remainder, result.remainder_points)
            self._schedule_retry(result, stopping)
        # REJECTED points were dead-lettered and counted inside _deliver.

    def _replay_one(self) -> None:
        spool = self._spool
        assert spool is not None  # noqa: S101
        record = spool.peek()
        if record is None:
            return
        result = self._deliver(record.payload, record.points)
        if result.written:
            self._written(result.written)
            with self._count_lock:
                self._counts.replayed_points += result.written
        if result.outcome is Outcome.RETRY:
            self._schedule_retry(result, stopping=False)
            if result.remainder_points == record.points:
                return  # nothing of it went through: keep the record as it is
            # Part of a split record went through: keep only the rest (a crash between these
            # two steps resends the written part, which the server deduplicates).
            self._spool_payload(result.remainder, result.remainder_points)
        spool.ack(record)
        if spool.pending_records == 0:
            log.info("time-series spool replayed completely")

    def _written(self, points: int) -> None:
        self._backoff.reset()
        self._next_attempt = 0.0
        self._last_success = datetime.now(UTC)
        with self._count_lock:
            self._counts.written_points += points
            self._counts.written_batches += 1

    def _schedule_retry(self, result: SendResult, stopping: bool) -> None:
        delay = self._backoff.next_delay(result.retry_after_s)
        self._next_attempt = self._clock() + delay
        with self._count_lock:
            self._counts.retries += 1
        if not stopping:
            log.warning(
                "time-series write failed (%s); retrying in %.2fs, points kept in the spool",
                result.reason,
                delay,
            )

    def _deliver(self, payload: bytes, points: int) -> SendResult:
        """Send one payload; split it on 413 (too large); dead-letter what the server rejects."""
        result = self._send_once(payload)
        if result.status == 413 and points > 1:
            with self._count_lock:
                self._counts.split_batches += 1
            lines = payload.split(b"\n")
            half = len(lines) // 2
            first = self._deliver(b"\n".join(lines[:half]), half)
            if first.outcome is Outcome.RETRY:
                rest = [first.remainder, *lines[half:]]
                return replace(
                    first,
                    remainder=b"\n".join(rest),
                    remainder_points=first.remainder_points + len(lines) - half,
                )
            second = self._deliver(b"\n".join(lines[half:]), len(lines) - half)
            return replace(second, written=first.written + second.written)
        if result.outcome is Outcome.REJECTED or result.status == 413:
            self._dead_letter(payload, points, result.reason)
            return SendResult(Outcome.REJECTED, result.status, reason=result.reason)
        if result.outcome is Outcome.RETRY:
            return replace(result, remainder=payload, remainder_points=points)
        return replace(result, written=points)

    def _send_once(self, payload: bytes) -> SendResult:
        from influxdb_client.rest import ApiException
        from urllib3.exceptions import HTTPError

        send = self._send
        assert send is not None  # noqa: S101
        try:
            send(payload)
        except ApiException as err:
            status = int(err.status or 0)
            retry_after = parse_retry_after(getattr(err, "retry_after", None))
            reason = f"HTTP {status} {err.reason or ''}".strip() if status else str(err.reason)
            self._last_error = reason
            self._last_status = status
            if status in (401, 403, 404):
                self._loud(
                    "the time-series server refuses writes (HTTP %s): check token, org and "
                    "bucket; points are kept in the spool meanwhile",
                    status,
                )
            outcome = classify_status(status) if status else Outcome.RETRY
            return SendResult(outcome, status, retry_after, reason)
        except (HTTPError, OSError) as err:
            reason = f"server unreachable: {type(err).__name__}"
            self._last_error = reason
            self._last_status = None
            return SendResult(Outcome.RETRY, None, None, reason)
        except Exception as err:
            # Anything else the client library raises must not kill the only sender thread
            # (everything queued after it would never leave): keep the points, retry later.
            log.exception("unexpected error from influxdb-client; points kept for a retry")
            reason = f"client error: {type(err).__name__}"
            self._last_error = reason
            self._last_status = None
            return SendResult(Outcome.RETRY, None, None, reason)
        self._last_status = 204
        return SendResult(Outcome.WRITTEN, 204)

    def _spool_lines(self, lines: list[str]) -> bool:
        return self._spool_payload("\n".join(lines).encode("utf-8"), len(lines))

    def _spool_payload(self, payload: bytes, points: int) -> bool:
        spool = self._spool
        assert spool is not None  # noqa: S101
        try:
            spool.append(payload, points)
        except SpoolFullError as err:
            with self._count_lock:
                self._counts.lost_points += points
            self._loud("%s", err)
            return False
        except SpoolError as err:
            with self._count_lock:
                self._counts.lost_points += points
            self._loud("time-series points lost: %s", err)
            return False
        with self._count_lock:
            self._counts.spooled_points += points
        return True

    def _dead_letter(self, payload: bytes, points: int, reason: str) -> None:
        path = self.config.spool_dir / "rejected.lp"
        with self._count_lock:
            self._counts.rejected_points += points
        try:
            size = path.stat().st_size if path.exists() else 0
            if size + len(payload) + 1 > self.config.rejected_max_bytes:
                with self._count_lock:
                    self._counts.lost_points += points
                self._loud(
                    "the time-series server rejected %s points (%s) and %s is full: they are lost",
                    points,
                    reason,
                    path,
                )
                return
            with path.open("ab") as f:
                f.write(payload + b"\n")
        except OSError as err:
            self._loud("cannot keep %s rejected time-series points: %s", points, err)
            return
        self._loud(
            "the time-series server rejected %s points (%s); kept in %s for inspection",
            points,
            reason,
            path,
        )

    def _loud(self, fmt: str, *args: object) -> None:
        """ERROR logs that could repeat thousands of times a second: each message at most once
        per 10 s (the counters in :meth:`stats` carry the totals)."""
        now = self._clock()
        if now - self._last_loud_log.get(fmt, -math.inf) >= 10.0:
            self._last_loud_log[fmt] = now
            log.error(fmt, *args)

    # -- observability ----------------------------------------------------------------------

    def stats(self) -> WriterStats:
        """Counters for the hub's health and metrics endpoints (no secrets)."""
        spool = self._spool
        with self._count_lock:
            c = _Counters(**vars(self._counts))
        with self._cond:
            queued = len(self._queue)
            in_flight = self._in_flight
        now = self._clock()
        return WriterStats(
            written_points=c.written_points,
            written_batches=c.written_batches,
            spooled_points=c.spooled_points,
            overflow_spooled_points=c.overflow_spooled_points,
            replayed_points=c.replayed_points,
            retries=c.retries,
            rejected_points=c.rejected_points,
            lost_points=c.lost_points,
            failed_points=c.rejected_points + c.lost_points,
            invalid_rows=c.invalid_rows,
            split_batches=c.split_batches,
            queued_points=queued,
            in_flight_points=in_flight,
            spool_pending_points=spool.pending_points if spool else 0,
            spool_pending_records=spool.pending_records if spool else 0,
            spool_bytes=spool.size_bytes if spool else 0,
            spool_corrupt_records=spool.corrupt_records if spool else 0,
            backing_off=now < self._next_attempt,
            next_attempt_in_s=max(self._next_attempt - now, 0.0),
            last_status=self._last_status,
            last_error=self._last_error,
            last_success=self._last_success.isoformat() if self._last_success else None,
            running=self._thread is not None,
        )

    @property
    def idle(self) -> bool:
        """Nothing queued, in flight or spooled: every point so far was delivered or counted."""
        spool = self._spool
        with self._cond:
            empty = not self._queue and not self._in_flight
        return empty and (spool is None or spool.pending_records == 0)


def _close_connection_pools(client: Any) -> None:
    """Close influxdb-client's pooled HTTP connections now.

    ``InfluxDBClient.close()`` only clears urllib3's pool registry; with urllib3 2.x that no
    longer closes the pools, so the keep-alive socket would stay open until process exit.
    """
    try:
        manager = client.api_client.rest_client.pool_manager
        for key in list(manager.pools.keys()):
            pool = manager.pools.get(key)
            if pool is not None:
                pool.close()
    except AttributeError:  # a future client without these internals: nothing to do
        return
