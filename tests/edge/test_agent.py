"""AgentRuntime pieces that need no broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge.agent import AgentRuntime
from edge.bus import BusConfig
from edge.config import AgentConfig
from edge.protocol import DeviceKind
from hub.broker import free_port


def test_agent_health_fields_override_the_runtime_defaults(tmp_path: Path) -> None:
    def fields() -> dict[str, Any]:
        return {"cpu_temp_c": 61.5, "fps": 9.5, "queue_depth": 3, "dropped": {"frames": 2}}

    cfg = AgentConfig(site="s", device="d", data_dir=tmp_path,
                      mqtt=BusConfig(port=free_port()))
    runtime = AgentRuntime(cfg, DeviceKind.CAMERA, health_fields=fields)
    try:
        health = runtime.health_message()
    finally:
        runtime.bus.stop()
        runtime.outbox.close()
    assert health.cpu_temp_c == 61.5
    assert health.fps == 9.5
    assert health.queue_depth == 3
    assert health.dropped["frames"] == 2
    assert health.dropped["bad_command"] == 0
