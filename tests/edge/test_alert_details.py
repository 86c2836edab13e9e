"""Typed alert details: one model per alert kind, the kind taken from the model, the wire kept
a flat mapping (backward compatible), bad details refused where the alert is made."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge.alert_details import (
    DETAIL_MODELS,
    ClonedDeviceDetails,
    IntrusionDetails,
    LineCrossingDetails,
    SignalLostDetails,
    SosDetails,
    build_alert,
    parse_details,
)
from edge.protocol import Alert, AlertKind, ProtocolError, Severity, decode_as, encode

SAMPLES = {
    AlertKind.INTRUSION: IntrusionDetails(source="lidar", track_id="t1-4", dwell_s=2.5,
                                          x_m=3.1, y_m=-1.0),
    AlertKind.LINE_CROSSING: LineCrossingDetails(source="camera", track_id="t2-9", x_px=10.5,
                                                 y_px=20.0, direction="in"),
    AlertKind.SIGNAL_LOST: SignalLostDetails(silent_s=31.0),
    AlertKind.CLONED_DEVICE: ClonedDeviceDetails(verdict="replayed", receiver="rx-a",
                                                 rssi_dbm=-71),
    AlertKind.SOS: SosDetails(),
}


def test_every_alert_kind_has_exactly_one_details_model() -> None:
    assert set(DETAIL_MODELS) == set(AlertKind)
    assert all(model.KIND is kind for kind, model in DETAIL_MODELS.items())


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_details_travel_as_a_flat_mapping_and_read_back_typed(kind: AlertKind) -> None:
    details = SAMPLES[kind]
    alert = build_alert(details, site="s", device="d", severity=Severity.HIGH)
    assert alert.kind is kind
    wire = decode_as(Alert, encode(alert))
    assert all(isinstance(v, str | int | float | bool) for v in wire.details.values())
    assert parse_details(wire.kind, wire.details) == details


def test_lidar_intrusion_keeps_the_keys_it_always_sent() -> None:
    wire = SAMPLES[AlertKind.INTRUSION].wire()
    assert {"dwell_s", "x_m", "y_m", "source"} <= set(wire) and wire["source"] == "lidar"


@pytest.mark.parametrize("bad", [
    {"source": "lidar", "track_id": "t1", "dwel_s": 2.0},  # a typo'd key
    {"source": "radar", "track_id": "t1"},  # not a source that exists
    {"source": "lidar", "track_id": "t1", "x_m": float("nan")},
    {"source": "lidar", "track_id": "t1", "dwell_s": float("inf")},
    {"source": "lidar", "track_id": "t1", "dwell_s": -1.0},
    {"source": "lidar", "track_id": "x" * 65},
    {"source": "lidar", "track_id": ""},
])
def test_bad_details_are_refused_where_the_alert_is_made(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        IntrusionDetails.model_validate(bad)


def test_received_details_that_do_not_fit_their_kind_are_a_protocol_error() -> None:
    with pytest.raises(ProtocolError) as err:
        parse_details(AlertKind.BATTERY_LOW, {"battery_pct": 180})
    assert err.value.reason == "bad_details"
    with pytest.raises(ProtocolError):
        parse_details(AlertKind.SOS, {"band": 7})
