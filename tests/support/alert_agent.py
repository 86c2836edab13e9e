"""A field agent process for the delivery test: raises N alerts at a steady rate through the
real AgentRuntime, then waits until the hub has acknowledged all of them.

Alert ids are derived from (device, sequence number), as an agent that re-derives an event after
a crash would; a restart resumes from the last sequence number it recorded as durable.

    python -m tests.support.alert_agent CONFIG_JSON COUNT RATE_PER_S
"""

from __future__ import annotations

import sys
import time
import uuid

from edge.agent import AgentRuntime
from edge.config import AgentConfig
from edge.protocol import Alert, AlertKind, DeviceKind, Severity

NAMESPACE = uuid.UUID("6f1c1c2e-8f7e-4f55-9d59-0c2b7e0a9b11")


def main() -> int:
    config = AgentConfig.model_validate_json(sys.argv[1])
    count, rate = int(sys.argv[2]), float(sys.argv[3])
    progress = config.data_dir / f"{config.device}.progress"
    start = int(progress.read_text()) if progress.exists() else 0
    runtime = AgentRuntime(config, DeviceKind.CAMERA)
    runtime.start()
    print(f"started at {start}", flush=True)
    t0 = time.monotonic()
    for seq in range(start, count):
        runtime.send_alert(
            Alert(
                id=str(uuid.uuid5(NAMESPACE, f"{config.device}/{seq}")),
                site=config.site,
                device=config.device,
                kind=AlertKind.INTRUSION,
                severity=Severity.MEDIUM,
                details={"seq": seq},
            )
        )
        # Record progress only after the alert is durable in the outbox.
        tmp = progress.with_suffix(".tmp")
        tmp.write_text(str(seq + 1))
        tmp.replace(progress)
        delay = t0 + (seq - start + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    while runtime.outbox.depth() > 0:
        time.sleep(0.05)
    print("all acked", flush=True)
    runtime.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
