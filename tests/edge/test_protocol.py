"""The wire contract: topics, payload round-trips, limits, and fuzzing of every parser."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.protocol import (
    ALL_MODELS,
    CHANNEL_MODELS,
    CMD_MODELS,
    EVIDENCE_MAX_BYTES,
    Alert,
    AlertKind,
    Channel,
    CmdChannel,
    CmdTopic,
    ConfigPush,
    DeviceKind,
    DeviceState,
    DeviceStatus,
    DeviceTopic,
    EntityKind,
    Evidence,
    Health,
    HubAck,
    Location,
    Message,
    Notify,
    Position,
    PositionBatch,
    ProtocolError,
    Reply,
    Request,
    RequestAction,
    Severity,
    Sighting,
    SightingBatch,
    WatchlistBundleEnvelope,
    channel_of,
    cmd_topic,
    decode_as,
    decode_cmd_message,
    decode_device_message,
    device_filter,
    device_topic,
    encode,
    parse_topic,
)
from edge.protocol_doc import render
from edge.validators import new_id

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
JPEG = b"\xff\xd8\xff\xe0fake-but-bounded-jpeg\xff\xd9"


def examples() -> list[Message]:
    """One valid instance of every contract model."""
    base = {"site": "north", "device": "cam-7"}
    pos = Position(
        entity="w-1",
        entity_kind=EntityKind.WEARER,
        lon=114.05,
        lat=22.54,
        accuracy_m=3.0,
        heading_deg=90.0,
        speed_mps=1.2,
        ts=NOW,
    )
    return [
        DeviceState(**base, state=DeviceStatus.ONLINE, kind=DeviceKind.CAMERA, config_version=3),
        Health(
            **base,
            uptime_s=12.5,
            fps=9.8,
            inference_ms=41.0,
            queue_depth=2,
            outbox_depth=0,
            dropped={"pos_queue_full": 1},
            metrics={"crossings": 4.0},
        ),
        Alert(
            **base,
            kind=AlertKind.INTRUSION,
            severity=Severity.HIGH,
            title="person in zone",
            location=Location(lon=114.05, lat=22.54, accuracy_m=2.0),
            zone="gate-a",
            entity="track-12",
            started_at=NOW,
            evidence=Evidence.from_jpeg(JPEG, 64, 48),
            details={"score": 0.91, "class": "person"},
        ),
        PositionBatch(**base, positions=[pos, pos.model_copy(update={"entity": "w-2"})]),
        Reply(**base, request_id=new_id(), ok=True, result={"frames": 3}),
        SightingBatch(
            **base,
            sightings=[
                Sighting(
                    entity="w-1",
                    receiver="rx-hall",
                    lon=114.0565,
                    lat=22.5427,
                    rssi_dbm=-71.5,
                    rssi_sigma_db=2.1,
                    tx_power_1m_dbm=-59.0,
                    path_loss_exponent=2.2,
                    ts=NOW,
                )
            ],
        ),
        HubAck(**base, ids=[new_id(), new_id()]),
        ConfigPush(**base, config_version=4, config={"zones": [{"id": "a"}]}),
        WatchlistBundleEnvelope(
            **base,
            bundle_version=2,
            issued_at=NOW,
            expires_at=NOW + timedelta(hours=1),
            key_id="k1",
            nonce_b64="bm9uY2U=",
            ciphertext_b64="Y2lwaGVy",
            signature_b64="c2ln",
        ),
        Request(**base, action=RequestAction.SNAPSHOT),
        Notify(
            **base,
            alert_id=new_id(),
            kind=AlertKind.SOS,
            severity=Severity.CRITICAL,
            title="SOS",
            location=Location(lon=1.0, lat=2.0),
        ),
    ]


def test_every_model_has_an_example() -> None:
    assert {type(m) for m in examples()} == set(ALL_MODELS)


@pytest.mark.parametrize("message", examples(), ids=lambda m: type(m).__name__)
def test_round_trip(message: Message) -> None:
    data = encode(message)
    assert decode_as(type(message), data) == message
    assert json.loads(data)["v"] == 1


@pytest.mark.parametrize("message", examples(), ids=lambda m: type(m).__name__)
def test_round_trip_through_topic(message: Message) -> None:
    channel = channel_of(message)
    if isinstance(channel, Channel):
        topic = device_topic("north", DeviceKind.CAMERA, "cam-7", channel)
        inbound = decode_device_message(topic, encode(message))
        assert inbound.message == message
        assert inbound.topic == DeviceTopic("north", DeviceKind.CAMERA, "cam-7", channel)
    else:
        topic = cmd_topic("north", "cam-7", channel)
        parsed, decoded = decode_cmd_message(topic, encode(message))
        assert decoded == message
        assert parsed == CmdTopic("north", "cam-7", channel)


def test_topics() -> None:
    assert device_topic("s1", "lidar", "l-1", "alert") == "gw/v1/s1/lidar/l-1/alert"
    assert cmd_topic("s1", "l-1", CmdChannel.ACK) == "gw/v1/s1/cmd/l-1/ack"
    assert device_filter("s1", Channel.POS, shared=True) == "$share/hub/gw/v1/s1/+/+/pos"
    assert device_filter() == "gw/v1/+/+/+/+"
    assert parse_topic("gw/v1/s1/cmd/l-1/notify") == CmdTopic("s1", "l-1", CmdChannel.NOTIFY)


@pytest.mark.parametrize(
    "bad",
    [
        "gw/v1/s1/lidar/l 1/alert",
        "gw/v1/s1/lidar/+/alert",
        "gw/v1/s1/drone/x/alert",
        "gw/v2/s1/lidar/x/alert",
        "gw/v1/s1/lidar/x/alert/extra",
        "gw/v1/s1/cmd/x/pos",
        "gw/v1/s1/lidar/x/ack",
        "gw/v1//lidar/x/alert",
        "gw/v1/" + "a" * 65 + "/lidar/x/alert",
    ],
)
def test_bad_topics_rejected(bad: str) -> None:
    with pytest.raises(ProtocolError) as err:
        parse_topic(bad)
    assert err.value.reason == "bad_topic"


@pytest.mark.parametrize("device", ["a/b", "#", "+", "", "x" * 65, "a b", "é"])
def test_topic_builders_refuse_unsafe_ids(device: str) -> None:
    with pytest.raises(ProtocolError):
        device_topic("s", DeviceKind.CAMERA, device, Channel.ALERT)
    with pytest.raises(ProtocolError):
        cmd_topic("s", device, CmdChannel.ACK)


def test_forged_device_field_is_rejected() -> None:
    alert = Alert(site="s", device="cam-b", kind=AlertKind.SOS, severity=Severity.HIGH)
    topic = device_topic("s", DeviceKind.CAMERA, "cam-a", Channel.ALERT)
    with pytest.raises(ProtocolError) as err:
        decode_device_message(topic, encode(alert))
    assert err.value.reason == "origin_mismatch"


def test_state_kind_must_match_topic() -> None:
    state = DeviceState(site="s", device="d", state=DeviceStatus.ONLINE, kind=DeviceKind.LIDAR)
    with pytest.raises(ProtocolError) as err:
        decode_device_message(device_topic("s", "camera", "d", "state"), encode(state))
    assert err.value.reason == "origin_mismatch"


def test_naive_and_implausible_timestamps_rejected() -> None:
    good = json.loads(encode(examples()[0]))
    for ts in ("2026-05-01T12:00:00", "1999-01-01T00:00:00Z", "2150-01-01T00:00:00Z"):
        with pytest.raises(ProtocolError) as err:
            decode_as(DeviceState, json.dumps({**good, "ts": ts}).encode())
        assert err.value.reason == "invalid"


def test_unknown_fields_and_versions_rejected() -> None:
    good = json.loads(encode(examples()[0]))
    with pytest.raises(ProtocolError) as err:
        decode_as(DeviceState, json.dumps({**good, "surprise": 1}).encode())
    assert err.value.reason == "invalid"
    with pytest.raises(ProtocolError) as err:
        decode_as(DeviceState, json.dumps({**good, "v": 2}).encode())
    assert err.value.reason == "bad_version"


def test_size_limits() -> None:
    with pytest.raises(ProtocolError) as err:
        Evidence.from_jpeg(b"\xff" * (EVIDENCE_MAX_BYTES + 1))
    assert err.value.reason == "evidence_too_large"
    with pytest.raises(ProtocolError) as err:
        decode_as(Health, b" " * (Health.MAX_BYTES + 1))
    assert err.value.reason == "too_large"
    big = Evidence.from_jpeg(b"\xff" * EVIDENCE_MAX_BYTES)
    alert = Alert(
        site="s",
        device="d",
        kind=AlertKind.INTRUSION,
        severity=Severity.LOW,
        evidence=big,
        details={f"k{i}": "x" * 512 for i in range(32)},
    )
    assert len(encode(alert)) <= Alert.MAX_BYTES


def test_evidence_digest_checked() -> None:
    ev = json.loads(Evidence.from_jpeg(JPEG).model_dump_json())
    ev["sha256"] = "0" * 64
    alert = json.loads(encode(examples()[2]))
    alert["evidence"] = ev
    with pytest.raises(ProtocolError):
        decode_as(Alert, json.dumps(alert).encode())


def test_ids_are_unique_and_time_ordered() -> None:
    ids = [new_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(i[14] == "7" for i in ids)


def test_generated_protocol_doc_is_current() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
    assert doc.read_text(encoding="utf-8") == render(), (
        "docs/protocol.md is stale: run `gridward protocol doc`"
    )


# --- fuzzing ---------------------------------------------------------------------------------
# Totals: 3,000 + 3,000 + 2,500 + 2,500 = 11,000 generated inputs. Every parser must either
# return a valid model or raise ProtocolError (which the receivers count): nothing else.

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
FIELD_NAMES = sorted(
    {name for model in ALL_MODELS for name in model.model_fields}
    | {"lon", "lat", "entity", "entity_kind", "data_b64", "sha256"}
)


def _mutated(model: type[Message], data: st.DataObject) -> dict[str, Any]:
    """Start from a valid payload and break it in one of many ways."""
    base = json.loads(encode(next(m for m in examples() if type(m) is model)))
    key = data.draw(st.sampled_from(sorted(base) + FIELD_NAMES))
    action = data.draw(st.sampled_from(["drop", "replace", "nest"]))
    if action == "drop":
        base.pop(key, None)
    elif action == "replace":
        base[key] = data.draw(json_values)
    else:
        base[key] = {"inner": data.draw(json_values)}
    return base


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=300), model=st.sampled_from(ALL_MODELS))
def test_fuzz_decode_bytes(raw: bytes, model: type[Message]) -> None:
    try:
        decoded = decode_as(model, raw)
    except ProtocolError as err:
        assert err.reason in {"too_large", "bad_json", "bad_version", "invalid"}
    else:
        assert isinstance(decoded, model)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from(ALL_MODELS), data=st.data())
def test_fuzz_decode_mutated_payloads(model: type[Message], data: st.DataObject) -> None:
    payload = json.dumps(_mutated(model, data), allow_nan=True).encode()
    try:
        decoded = decode_as(model, payload)
    except ProtocolError as err:
        assert err.reason in {"too_large", "bad_json", "bad_version", "invalid"}
    else:
        assert decode_as(model, encode(decoded)) == decoded


topic_parts = st.sampled_from(
    [
        "gw",
        "v1",
        "s",
        "cam",
        "camera",
        "cmd",
        "alert",
        "ack",
        "+",
        "#",
        "",
        "x" * 70,
        "pos",
        "state",
    ]
) | st.text(max_size=12)


@settings(max_examples=2500, deadline=None)
@given(parts=st.lists(topic_parts, min_size=0, max_size=8))
def test_fuzz_parse_topic(parts: list[str]) -> None:
    topic = "/".join(parts)
    try:
        parsed = parse_topic(topic)
    except ProtocolError as err:
        assert err.reason == "bad_topic"
    else:
        assert str(parsed) == topic


@settings(max_examples=2500, deadline=None)
@given(channel=st.sampled_from(list(CHANNEL_MODELS) + list(CMD_MODELS)), data=st.data())
def test_fuzz_decode_with_topic(channel: Channel | CmdChannel, data: st.DataObject) -> None:
    model = CHANNEL_MODELS[channel] if isinstance(channel, Channel) else CMD_MODELS[channel]
    payload = json.dumps(_mutated(model, data), allow_nan=True).encode()
    device = data.draw(st.sampled_from(["cam-7", "cam-8"]))
    try:
        if isinstance(channel, Channel):
            decode_device_message(
                device_topic("north", DeviceKind.CAMERA, device, channel), payload
            )
        else:
            decode_cmd_message(cmd_topic("north", device, channel), payload)
    except ProtocolError as err:
        assert err.reason in {"bad_json", "bad_version", "invalid", "origin_mismatch", "too_large"}
