"""The live stream through the whole path: device -> broker -> hub -> WebSocket (alerts and
positions over REST: tests/hub/alerts/, tests/hub/positions/)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from edge.protocol import AlertKind, Severity
from hub.auth import Role
from tests.hub.conftest import RunningHub, start_hub, stop_hub, wearer_position, wristband_agent
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until


def _recv(ws: ClientConnection, layer: str, timeout_s: float = 5.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while True:
        frame = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        for event in frame["events"] if frame["layer"] == "batch" else [frame]:
            if event["layer"] == layer:
                return event  # type: ignore[no-any-return]


def test_live_stream_filters_by_layer_and_bbox(
    hub: RunningHub, broker: BrokerHarness, tmp_path: Path
) -> None:
    token = hub.client(Role.OFFICER).headers["Authorization"].split()[1]
    url = f"ws://127.0.0.1:{hub.port}/api/v1/live?token={token}"
    agent = wristband_agent(hub, broker, tmp_path, f"{hub.site}-gw")
    try:
        with (
            connect(f"{url}&layers=positions&bbox=114.0,22.5,114.1,22.6") as near,
            connect(f"{url}&layers=alerts") as alerts_only,
        ):
            assert json.loads(near.recv(timeout=5))["layers"] == ["positions"]
            assert json.loads(alerts_only.recv(timeout=5))["layer"] == "hello"
            agent.send_positions([wearer_position("far", 120.0, 30.0)])
            agent.send_positions([wearer_position("close", 114.05, 22.54)])
            event = _recv(near, "positions")
            assert event["entity"] == "close"  # "far" was filtered out by the bbox
            sos = agent.alert(kind=AlertKind.SOS, severity=Severity.HIGH)
            assert _recv(alerts_only, "alerts")["id"] == sos.id
    finally:
        agent.stop()


@pytest.mark.allow_leaks  # hub started here; stopped in finally
def test_slow_live_client_is_dropped_and_ingest_keeps_up(
    broker: BrokerHarness, site: str, tmp_path: Path
) -> None:
    from hub.config import ApiConfig

    hub = start_hub(broker, site, tmp_path, api=ApiConfig(port=0, ws_queue_max=20))
    try:
        token = hub.client(Role.OPERATOR).headers["Authorization"].split()[1]
        agent = wristband_agent(hub, broker, tmp_path, f"{site}-gw")
        try:
            with connect(
                f"ws://127.0.0.1:{hub.port}/api/v1/live?token={token}&layers=positions",
                max_size=None,
            ) as slow:
                slow.recv(timeout=5)  # hello; then never read again
                for i in range(40):
                    agent.send_positions(
                        [wearer_position(f"e{j}", 114.05, 22.54, i) for j in range(50)]
                    )
                wait_until(
                    lambda: hub.service.ingest.stats.stored_positions >= 2000,
                    timeout_s=20,
                    message="ingest stored everything",
                )
                with pytest.raises(ConnectionClosed) as closed:  # noqa: PT012 - read until closed
                    while True:
                        slow.recv(timeout=5)
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 1013
                assert "too slow" in closed.value.rcvd.reason
            assert hub.service.live.stats["clients_dropped_slow"] == 1
        finally:
            agent.stop()
    finally:
        stop_hub(broker, hub)
