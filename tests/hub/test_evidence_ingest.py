"""Evidence is what it claims (issue 11, item 12), through real MQTT ingest: a snapshot is
decoded and re-encoded as JPEG by the hub; HTML posing as a JPEG and oversized dimensions are
refused, counted and dead-lettered, and the alert is not stored (nor acked)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from edge.agent import AgentRuntime
from edge.protocol import Alert, AlertKind, Evidence, Severity
from hub.auth import Role
from tests.hub.conftest import RunningHub, provisioned_agent
from tests.support.broker import BrokerHarness
from tests.support.images import decoded_size, small_jpeg
from tests.support.waiting import wait_until

HTML_AS_JPEG = b"\xff\xd8\xff\xe0<html><script>alert(document.cookie)</script></html>\xff\xd9"


def _camera(hub: RunningHub, broker: BrokerHarness, tmp_path: Path, device: str) -> AgentRuntime:
    return provisioned_agent(hub, broker, tmp_path, device, "camera")


def _alert(hub: RunningHub, device: str, data: bytes, title: str) -> Alert:
    return Alert(
        site=hub.site,
        device=device,
        kind=AlertKind.INTRUSION,
        severity=Severity.HIGH,
        title=title,
        evidence=Evidence.from_jpeg(data),
    )


def _huge_jpeg() -> bytes:
    # Few bytes, many pixels: a flat 5000x8 image compresses to almost nothing.
    out = io.BytesIO()
    Image.new("RGB", (5000, 8), (0, 0, 0)).save(out, format="JPEG", quality=50)
    return out.getvalue()


def test_snapshots_are_reencoded_or_refused_at_ingest(
    hub: RunningHub, broker: BrokerHarness, tmp_path: Path
) -> None:
    cam = _camera(hub, broker, tmp_path, f"{hub.site}-cam")
    try:
        # A real JPEG with a trailing HTML payload (a polyglot): stored without the payload.
        polyglot = small_jpeg(80, 60) + b"<html><script>evil()</script></html>"
        good = _alert(hub, cam.config.device, polyglot, "real image")
        html = _alert(hub, cam.config.device, HTML_AS_JPEG, "html posing as jpeg")
        huge = _alert(hub, cam.config.device, _huge_jpeg(), "too many pixels")
        for alert in (good, html, huge):
            cam.send_alert(alert)
        admin = hub.client(Role.ADMIN)

        def rejected() -> dict[str, int]:
            stats: dict[str, int] = admin.get("/api/v1/stats").json()["ingest"]["rejected"]
            return stats

        wait_until(
            lambda: (
                rejected().get("evidence_not_jpeg", 0) >= 1
                and rejected().get("evidence_too_large", 0) >= 1
                and admin.get(f"/api/v1/alerts/{good.id}").status_code == 200
            ),
            timeout_s=20,
            message="good alert stored, bad ones refused",
        )
        for refused in (html, huge):
            assert admin.get(f"/api/v1/alerts/{refused.id}").status_code == 404
        letters = admin.get("/api/v1/ingest/rejected", params={"device": cam.config.device})
        reasons = {r["reason"] for r in letters.json()["items"]}
        assert {"evidence_not_jpeg", "evidence_too_large"} <= reasons
        img = admin.get(f"/api/v1/alerts/{good.id}/evidence")
        assert img.status_code == 200
        assert img.headers["content-type"] == "image/jpeg"
        assert img.headers["x-content-type-options"] == "nosniff"
        assert decoded_size(img.content) == (80, 60)
        assert b"<html" not in img.content and b"<script" not in img.content
        # The good alert was acked and left the outbox; the refused ones were not acked.
        wait_until(lambda: cam.outbox.depth() <= 2, timeout_s=30, message="good alert acked")
    finally:
        cam.stop()
