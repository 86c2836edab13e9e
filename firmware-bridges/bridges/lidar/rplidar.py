"""SLAMTEC RPLIDAR A-series serial protocol (legacy standard scan), from the public
"RPLIDAR Interface Protocol and Application Notes".

Host -> device requests: ``0xA5 <cmd>`` and, for commands with bit 7 set,
``<size> <payload> <checksum>`` where the checksum is the XOR of every byte before it.

Device -> host: a 7-byte response descriptor ``0xA5 0x5A <len/mode: 4 bytes LE, 30-bit length +
2-bit send mode> <data type>`` followed by the response data. ``SCAN`` answers with
``A5 5A 05 00 00 40 81`` and then streams 5-byte measurement nodes until ``STOP``::

    byte 0  quality[7:2] | !S (bit 1) | S (bit 0)     S: first node of a new revolution
    byte 1  angle_q6[6:0] << 1 | C (bit 0, always 1)
    byte 2  angle_q6[14:7]                             angle = angle_q6 / 64 degrees
    byte 3..4 distance_q2 (uint16 LE)                  distance = distance_q2 / 4 mm (0: none)

Angles grow clockwise seen from above. The nodes carry no checksum: the S/!S and C bits are
the only integrity check, so a decoder resynchronises by sliding one byte when they fail.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field
from enum import IntEnum

SYNC = 0xA5
SYNC2 = 0x5A
DESCRIPTOR_LEN = 7
NODE_LEN = 5


class Command(IntEnum):
    STOP = 0x25
    RESET = 0x40
    SCAN = 0x20
    FORCE_SCAN = 0x21
    GET_INFO = 0x50
    GET_HEALTH = 0x52
    SET_MOTOR_PWM = 0xF0  # A2/A3 motor speed; carries a payload (bit 7 set)


class DataType(IntEnum):
    SCAN = 0x81
    INFO = 0x04
    HEALTH = 0x06


class SendMode(IntEnum):
    SINGLE = 0
    MULTIPLE = 1


# Response (length, mode) per data type, from the protocol document.
RESPONSES: dict[DataType, tuple[int, SendMode]] = {
    DataType.SCAN: (5, SendMode.MULTIPLE),
    DataType.INFO: (20, SendMode.SINGLE),
    DataType.HEALTH: (3, SendMode.SINGLE),
}


def encode_request(command: Command, payload: bytes = b"") -> bytes:
    if payload and not command & 0x80:
        raise ValueError(f"command {command.name} takes no payload (only bit-7 commands do)")
    if command & 0x80:
        body = bytes((SYNC, command, len(payload))) + payload
        checksum = 0
        for byte in body:
            checksum ^= byte
        return body + bytes((checksum,))
    return bytes((SYNC, command))


@dataclass(frozen=True, slots=True)
class ResponseDescriptor:
    length: int
    mode: SendMode
    data_type: int


def encode_descriptor(data_type: DataType) -> bytes:
    length, mode = RESPONSES[data_type]
    return bytes((SYNC, SYNC2)) + struct.pack("<I", length | (mode << 30)) + bytes((data_type,))


def decode_descriptor(data: bytes | bytearray | memoryview) -> ResponseDescriptor:
    if len(data) != DESCRIPTOR_LEN or data[0] != SYNC or data[1] != SYNC2:
        raise ValueError("not an RPLIDAR response descriptor (0xA5 0x5A ...)")
    (word,) = struct.unpack_from("<I", data, 2)
    return ResponseDescriptor(word & 0x3FFFFFFF, SendMode(word >> 30), data[6])


@dataclass(frozen=True, slots=True)
class ScanNode:
    start: bool
    quality: int
    angle_q6: int
    distance_q2: int

    @property
    def angle_deg(self) -> float:
        return self.angle_q6 / 64.0

    @property
    def distance_mm(self) -> float:
        return self.distance_q2 / 4.0


def encode_node(node: ScanNode) -> bytes:
    if not 0 <= node.quality < 64 or not 0 <= node.angle_q6 < 1 << 15:
        raise ValueError("quality is 6 bits and angle_q6 15 bits")
    s = 1 if node.start else 0
    return struct.pack("<BHH", (node.quality << 2) | ((s ^ 1) << 1) | s,
                       (node.angle_q6 << 1) | 1, node.distance_q2)


def node_is_valid(b0: int, b1: int) -> bool:
    return ((b0 ^ (b0 >> 1)) & 1) == 1 and (b1 & 1) == 1


@dataclass(frozen=True, slots=True)
class Health:
    status: int  # 0 good, 1 warning, 2 error
    error_code: int


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    model: int
    firmware: tuple[int, int]
    hardware: int
    serial_hex: str


def encode_health(health: Health) -> bytes:
    return encode_descriptor(DataType.HEALTH) + struct.pack("<BH", health.status,
                                                            health.error_code)


def encode_info(info: DeviceInfo) -> bytes:
    serial = bytes.fromhex(info.serial_hex)
    if len(serial) != 16:
        raise ValueError("the serial number is 16 bytes")
    return encode_descriptor(DataType.INFO) + bytes(
        (info.model, info.firmware[1], info.firmware[0], info.hardware)) + serial


Response = ScanNode | Health | DeviceInfo


@dataclass
class RplidarStats:
    nodes: int = 0
    revolutions: int = 0
    bad_nodes: int = 0
    bytes_skipped: int = 0
    descriptors: int = 0
    samples_dropped: int = 0


@dataclass
class RplidarDecoder:
    """Incremental host-side decoder of everything the device sends.

    Outside a scan it looks for a response descriptor; after a ``SCAN`` descriptor it reads
    5-byte nodes, sliding one byte whenever the S/!S or C check bits fail. A new descriptor
    inside the node stream (the host re-sent ``SCAN`` after reopening the port) is recognised
    when the node check fails at its position.

    ``samples_dropped`` is inferred from angle gaps larger than 1.6 typical steps.
    """

    stats: RplidarStats = field(default_factory=RplidarStats)
    _buf: bytearray = field(default_factory=bytearray)
    _pending: ResponseDescriptor | None = None
    _in_scan: bool = False
    _last_q6: int | None = None
    _step_q6: float = 0.0
    _synced: bool = False

    def feed(self, data: bytes | bytearray | memoryview) -> list[Response]:
        buf = self._buf
        buf += data
        out: list[Response] = []
        pos = 0
        n = len(buf)
        while pos < n:
            if self._pending is not None:
                length = self._pending.length
                if pos + length > n:
                    break
                item = self._single(self._pending, bytes(buf[pos : pos + length]))
                if item is not None:
                    out.append(item)
                self._pending = None
                pos += length
                continue
            if self._in_scan:
                need = NODE_LEN if self._synced else NODE_LEN * SYNC_NODES
                if pos + need > n:
                    break
                node = self._node_at(buf, pos)
                if node is not None:
                    out.append(node)
                    pos += NODE_LEN
                    continue
            if buf[pos] == SYNC and (pos + 1 >= n or buf[pos + 1] == SYNC2):
                if pos + DESCRIPTOR_LEN > n:
                    break
                desc = _known_descriptor(buf[pos : pos + DESCRIPTOR_LEN])
                if desc is None:  # "A5 5A" inside garbage: not a response we know
                    self.stats.bytes_skipped += 1
                    pos += 1
                    continue
                pos += DESCRIPTOR_LEN
                self.stats.descriptors += 1
                self._in_scan = desc.data_type == DataType.SCAN and desc.length == NODE_LEN
                if not self._in_scan:
                    self._pending = desc
                # The head kept turning: angle gaps across a restarted scan still count.
                self._synced = False
                continue
            self.stats.bytes_skipped += 1
            if self._in_scan:
                self.stats.bad_nodes += 1
            pos += 1
        del buf[:pos]
        self.stats.nodes += sum(1 for item in out if isinstance(item, ScanNode))
        return out

    def reset(self) -> None:
        """Forget partial data and the scan state (after the port was reopened)."""
        self.stats.bytes_skipped += len(self._buf)
        self._buf.clear()
        self._pending = None
        self._in_scan = False
        self._last_q6 = None
        self._synced = False

    def _single(self, desc: ResponseDescriptor, data: bytes) -> Response | None:
        if desc.data_type == DataType.HEALTH and len(data) == 3:
            status, code = struct.unpack("<BH", data)
            return Health(status, code)
        if desc.data_type == DataType.INFO and len(data) == 20:
            return DeviceInfo(data[0], (data[2], data[1]), data[3], data[4:].hex())
        self.stats.bytes_skipped += len(data)
        return None

    def _node_at(self, buf: bytearray, pos: int) -> ScanNode | None:
        """The node at ``pos`` if it is trusted. In sync, its check bits must pass and its angle
        must follow the previous node's. Out of sync (at the start, or after a failure),
        ``SYNC_NODES`` consecutive nodes must pass both tests: two check bits alone pass on a
        misaligned position one time in four."""
        if self._synced:
            node = _parse_node(buf, pos)
            if node is not None and _follows(self._last_q6, node.angle_q6):
                self._advance(node)
                return node
            self._synced = False
            return None
        chain = [_parse_node(buf, pos + i * NODE_LEN) for i in range(SYNC_NODES)]
        if any(c is None for c in chain):
            return None
        angles = [c.angle_q6 for c in chain if c is not None]
        if not all(_follows(a, b) for a, b in itertools.pairwise(angles)):
            return None
        node = chain[0]
        assert node is not None  # noqa: S101  (checked above)
        self._synced = True
        self._advance(node)
        return node

    def _advance(self, node: ScanNode) -> None:
        """Count revolutions and inferred gaps (angle jumps over 1.6 typical steps)."""
        last = self._last_q6
        self._last_q6 = node.angle_q6
        if node.start:
            self.stats.revolutions += 1
        if last is None:
            return
        step = (node.angle_q6 - last) % FULL_TURN_Q6
        if step > FULL_TURN_Q6 // 2:
            return  # jitter backwards around a revolution start
        typical = self._step_q6
        if typical > 0 and step > 1.6 * typical:
            self.stats.samples_dropped += round(step / typical) - 1
        elif step > 0:
            self._step_q6 = step if typical == 0 else 0.98 * typical + 0.02 * step


def _parse_node(buf: bytearray, pos: int) -> ScanNode | None:
    b0, b1 = buf[pos], buf[pos + 1]
    if not node_is_valid(b0, b1):
        return None
    q6 = (b1 >> 1) | (buf[pos + 2] << 7)
    return ScanNode(bool(b0 & 1), b0 >> 2, q6, buf[pos + 3] | (buf[pos + 4] << 8))


def _follows(last_q6: int | None, q6: int) -> bool:
    """Whether ``q6`` can be the next angle after ``last_q6`` of a clockwise sweep."""
    if last_q6 is None:
        return True
    step = (q6 - last_q6) % FULL_TURN_Q6
    return step <= MAX_STEP_Q6 or step >= FULL_TURN_Q6 - MAX_BACKSTEP_Q6


FULL_TURN_Q6 = 360 * 64
MAX_STEP_Q6 = 30 * 64
MAX_BACKSTEP_Q6 = 2 * 64
SYNC_NODES = 3


def _known_descriptor(data: bytes | bytearray | memoryview) -> ResponseDescriptor | None:
    try:
        desc = decode_descriptor(data)
        expected = RESPONSES[DataType(desc.data_type)]
    except ValueError:
        return None
    return desc if (desc.length, desc.mode) == expected else None


@dataclass
class RequestParser:
    """Device-side parser of host requests (used by the simulator): bytes in, commands out."""

    bad_bytes: int = 0
    _buf: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[tuple[Command | int, bytes]]:
        buf = self._buf
        buf += data
        out: list[tuple[Command | int, bytes]] = []
        pos = 0
        while pos < len(buf):
            if buf[pos] != SYNC:
                self.bad_bytes += 1
                pos += 1
                continue
            if pos + 2 > len(buf):
                break
            cmd = buf[pos + 1]
            if cmd & 0x80:
                if pos + 3 > len(buf):
                    break
                size = buf[pos + 2]
                end = pos + 3 + size + 1
                if end > len(buf):
                    break
                checksum = 0
                for byte in buf[pos : end - 1]:
                    checksum ^= byte
                if checksum != buf[end - 1]:
                    self.bad_bytes += 1
                    pos += 1
                    continue
                out.append((_command(cmd), bytes(buf[pos + 3 : end - 1])))
                pos = end
            else:
                out.append((_command(cmd), b""))
                pos += 2
        del buf[:pos]
        return out


def _command(value: int) -> Command | int:
    try:
        return Command(value)
    except ValueError:
        return value
