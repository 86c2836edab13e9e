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
    MAX_DB_INT,
    MAX_WIRE_INT,
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
    DispatchAnswer,
    EntityKind,
    Evidence,
    ExpectedAction,
    Health,
    HubAck,
    Location,
    Message,
    Notify,
    OfficerAnswer,
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
    loads_strict,
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
            epk_b64="A" * 43 + "=",
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
        Notify(
            **base,
            kind=AlertKind.INTRUSION,
            severity=Severity.HIGH,
            title="Intrusion at the north gate",
            dispatch_id=new_id(),
            incident_id=new_id(),
            incident_number="I-000042",
            action=ExpectedAction.VERIFY,
            respond_by=datetime(2026, 12, 1, 12, 1, tzinfo=UTC),
        ),
        DispatchAnswer(
            **base,
            dispatch_id=new_id(),
            notify_id=new_id(),
            officer="officer-1",
            answer=OfficerAnswer.ON_MY_WAY,
            location=Location(lon=1.0, lat=2.0, accuracy_m=4.0),
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
STRICT_JSON_REASONS = {
    "bad_json",
    "bad_json_constant",
    "bad_json_number",
    "bad_json_duplicate_key",
    "bad_json_surrogate",
}
DECODE_REASONS = {"too_large", "bad_version", "invalid"} | STRICT_JSON_REASONS
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
        assert err.reason in DECODE_REASONS
    else:
        assert isinstance(decoded, model)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from(ALL_MODELS), data=st.data())
def test_fuzz_decode_mutated_payloads(model: type[Message], data: st.DataObject) -> None:
    payload = json.dumps(_mutated(model, data), allow_nan=True).encode()
    try:
        decoded = decode_as(model, payload)
    except ProtocolError as err:
        assert err.reason in DECODE_REASONS
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
        assert err.reason in DECODE_REASONS | {"origin_mismatch"}


# -- strict JSON ------------------------------------------------------------------------------

# Valid JSON as RFC 8259 has it: finite numbers, unique keys, text without lone surrogates.
valid_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
valid_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_WIRE_INT, max_value=MAX_WIRE_INT)
    | st.floats(allow_nan=False, allow_infinity=False)
    | valid_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(valid_text, children, max_size=4)
    ),
    max_leaves=16,
)


def _reason(payload: bytes) -> str | None:
    try:
        loads_strict(payload)
    except ProtocolError as err:
        return err.reason
    return None


@settings(max_examples=600, deadline=None)
@given(value=valid_json, ascii_only=st.booleans())
def test_strict_loader_accepts_all_valid_json_as_the_stdlib_reads_it(
    value: Any, ascii_only: bool
) -> None:
    payload = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8")
    assert loads_strict(payload) == json.loads(payload)


def _splice(value: Any, data: st.DataObject, leaf: str) -> str:
    """``value`` as JSON text with ``leaf`` (raw JSON text) put in at a drawn place."""
    wrapper = data.draw(st.sampled_from(["list", "dict", "nested"]))
    body = json.dumps(value)
    if wrapper == "list":
        return f"[{body}, {leaf}]"
    if wrapper == "dict":
        return f'{{"a": {body}, "b": {leaf}}}'
    return f'{{"a": [{body}, {{"deep": {leaf}}}]}}'


@settings(max_examples=300, deadline=None)
@given(value=valid_json, constant=st.sampled_from(["NaN", "Infinity", "-Infinity"]), data=st.data())
def test_strict_loader_refuses_non_finite_constants(
    value: Any, constant: str, data: st.DataObject
) -> None:
    assert _reason(_splice(value, data, constant).encode()) == "bad_json_constant"


