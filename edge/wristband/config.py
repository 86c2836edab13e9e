"""Configuration of the wristband gateway (``gridward edge wristband --config F``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from edge.config import AgentConfig, StrictModel
from edge.validators import SegmentId


def _band_id(value: object) -> object:
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            return int(text, 16) if text.startswith("0x") else int(text, 10)
        except ValueError as err:
            raise ValueError(f"band id {value!r} is not a number (decimal or 0x hex)") from err
    return value


BandId = Annotated[int, BeforeValidator(_band_id), Field(ge=0, le=0xFFFF_FFFF)]


class BleakTransport(StrictModel):
    """The gateway's own Bluetooth adapter through bleak (BlueZ on Linux)."""

    type: Literal["bleak"] = "bleak"
    adapter: Annotated[str, Field(pattern=r"^hci[0-9]{1,2}$")] | None = None
    scanning_mode: Literal["active", "passive"] = "passive"


class SerialTransport(StrictModel):
    """A serial BLE bridge board (see docs/wristband.md for its line format)."""

    type: Literal["serial"] = "serial"
    port: Annotated[str, Field(min_length=1, max_length=256)]
    baudrate: Annotated[int, Field(ge=1200, le=4_000_000)] = 115_200


class BumbleTransport(StrictModel):
    """A Bluetooth controller driven by Google's bumble host stack (no BlueZ needed)."""

    type: Literal["bumble"] = "bumble"
    hci: Annotated[str, Field(min_length=1, max_length=256)] = Field(
        default="usb:0", description="bumble transport name: usb:0, serial:/dev/ttyACM0, ...")


class ReceiverConfig(StrictModel):
    """A place where adverts are heard: this box's radio or a bridge board, at a known spot."""

    id: SegmentId
    lon: Annotated[float, Field(ge=-180, le=180)]
    lat: Annotated[float, Field(ge=-90, le=90)]
    zone: SegmentId | None = Field(default=None, description="presence zone this receiver covers")
    tx_power_1m_dbm: Annotated[float, Field(ge=-100, le=0)] = -59.0
    path_loss_exponent: Annotated[float, Field(ge=1.5, le=5.0)] = 2.0
    transport: BleakTransport | SerialTransport | BumbleTransport | None = Field(
        default=None, discriminator="type",
        description="absent: fed by the built-in simulation (demo) or by tests",
    )


class BandConfig(StrictModel):
    band_id: BandId
    wearer: SegmentId


class SimulatedWearer(StrictModel):
    """A simulated band walking a closed route (demo and tests only)."""

    band_id: BandId
    route: list[tuple[float, float]] = Field(min_length=2, description="(lon, lat) points")
    speed_mps: Annotated[float, Field(gt=0, le=10)] = 1.2
    gnss: bool = False


class SimulationConfig(StrictModel):
    wearers: list[SimulatedWearer] = Field(min_length=1)
    advert_interval_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    rssi_sigma_db: Annotated[float, Field(ge=0, le=20)] = 4.0
    sensitivity_dbm: Annotated[float, Field(ge=-120, le=-40)] = -100.0
    seed: int = 1


class WristbandConfig(AgentConfig):
    company_id: Annotated[int, Field(ge=0, le=0xFFFF)] = 0xFFFF
    keys_file: Path | None = Field(
        default=None, description="per-band keys; else $GRIDWARD_BAND_KEYS(_FILE)")
    zones_file: Path | None = Field(default=None, description="GeoJSON zones")
    receivers: list[ReceiverConfig] = Field(min_length=1)
    bands: list[BandConfig] = Field(default_factory=list)
    simulation: SimulationConfig | None = None

    signal_lost_after_s: Annotated[float, Field(gt=0, le=86_400)] = 30.0
    battery_low_pct: Annotated[int, Field(ge=1, le=99)] = 15
    battery_rearm_pct: Annotated[int, Field(ge=2, le=100)] = 25
    position_interval_s: Annotated[float, Field(gt=0, le=600)] = 2.0
    reading_max_age_s: Annotated[float, Field(gt=0, le=600)] = 8.0
    gnss_max_age_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    presence_hysteresis_db: Annotated[float, Field(ge=0, le=40)] = 6.0
    presence_min_hold_s: Annotated[float, Field(ge=0, le=600)] = 3.0
    rssi_process_var_db2_per_s: Annotated[float, Field(gt=0, le=1000)] = 4.0
    rssi_measurement_sigma_db: Annotated[float, Field(gt=0, le=30)] = 4.0
    duplicate_window_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    clone_alert_cooldown_s: Annotated[float, Field(ge=0, le=86_400)] = 300.0
    queue_max: Annotated[int, Field(ge=10, le=1_000_000)] = 10_000
    publish_sightings: bool = Field(
        default=True,
        description="send each receiver's smoothed RSSI to the hub, which fuses the sightings "
        "of every gateway of the site into one position per band",
    )

    @model_validator(mode="after")
    def _consistent(self) -> WristbandConfig:
        ids = [r.id for r in self.receivers]
        if len(set(ids)) != len(ids):
            raise ValueError("receiver ids must be unique")
        bands = [b.band_id for b in self.bands]
        if len(set(bands)) != len(bands):
            raise ValueError("a band id is listed twice under bands")
        wearers = [b.wearer for b in self.bands]
        if len(set(wearers)) != len(wearers):
            raise ValueError("a wearer has two bands: give each wearer one band")
        if self.battery_rearm_pct <= self.battery_low_pct:
            raise ValueError("battery_rearm_pct must be above battery_low_pct (hysteresis)")
        if self.simulation is not None:
            unknown = {w.band_id for w in self.simulation.wearers} - set(bands)
            if unknown:
                raise ValueError(
                    f"simulated band(s) {sorted(unknown)} are not listed under bands")
        return self
