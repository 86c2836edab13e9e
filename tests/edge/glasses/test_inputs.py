"""The officer's inputs against a real (unstarted) agent: the local HTTP API under hostile
requests, key bindings, the serial button's tap / double tap on a pseudo-terminal."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.bus import BusConfig
from edge.glasses.config import ButtonInput, HttpInput
from edge.glasses.inputs import (
    KeyReader,
    LocalApi,
    SerialButton,
    TapDetector,
    handle_key,
    read_token,
)
from edge.glasses.service import GlassesAgent, PhoneFixes
from edge.glasses.view import Pose
from edge.protocol import DispatchAnswer, OfficerAnswer, PositionBatch, Severity, decode_as
from edge.validators import new_id, utcnow
from tests.edge.glasses.support import (
    PtyReceiver,
    RecordingRenderer,
    RecordingSink,
    glasses_config,
    notify,
)
from tests.support.waiting import wait_until

TOKEN = "s3cret-token-for-tests"
SITE, DEVICE = "t-inputs", "t-inputs-glasses"


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[GlassesAgent]:
    """Not started: no broker is needed to exercise the inputs; answers still go to the
    real outbox on disk."""
    config = glasses_config(SITE, DEVICE, BusConfig(), tmp_path / "data",
                            position={"source": "phone"},
                            inputs={"http": {"token_file": str(tmp_path / "data" / "api.token")}})
    a = GlassesAgent(config, renderer=RecordingRenderer(), sink=RecordingSink(),
                     position=PhoneFixes(max_fix_age_s=10))
    yield a
    a.stop()


@pytest.fixture
def api(agent: GlassesAgent) -> Iterator[LocalApi]:
    server = LocalApi(HttpInput(port=0), agent, TOKEN)
    server.start()
    yield server
    server.stop()


def call(api: LocalApi, method: str, path: str, body: Any = None, *, token: str | None = TOKEN,
         raw: bytes | None = None, headers: dict[str, str] | None = None
         ) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
    try:
        sent = headers or {}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_state_select_answer_and_position_through_the_api(
        agent: GlassesAgent, api: LocalApi) -> None:
    first, second = (notify(SITE, DEVICE, severity=Severity.MEDIUM) for _ in range(2))
    agent.on_notify(first)
    agent.on_notify(second)
    status, state = call(api, "GET", "/v1/state")
    assert status == 200 and [i["notify_id"] for i in state["items"]] == [first.id, second.id]
    assert state["selected"] == first.id
    assert call(api, "POST", "/v1/select", {"delta": 1}) == (200, {"ok": True,
                                                                   "selected": second.id})
    status, got = call(api, "POST", "/v1/position", {"lon": 116.4, "lat": 39.9,
                                                     "heading_deg": 90})
    assert status == 200
    status, got = call(api, "POST", "/v1/answer",
                       {"notify_id": second.id, "answer": "on_my_way", "note": "2 min"})
    assert status == 200 and got["dispatch_id"] == second.dispatch_id
    (item,) = agent.runtime.outbox.due(float("inf"), 10)
    answer = decode_as(DispatchAnswer, item.payload)
    assert (answer.answer, answer.note, answer.notify_id) == (OfficerAnswer.ON_MY_WAY, "2 min",
                                                              second.id)
    assert answer.location is not None and answer.location.lon == pytest.approx(116.4)
    assert call(api, "GET", "/v1/state")[1]["pose"]["heading_deg"] == 90


@pytest.mark.parametrize(("token", "headers"), [
    (None, {}), ("wrong-token-wrong-token", {}), (TOKEN + "x", {}), ("", {}),
    (None, {"Authorization": f"Basic {TOKEN}"}), (None, {"Authorization": TOKEN}),
])
def test_requests_without_the_token_are_refused(
        agent: GlassesAgent, api: LocalApi, token: str | None, headers: dict[str, str]) -> None:
    agent.on_notify(note := notify(SITE, DEVICE))
    assert call(api, "GET", "/v1/state", token=token, headers=headers)[0] == 401
    status, _ = call(api, "POST", "/v1/answer", {"notify_id": note.id, "answer": "reject"},
                     token=token, headers=headers)
    assert status == 401
    assert agent.runtime.outbox.depth() == 0
    agent.add_input(api)
    metrics = agent.health_fields()["metrics"]
    assert metrics["api_unauthorised"] == 2 and metrics["api_refused"] == 2


def test_hostile_bodies_are_refused_and_nothing_is_sent(
        agent: GlassesAgent, api: LocalApi) -> None:
    note = notify(SITE, DEVICE)
    agent.on_notify(note)
    info = notify(SITE, DEVICE, dispatch=False)
    agent.on_notify(info)
    huge = {"Content-Length": str(10_000_000), "Content-Type": "application/json"}
    cases: list[tuple[int, str, dict[str, Any]]] = [
        (413, "too_large", {"raw": b"{}", "headers": huge}),
        (400, "bad_json", {"raw": b"{not json"}),
        (400, "bad_json", {"raw": b"\xff\xfe"}),
        (422, "invalid", {"body": [1, 2]}),
        (422, "invalid", {"body": {"notify_id": note.id, "answer": "shoot"}}),
        (422, "invalid", {"body": {"notify_id": "../../etc", "answer": "acknowledge"}}),
        (422, "invalid", {"body": {"notify_id": note.id, "answer": "reject", "x": 1}}),
        (422, "invalid", {"body": {"notify_id": note.id, "answer": "reject",
                                   "note": "n" * 501}}),
        (404, "unknown_notify", {"body": {"notify_id": new_id(), "answer": "acknowledge"}}),
        (409, "not_a_dispatch", {"body": {"notify_id": info.id, "answer": "acknowledge"}}),
    ]
    for status, error, kwargs in cases:
        got = call(api, "POST", "/v1/answer", **kwargs)
        assert got[0] == status and got[1]["error"] == error, (kwargs, got)
    assert call(api, "POST", "/v1/position", {"lon": 500, "lat": 0})[0] == 422
    assert call(api, "POST", "/v1/select", {"delta": "down"})[0] == 422
    assert call(api, "GET", "/v1/answer")[0] == 405
    assert call(api, "POST", "/v1/state", {})[0] == 405
    assert call(api, "GET", "/v1/nothing")[0] == 404
    assert agent.runtime.outbox.depth() == 0
    # The API is still serving after all that.
    assert call(api, "GET", "/v1/state")[0] == 200


def test_idle_connections_cannot_pile_up(agent: GlassesAgent) -> None:
    server = LocalApi(HttpInput(port=0, max_connections=2), agent, TOKEN)
    server.start()
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
    try:
        wait_until(lambda: server.connections == 2, message="slots held by the idle clients")
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            call(server, "GET", "/v1/state")
        assert server.health()["api_refused"] == 1
        for conn in idle:
            conn.close()
        wait_until(lambda: call_ok(server), message="served again once they left")
    finally:
        for conn in idle:
            conn.close()
        server.stop()


def call_ok(api: LocalApi) -> bool:
    try:
        return call(api, "GET", "/v1/state")[0] == 200
    except (ConnectionError, http.client.HTTPException, OSError):
        return False


def test_tokens_from_file_or_variable_and_short_ones_refused(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("short\n", encoding="utf-8")
    from_file = HttpInput(token_file=tmp_path / "t")
    with pytest.raises(ValueError, match="16"):
        read_token(from_file)
    (tmp_path / "t").write_text(TOKEN + "\n", encoding="utf-8")
    assert read_token(from_file) == TOKEN
    from_env = HttpInput(token_env="GLASSES_TOKEN")
    assert read_token(from_env, {"GLASSES_TOKEN": TOKEN}) == TOKEN
    with pytest.raises(ValueError, match="GLASSES_TOKEN"):
        read_token(from_env, {})
    with pytest.raises(ValueError, match="16"):
        read_token(from_env, {"GLASSES_TOKEN": "abc"})


def test_a_fresh_urgent_notify_takes_the_card_a_routine_one_does_not(
        agent: GlassesAgent) -> None:
    agent.on_notify(low := notify(SITE, DEVICE, severity=Severity.LOW))
    assert agent.selected_id() == low.id
    agent.on_notify(notify(SITE, DEVICE, severity=Severity.MEDIUM))
    assert agent.selected_id() == low.id
    agent.on_notify(critical := notify(SITE, DEVICE, severity=Severity.CRITICAL))
    assert agent.selected_id() == critical.id
    agent.on_notify(notify(SITE, DEVICE, severity=Severity.HIGH,
                           ts=utcnow() - timedelta(hours=1)))  # stale: no interruption
    assert agent.selected_id() == critical.id


def test_each_phone_fix_is_published_once(agent: GlassesAgent) -> None:
    assert not agent.publish_position()  # no fix yet
    fix = Pose(lon=116.4, lat=39.9, fix_at=utcnow(), heading_deg=12.0)
    agent.phone_fix(fix)
    assert agent.publish_position()
    assert not agent.publish_position()  # the same fix again: nothing new to say
    agent.phone_fix(Pose(lon=116.41, lat=39.9, fix_at=utcnow()))
    assert agent.publish_position()
    batches = [decode_as(PositionBatch, payload)
               for _, payload, _ in agent.runtime.telemetry.get_batch(10, timeout_s=0)]
    assert [b.positions[0].lon for b in batches] == [116.4, 116.41]
    assert batches[0].positions[0].heading_deg == 12.0
    assert batches[1].positions[0].heading_deg is None


def test_keys_select_and_answer_the_selected_item(agent: GlassesAgent) -> None:
    agent.on_notify(first := notify(SITE, DEVICE, severity=Severity.MEDIUM))
    agent.on_notify(second := notify(SITE, DEVICE, severity=Severity.MEDIUM))
    assert handle_key("n", agent) and agent.selected_id() == second.id
    assert handle_key("A", agent)
    assert agent.queue.get(second.id).answer is OfficerAnswer.ACKNOWLEDGE  # type: ignore[union-attr]
    assert agent.queue.get(first.id).answer is None  # type: ignore[union-attr]
    assert not handle_key("q", agent)


def test_key_reader_on_a_terminal(agent: GlassesAgent) -> None:
    agent.on_notify(first := notify(SITE, DEVICE, severity=Severity.MEDIUM))
    agent.on_notify(second := notify(SITE, DEVICE, severity=Severity.MEDIUM))
    pty = PtyReceiver()  # the slave is the officer's terminal, the test types on the master
    keys = KeyReader(agent, fd=pty.slave)
    keys.start()
    try:
        pty.write(b"nzo")  # next, an unbound key, on my way
        wait_until(lambda: agent.runtime.outbox.depth() == 1, message="answer from the keys")
        assert agent.queue.get(second.id).answer is OfficerAnswer.ON_MY_WAY  # type: ignore[union-attr]
        assert agent.queue.get(first.id).answer is None  # type: ignore[union-attr]
    finally:
        keys.stop()
        pty.close()


def test_tap_detector_tells_tap_from_double_tap() -> None:
    taps = TapDetector(0.4)
    assert taps.press(10.0) is None
    assert taps.due(10.3) is None
    assert taps.press(10.35) == "double"
    assert taps.press(20.0) is None
    assert taps.due(20.5) == "tap"
    assert taps.due(21.0) is None
    assert taps.press(30.0) is None
    assert taps.press(31.0) == "tap"  # the first press, closed by a later one
    assert taps.due(31.5) == "tap"


def test_serial_button_tap_acknowledges_double_tap_moves(agent: GlassesAgent) -> None:
    agent.on_notify(first := notify(SITE, DEVICE, severity=Severity.MEDIUM))
    agent.on_notify(second := notify(SITE, DEVICE, severity=Severity.MEDIUM))
    pty = PtyReceiver()
    button = SerialButton(ButtonInput(port=pty.port, double_tap_s=0.3), agent)
    button.start()
    try:
        wait_until(lambda: button.connected, message="port opened")
        pty.write(b"\n")  # wake-up newline: no press
        pty.write(b"T\nT\n")  # two lines in one burst: double tap -> next item
        wait_until(lambda: button.counters["double"] == 1, message="double tap")
        assert agent.selected_id() == second.id
        pty.write(b"\x01")  # a lone byte without newline: one tap -> acknowledge
        wait_until(lambda: button.counters["tap"] == 1, message="tap")
        wait_until(lambda: agent.runtime.outbox.depth() == 1, message="answer stored")
        assert agent.queue.get(second.id).answer is OfficerAnswer.ACKNOWLEDGE  # type: ignore[union-attr]
        assert agent.queue.get(first.id).answer is None  # type: ignore[union-attr]
    finally:
        button.stop()
        pty.close()