@settings(max_examples=300, deadline=None)
@given(
    value=valid_json,
    exponent=st.integers(min_value=309, max_value=100_000),
    sign=st.sampled_from(["", "-"]),
    data=st.data(),
)
def test_strict_loader_refuses_numbers_that_overflow_a_double(
    value: Any, exponent: int, sign: str, data: st.DataObject
) -> None:
    assert _reason(_splice(value, data, f"{sign}1e{exponent}").encode()) == "bad_json_number"
    # The same magnitude spelt with more digits and a smaller exponent.
    digits = data.draw(st.integers(min_value=0, max_value=min(exponent, 400)))
    spelt = f"{sign}1{'0' * digits}.5e{exponent - digits}"
    assert _reason(_splice(value, data, spelt).encode()) == "bad_json_number"


@settings(max_examples=300, deadline=None)
@given(value=valid_json, key=valid_text, data=st.data())
def test_strict_loader_refuses_duplicate_keys_at_any_depth(
    value: Any, key: str, data: st.DataObject
) -> None:
    k = json.dumps(key)
    leaf = f"{{{k}: 1, {k}: {json.dumps(value)}}}"
    assert _reason(_splice(value, data, leaf).encode()) == "bad_json_duplicate_key"


@settings(max_examples=300, deadline=None)
@given(
    value=valid_json,
    unit=st.integers(min_value=0xD800, max_value=0xDFFF),
    as_key=st.booleans(),
    upper=st.booleans(),
    data=st.data(),
)
def test_strict_loader_refuses_lone_surrogates(
    value: Any, unit: int, as_key: bool, upper: bool, data: st.DataObject
) -> None:
    escape = f"\\u{unit:04X}" if upper else f"\\u{unit:04x}"
    leaf = f'{{"{escape}": 1}}' if as_key else f'"x{escape}y"'
    assert _reason(_splice(value, data, leaf).encode()) == "bad_json_surrogate"


@settings(max_examples=200, deadline=None)
@given(char=st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF))
def test_strict_loader_keeps_surrogate_pairs_and_escaped_backslashes(char: str) -> None:
    pair = json.dumps(char)  # ensure_ascii: a valid \\uD8xx\\uDCxx pair
    assert loads_strict(pair.encode()) == char
    assert loads_strict(b'"\\\\ud800"') == "\\ud800"  # a backslash, then "ud800": just text


def test_strict_loader_refuses_what_python_json_accepts() -> None:
    cases = {
        b'{"uptime_s": NaN}': "bad_json_constant",
        b"[Infinity]": "bad_json_constant",
        b"[-Infinity]": "bad_json_constant",
        b"[1e999]": "bad_json_number",
        b"[-1E+400]": "bad_json_number",
        b"[1" + b"0" * 220 + b"e99]": "bad_json_number",  # 1e319 with a two-digit exponent
        b"[" + b"9" * 400 + b".5]": "bad_json_number",
        b'{"a": 1, "a": 2}': "bad_json_duplicate_key",
        b'"\\udc00"': "bad_json_surrogate",
        b'"\\ud83d"': "bad_json_surrogate",  # a high half with no low half after it
        b"[" + b"1" * 5001 + b"]": "bad_json_number",  # past Python's int-digit limit
        b"[9007199254740992]": "bad_json_number",  # 2**53: no longer exact in a double
        b"[-9007199254740992]": "bad_json_number",
        b"[" * 50_000: "bad_json",  # deeper than the recursion limit
        b'"\xed\xa0\x80"': "bad_json",  # a surrogate encoded as UTF-8 is not UTF-8
        '["utf-16"]'.encode("utf-16-le"): "bad_json",  # JSON on the wire is UTF-8 only
    }
    for payload, reason in cases.items():
        assert _reason(payload) == reason, payload[:40]
    for payload in [p for p, r in cases.items() if r != "bad_json"][:7]:
        json.loads(payload)  # the standard library takes every one of these


