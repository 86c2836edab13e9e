"""One driver per scanner family, registered from a key: the config schema lists
:data:`MODELS` and the runtime builds the driver with :func:`driver_for`.

A driver is still sans-IO: it says what to send when the port opens and turns received bytes
into a :class:`SampleBlock` (angle, distance, intensity per sample, in the scanner's own frame:
degrees clockwise seen from above, millimetres, 0 = no return).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from bridges.lidar import ld06, rplidar

Protocol_ = Literal["ld06", "rplidar"]


@dataclass(frozen=True, slots=True)
class ScannerModel:
    """Nominal figures of a scanner model (from its datasheet; the baud rate can be
    overridden per device)."""

    key: str
    protocol: Protocol_
    baud_rate: int
    sample_rate_hz: int
    scan_rate_hz: float
    min_range_m: float
    max_range_m: float
    description: str


MODELS: dict[str, ScannerModel] = {
    m.key: m
    for m in (
        ScannerModel("ld06", "ld06", ld06.BAUD_RATE, 4500, 10.0, 0.02, 12.0,
                     "LDROBOT LD06 (47-byte frames, CRC-8)"),
        ScannerModel("ld19", "ld06", ld06.BAUD_RATE, 4500, 10.0, 0.02, 12.0,
                     "LDROBOT LD19 (LD06 frame format)"),
        ScannerModel("rplidar_a1", "rplidar", 115_200, 2000, 5.5, 0.15, 12.0,
                     "SLAMTEC RPLIDAR A1, legacy standard scan"),
        ScannerModel("rplidar_a2", "rplidar", 256_000, 4000, 10.0, 0.2, 16.0,
                     "SLAMTEC RPLIDAR A2 (256000-baud variants), legacy standard scan"),
    )
}

BYTES_PER_SAMPLE: dict[Protocol_, float] = {
    "ld06": ld06.FRAME_LEN / ld06.POINTS_PER_FRAME,
    "rplidar": float(rplidar.NODE_LEN),
}


def line_bytes_per_s(baud_rate: int) -> float:
    """8N1: ten bits on the wire per byte."""
    return baud_rate / 10.0


@dataclass(slots=True)
class SampleBlock:
    angles_deg: list[float] = field(default_factory=list)
    distances_mm: list[float] = field(default_factory=list)
    intensities: list[int] = field(default_factory=list)
    # Index of samples that begin a new revolution (RPLIDAR S flag); LD06 has none.
    starts: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.angles_deg)


class LidarDriver(Protocol):
    model: ScannerModel
    # DTR level to set after opening (None: leave it). The RPLIDAR A1/A2 USB adapters wire DTR
    # to the motor enable: DTR low starts the motor.
    motor_dtr: bool | None

    def start_bytes(self) -> bytes:
        """Sent right after the port opens (and again when the stream stalls)."""
        ...

    def stop_bytes(self) -> bytes: ...

    def decode(self, data: bytes) -> SampleBlock: ...

    def reset(self) -> None:
        """Drop partial input after the port was reopened; counters survive."""
        ...

    def counters(self) -> dict[str, int]:
        """Cumulative: samples, crc_errors, samples_dropped, bytes_skipped, ..."""
        ...


class Ld06Driver:
    motor_dtr: bool | None = None

    def __init__(self, model: ScannerModel) -> None:
        self.model = model
        self.decoder = ld06.Ld06Decoder()

    def start_bytes(self) -> bytes:
        return b""  # the LD06 streams as soon as it is powered

    def stop_bytes(self) -> bytes:
        return b""

    def decode(self, data: bytes) -> SampleBlock:
        block = SampleBlock()
        angles, dists, intens = block.angles_deg, block.distances_mm, block.intensities
        n = ld06.POINTS_PER_FRAME
        for frame in self.decoder.feed(data):
            start = frame.start_angle_cdeg
            step = frame.step_cdeg
            angles.extend(((start + step * i) % 36000) / 100.0 for i in range(n))
            dists.extend(frame.distances_mm)
            intens.extend(frame.intensities)
        return block

    def reset(self) -> None:
        self.decoder.reset()

    def counters(self) -> dict[str, int]:
        s = self.decoder.stats
        return {
            "samples": s.frames * ld06.POINTS_PER_FRAME,
            "frames": s.frames,
            "crc_errors": s.crc_errors,
            "bad_frames": s.bad_angles,
            "frames_dropped": s.frames_dropped,
            "samples_dropped": s.frames_dropped * ld06.POINTS_PER_FRAME,
            "bytes_skipped": s.bytes_skipped,
        }


class RplidarDriver:
    motor_dtr: bool | None = False

    def __init__(self, model: ScannerModel) -> None:
        self.model = model
        self.decoder = rplidar.RplidarDecoder()
        self.health: rplidar.Health | None = None
        self.info: rplidar.DeviceInfo | None = None

    def start_bytes(self) -> bytes:
        # STOP first: the device may still be scanning from a previous session.
        return (rplidar.encode_request(rplidar.Command.STOP)
                + rplidar.encode_request(rplidar.Command.GET_HEALTH)
                + rplidar.encode_request(rplidar.Command.SCAN))

    def stop_bytes(self) -> bytes:
        return rplidar.encode_request(rplidar.Command.STOP)

    def decode(self, data: bytes) -> SampleBlock:
        block = SampleBlock()
        for item in self.decoder.feed(data):
            if isinstance(item, rplidar.ScanNode):
                if item.start:
                    block.starts.append(len(block.angles_deg))
                block.angles_deg.append(item.angle_q6 / 64.0)
                block.distances_mm.append(item.distance_q2 / 4.0)
                block.intensities.append(item.quality)
            elif isinstance(item, rplidar.Health):
                self.health = item
            else:
                self.info = item
        return block

    def reset(self) -> None:
        self.decoder.reset()

    def counters(self) -> dict[str, int]:
        s = self.decoder.stats
        return {
            "samples": s.nodes,
            "revolutions": s.revolutions,
            "crc_errors": s.bad_nodes,  # check-bit failures: the protocol has no CRC
            "samples_dropped": s.samples_dropped,
            "bytes_skipped": s.bytes_skipped,
        }


def driver_for(key: str) -> LidarDriver:
    try:
        model = MODELS[key]
    except KeyError:
        raise ValueError(f"unknown scanner model {key!r}; known: {', '.join(MODELS)}") from None
    if model.protocol == "ld06":
        return Ld06Driver(model)
    return RplidarDriver(model)
