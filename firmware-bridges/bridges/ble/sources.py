"""What every advert transport hands the pipeline: one heard advertisement."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class HeardAdvert:
    receiver: str
    address: str
    rssi_dbm: int
    manufacturer_data: dict[int, bytes]
    monotonic_s: float


AdvertSink = Callable[[HeardAdvert], None]


class AdvertSource(Protocol):
    receiver: str

    def start(self, sink: AdvertSink) -> None: ...

    def stop(self) -> None: ...
