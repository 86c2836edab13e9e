"""The time-series writer's disk spool: append-only, fsync'd segment files of line-protocol
batches, replayed oldest first.

Layout of ``directory``::

    0000000000000001.seg   records, oldest segment first
    0000000000000002.seg   the active segment (appends go here)
    cursor                 "<segment> <offset>": where the next unsent record starts

A record is a 16-byte header (``GWL1``, payload length, point count, CRC-32 of the payload, all
big-endian u32) followed by the payload (line protocol, one point per line). A record is
durable once :meth:`Spool.append` returns (the segment is fsync'd). The cursor is replaced
atomically but not fsync'd: after a crash it may point at a record that was already sent, and
the replay is harmless because InfluxDB keeps one point per measurement, tag set and timestamp.

A crash in the middle of an append leaves a torn record at the end of the active segment; it
was never acknowledged to the caller, and :class:`Spool` cuts it off when it opens the
directory. A record whose CRC does not match is skipped, counted and logged.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MAGIC = b"GWL1"
HEADER = struct.Struct(">4sIII")
SEGMENT_SUFFIX = ".seg"
CURSOR_NAME = "cursor"
LOCK_NAME = "lock"


class SpoolError(Exception):
    """The spool directory cannot be used (permissions, a file that is not ours)."""


class SpoolFullError(SpoolError):
    """Appending would take the spool past its byte limit; the batch was not stored."""


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """One stored batch. ``end`` is the offset of the next record in the same segment."""

    segment: int
    offset: int
    end: int
    points: int
    payload: bytes


def encode_record(payload: bytes, points: int) -> bytes:
    """The bytes of one record: header + payload."""
    return HEADER.pack(MAGIC, len(payload), points, zlib.crc32(payload)) + payload


def _segment_name(seq: int) -> str:
    return f"{seq:016d}{SEGMENT_SUFFIX}"


def _scan(data: bytes, start: int = 0) -> tuple[list[tuple[int, int, int]], int]:
    """Walk the records of one segment's bytes from ``start``.

    Returns ``[(offset, end, points)]`` of records whose header is sane and whose payload is
    complete, and the offset where the walk stopped (``len(data)`` when the segment is whole).
    CRCs are checked when a record is read, not here.
    """
    found = []
    pos = start
    while pos + HEADER.size <= len(data):
        magic, length, points, _crc = HEADER.unpack_from(data, pos)
        end = pos + HEADER.size + length
        if magic != MAGIC or end > len(data):
            break
        found.append((pos, end, points))
        pos = end
    return found, pos


class Spool:
    """Thread-safe: the writer thread replays while an ingest thread may append overflow."""

    def __init__(self, directory: Path, max_bytes: int, segment_bytes: int) -> None:
        if segment_bytes > max_bytes:
            raise ValueError("segment_bytes must not exceed max_bytes")
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.corrupt_records = 0
        self.torn_bytes = 0
        self._lock = threading.Lock()
        self._closed = False
        self._active: int | None = None  # segment appends go to
        self._active_fd: int | None = None
        self._segments: dict[int, int] = {}  # seq -> size in bytes
        self._lock_fd: int | None = None
        self._cursor = (1, 0)
        self._pending_points = self._pending_records = 0
        try:
            self._open()
        except OSError as err:
            self._release_directory()
            raise SpoolError(f"cannot use spool directory {directory}: {err}") from err
        except SpoolError:
            self._release_directory()
            raise
        if self._pending_records:
            log.warning(
                "time-series spool holds %s unsent points in %s records; they are replayed "
                "when the server answers",
                self._pending_points,
                self._pending_records,
            )

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._take_directory()
        for path in self.directory.glob(f"*{SEGMENT_SUFFIX}"):
            stem = path.name.removesuffix(SEGMENT_SUFFIX)
            if not stem.isdigit():
                raise SpoolError(f"{path} is not a spool segment: move it out of {self.directory}")
            self._segments[int(stem)] = path.stat().st_size
        self._cursor = self._load_cursor()
        self._repair_tail()
        self._pending_points, self._pending_records = self._count_pending()
        if self._pending_records == 0:
            nxt = max(self._segments, default=self._cursor[0] - 1) + 1
            self._drop_before(nxt)
            self._cursor = (nxt, 0)
        else:
            self._drop_before(self._cursor[0])

    def _take_directory(self) -> None:
        """One spool, one process: two writers appending to the same segments would
        interleave records and replay each other's points."""
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            os.close(fd)
            raise SpoolError(
                f"spool directory {self.directory} is in use by another process: give each "
                "hub process its own spool_dir"
            ) from err
        self._lock_fd = fd

    def _release_directory(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None

    # -- state ------------------------------------------------------------------------------

    @property
    def pending_points(self) -> int:
        return self._pending_points

    @property
    def pending_records(self) -> int:
        return self._pending_records

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return sum(self._segments.values())

    def _path(self, seq: int) -> Path:
        return self.directory / _segment_name(seq)

    def _load_cursor(self) -> tuple[int, int]:
        path = self.directory / CURSOR_NAME
        first = min(self._segments, default=1)
        try:
            seg_s, off_s = path.read_text(encoding="ascii").split()
            cursor = (int(seg_s), int(off_s))
        except FileNotFoundError:
            return (first, 0)
        except (ValueError, UnicodeDecodeError):
            log.error(  # noqa: TRY400  (a bad cursor file is expected after a crash, no trace)
                "time-series spool cursor %s is unreadable; replaying from the start", path
            )
            return (first, 0)
        if cursor[0] not in self._segments:
            # The cursor's segment was consumed and deleted: start at the next one.
            later = [s for s in self._segments if s > cursor[0]]
            return (min(later), 0) if later else (cursor[0], 0)
        return cursor

    def _save_cursor(self) -> None:
        path = self.directory / CURSOR_NAME
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{self._cursor[0]} {self._cursor[1]}\n", encoding="ascii")
        tmp.replace(path)

    def _repair_tail(self) -> None:
        """Cut a torn record (a crash during append) off the last segment."""
        if not self._segments:
            return
        last = max(self._segments)
        path = self._path(last)
        data = path.read_bytes()
        _, stop = _scan(data)
        if stop < len(data):
            self.torn_bytes += len(data) - stop
            log.error(
                "time-series spool segment %s ends with %s bytes of a torn record (a crash "
                "during append); cutting them off",
                path.name,
                len(data) - stop,
            )
            with path.open("r+b") as f:
                f.truncate(stop)
                f.flush()
                os.fsync(f.fileno())
            self._segments[last] = stop

    def _count_pending(self) -> tuple[int, int]:
        points = records = 0
        for seq in sorted(self._segments):
            if seq < self._cursor[0]:
                continue
            start = self._cursor[1] if seq == self._cursor[0] else 0
            found, _ = _scan(self._path(seq).read_bytes(), start)
            points += sum(p for _, _, p in found)
            records += len(found)
        return points, records

    def _drop_before(self, seq: int) -> None:
        for old in [s for s in self._segments if s < seq]:
            if old == self._active:
                self._close_active()
            self._path(old).unlink(missing_ok=True)
            del self._segments[old]

    # -- writing ----------------------------------------------------------------------------

    def append(self, payload: bytes, points: int) -> None:
        """Store one batch durably (fsync'd before returning)."""
        record = encode_record(payload, points)
        with self._lock:
            if self._closed:
                raise SpoolError("the spool is closed")
            used = sum(self._segments.values())
            if used + len(record) > self.max_bytes:
                raise SpoolFullError(
                    f"time-series spool {self.directory} is full ({used} of {self.max_bytes} "
                    f"bytes): {points} points could not be stored; raise spool_max_bytes or "
                    "bring the time-series server back"
                )
            try:
                fd, seq = self._writable_segment()
                os.write(fd, record)
                os.fsync(fd)
            except OSError as err:
                raise SpoolError(f"cannot write to spool {self.directory}: {err}") from err
            self._segments[seq] += len(record)
            self._pending_points += points
            self._pending_records += 1

    def _writable_segment(self) -> tuple[int, int]:
        if self._active_fd is not None and self._active is not None:
            if self._segments[self._active] < self.segment_bytes:
                return self._active_fd, self._active
            self._close_active()
        last = max(self._segments, default=None)
        if last is not None and self._segments[last] < self.segment_bytes:
            seq = last  # after a restart: keep filling the last segment
        else:
            seq = max(self._cursor[0] - 1, last or 0) + 1
        self._segments.setdefault(seq, 0)
        self._active = seq
        self._active_fd = os.open(self._path(seq), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return self._active_fd, seq

    def _close_active(self) -> None:
        if self._active_fd is not None:
            os.close(self._active_fd)
        self._active_fd = None
        self._active = None

    # -- reading ----------------------------------------------------------------------------

    def peek(self) -> SpoolRecord | None:
        """The oldest unsent record, or None. Corrupt records are skipped and counted."""
        with self._lock:
            while self._pending_records > 0:
                seq, offset = self._cursor
                size = self._segments.get(seq)
                if size is None:
                    later = [s for s in self._segments if s > seq]
                    if not later:
                        return None
                    self._cursor = (min(later), 0)
                    continue
                if offset >= size:
                    later = [s for s in self._segments if s > seq]
                    if not later:
                        return None
                    self._cursor = (min(later), 0)
                    self._drop_before(self._cursor[0])
                    continue
                record = self._read_locked(seq, offset, size)
                if record is not None:
                    return record
            return None

    def _read_locked(self, seq: int, offset: int, size: int) -> SpoolRecord | None:
        with self._path(seq).open("rb") as f:
            f.seek(offset)
            data = f.read(size - offset)
        if len(data) >= HEADER.size:
            magic, length, points, crc = HEADER.unpack_from(data)
            payload = data[HEADER.size : HEADER.size + length]
            if magic == MAGIC and len(payload) == length and zlib.crc32(payload) == crc:
                return SpoolRecord(seq, offset, offset + HEADER.size + length, points, payload)
        # A bad record: its length cannot be trusted, so the rest of this segment cannot be
        # framed again. Count what a header walk can still see as lost, and say so loudly.
        found, _ = _scan(data)
        records = max(len(found), 1)
        lost = sum(p for _, _, p in found)
        self.corrupt_records += records
        log.error(
            "time-series spool segment %s is corrupt at offset %s; skipping the rest of it "
            "(%s records, at least %s points lost)",
            _segment_name(seq),
            offset,
            records,
            lost,
        )
        self._pending_points = max(self._pending_points - lost, 0)
        self._pending_records = max(self._pending_records - records, 0)
        self._cursor = (seq, size)
        self._save_cursor()
        return None

    def ack(self, record: SpoolRecord) -> None:
        """The record was accepted by the server: move past it, delete emptied segments."""
        with self._lock:
            if (record.segment, record.offset) != self._cursor:
                raise SpoolError("ack out of order: only the record from peek() may be acked")
            self._cursor = (record.segment, record.end)
            self._pending_points -= record.points
            self._pending_records -= 1
            if self._pending_records == 0:
                # Everything sent: free the disk; the next append starts a fresh segment.
                self._close_active()
                self._drop_before(max(self._segments, default=0) + 1)
                self._cursor = (record.segment + 1, 0)
            self._save_cursor()

    def close(self) -> None:
        with self._lock:
            self._close_active()
            self._release_directory()
            self._closed = True