@settings(max_examples=300, deadline=None)
@given(
    value=valid_json,
    magnitude=st.integers(min_value=MAX_WIRE_INT + 1, max_value=10**6000) | st.just(10**5000),
    sign=st.sampled_from(["", "-"]),
    data=st.data(),
)
def test_strict_loader_refuses_integers_beyond_a_double(
    value: Any, magnitude: int, sign: str, data: st.DataObject
) -> None:
    """Issue 11, item 6: a 5,001-digit integer once escaped as a bare ValueError."""
    import sys

    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)  # only to spell the test's own integer
    try:
        leaf = f"{sign}{magnitude}"
    finally:
        sys.set_int_max_str_digits(old)
    assert _reason(_splice(value, data, leaf).encode()) == "bad_json_number"


@settings(max_examples=200, deadline=None)
@given(n=st.integers(min_value=-MAX_WIRE_INT, max_value=MAX_WIRE_INT))
def test_strict_loader_keeps_every_integer_a_double_holds_exactly(n: int) -> None:
    assert loads_strict(f"[{n}]".encode()) == [n]


def _health_json(**fields: Any) -> dict[str, Any]:
    return {**json.loads(encode(Health(site="s", device="d", uptime_s=1))), **fields}


@settings(max_examples=100, deadline=None)
@given(
    field=st.sampled_from(
        ["v", "uptime_s", "queue_depth", "outbox_depth", "fps", "cpu_temp_c", "alerts_dropped"]
    ),
    flag=st.booleans(),
)
def test_a_bool_is_never_read_as_a_number(field: str, flag: bool) -> None:
    """``True == 1`` in Python: lax validation once read ``"v": true`` as version 1."""
    payload = json.dumps(_health_json(**{field: flag})).encode()
    with pytest.raises(ProtocolError) as err:
        decode_as(Health, payload)
    assert err.value.reason == ("bad_version" if field == "v" else "invalid")


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"dropped": {"frames": True}}, "dropped"),
        ({"metrics": {"temp": False}}, "metrics"),
    ],
)
def test_a_bool_is_refused_inside_number_maps(fields: dict[str, Any], where: str) -> None:
    with pytest.raises(ProtocolError, match=where) as err:
        decode_as(Health, json.dumps(_health_json(**fields)).encode())
    assert err.value.reason == "invalid"


def test_versions_beyond_the_database_column_are_refused() -> None:
    state = json.loads(
        encode(DeviceState(site="s", device="d", kind=DeviceKind.CAMERA, state=DeviceStatus.ONLINE))
    )
    ok = decode_as(DeviceState, json.dumps({**state, "config_version": MAX_DB_INT}).encode())
    assert ok.config_version == MAX_DB_INT
    with pytest.raises(ProtocolError) as err:
        decode_as(DeviceState, json.dumps({**state, "config_version": MAX_DB_INT + 1}).encode())
    assert err.value.reason == "invalid"


def test_numbers_and_bools_where_the_contract_wants_them_still_decode() -> None:
    health = decode_as(Health, json.dumps(_health_json(uptime_s=5, fps=12)).encode())
    assert health.uptime_s == 5.0 and health.fps == 12.0  # an int is a fine float
    alert = Alert(
        site="s",
        device="d",
        kind=AlertKind.INTRUSION,
        severity=Severity.LOW,
        details={"flag": True, "n": 3, "x": 1.5},
    )
    assert decode_as(Alert, encode(alert)).details == {"flag": True, "n": 3, "x": 1.5}


def test_health_with_nan_metrics_is_refused_at_decode() -> None:
    """Issue 10, defect 1: such a health message once failed a whole PostgreSQL batch."""
    good = encode(Health(site="s", device="d", uptime_s=1, metrics={"temp": 1.5}))
    for bad in (b"NaN", b"Infinity", b"-Infinity", b"1e999"):
        with pytest.raises(ProtocolError) as info:
            decode_device_message(
                device_topic("s", DeviceKind.CAMERA, "d", Channel.HEALTH),
                good.replace(b"1.5", bad),
            )
        assert info.value.reason in {"bad_json_constant", "bad_json_number"}
