"""Cost of drawing a glasses HUD frame (issue 14), at 640x400 and 1280x720.

Run: .venv/bin/python bench/hud.py [--frames 200]

Figures printed (median and p95 per frame; each with its ratio against the baseline measured in
this run at the same size):
- baseline: ``Image.new`` filled + one ``paste`` of a prepared frame-sized image + the copy to
  a numpy frame: the least any Pillow renderer pays per frame.
- colour en / mono_green zh-CN: ``HudRenderer.render`` of a busy view (critical card with a
  long title, stale, answered, a cached evidence crop, four queued items, offline, unsent).
- new evidence: the same with a different evidence JPEG every frame (decode + resize each time,
  what the first frame of each new notification pays).
- png sink: ``PngSink.show`` of the rendered frame (PNG encode, an atomic write, ``latest.png``
  hard-linked to it, pruning) into a temp directory: the demo's and the tests' sink.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image

from edge.glasses.fonts import default_fontbook
from edge.glasses.hud import HudRenderer
from edge.glasses.sinks import PngSink
from edge.glasses.view import HudItem, HudView, Pose
from edge.protocol import AlertKind, ExpectedAction, OfficerAnswer, Severity

SIZES = ((640, 400), (1280, 720))
NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


def timings_ms(cases: list[tuple[str, Callable[[int], object]]], n: int
               ) -> list[tuple[str, float, float]]:
    """Median and p95 per case. The cases take turns frame by frame, so a burst of load from
    elsewhere on the machine hits them all alike and the ratios stay comparable."""
    for _, fn in cases:
        fn(0)  # warm: fonts, label caches
    times: list[list[float]] = [[] for _ in cases]
    for i in range(n):
        for k, (_, fn) in enumerate(cases):
            t0 = time.perf_counter()
            fn(i + 1)
            times[k].append((time.perf_counter() - t0) * 1000.0)
    out = []
    for (name, _), samples in zip(cases, times, strict=True):
        samples.sort()
        out.append((name, statistics.median(samples),
                    samples[min(len(samples) - 1, int(len(samples) * 0.95))]))
    return out


def photo(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(240, 320, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, "JPEG", quality=80)
    return buf.getvalue()


def busy_view(language: str, evidence: bytes) -> HudView:
    selected = HudItem(
        notify_id="n0", kind=AlertKind.FACE_MATCH, severity=Severity.CRITICAL,
        title="Watchlist match at the north gate of the depot, beside container stack 4, "
              "walking towards the car park",
        issued_at=NOW - timedelta(seconds=95), received_at=NOW, action=ExpectedAction.VERIFY,
        dispatch_id="d0", incident_number="INC-2026-0042", target=(116.4031, 39.9112),
        evidence_jpeg=evidence, answer=OfficerAnswer.ON_MY_WAY, stale=True)
    others = tuple(
        HudItem(notify_id=f"n{i}", kind=kind, severity=sev, title="queued", issued_at=NOW,
                received_at=NOW)
        for i, (kind, sev) in enumerate([(AlertKind.SOS, Severity.HIGH),
                                         (AlertKind.LOITERING, Severity.MEDIUM),
                                         (AlertKind.TAMPER, Severity.LOW),
                                         (AlertKind.BATTERY_LOW, Severity.INFO)], start=1))
    return HudView(now=NOW, language=language, items=(selected, *others),  # type: ignore[arg-type]
                   pose=Pose(116.4, 39.9, NOW, heading_deg=35.0), online=False,
                   unsent_answers=2)


def run_size(width: int, height: int, n: int, evidence: bytes, fresh: list[bytes]
             ) -> list[tuple[str, float, float]]:
    fonts = default_fontbook()
    prepared = Image.new("RGB", (width, height), (20, 20, 20))

    def baseline(_: int) -> object:
        image = Image.new("RGB", (width, height), (0, 0, 0))
        image.paste(prepared, (0, 0))
        return np.array(image, dtype=np.uint8)

    colour = HudRenderer(width, height, "colour", font=fonts)
    mono = HudRenderer(width, height, "mono_green", font=fonts)
    en_view, zh_view = busy_view("en", evidence), busy_view("zh-CN", evidence)
    frame = colour.render(en_view)
    cases: list[tuple[str, Callable[[int], object]]] = [
        ("baseline (fill + paste)", baseline),
        ("colour en", lambda _: colour.render(en_view)),
        ("mono_green zh-CN", lambda _: mono.render(zh_view)),
        # a JPEG never seen before on every frame: decode + resize each time
        ("new evidence each frame", lambda i: colour.render(
            busy_view("en", fresh[i % len(fresh)] + i.to_bytes(4, "big")))),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        sink = PngSink(Path(tmp), keep=5)
        cases.append(("png sink (encode + write)", lambda _: sink.show(frame)))
        return timings_ms(cases, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args()
    n = args.frames
    evidence = photo(0)
    fresh = [photo(i) for i in range(1, 9)]
    print(f"HUD rendering, {n} frames per case; median / p95 ms, ratio = median / baseline")
    for width, height in SIZES:
        results = run_size(width, height, n, evidence, fresh)
        base = results[0][1]
        print(f"\n{width}x{height}")
        print(f"  {'case':32} {'median':>8} {'p95':>8} {'ratio':>7}")
        for name, median, p95 in results:
            print(f"  {name:32} {median:8.2f} {p95:8.2f} {median / base:7.1f}")


if __name__ == "__main__":
    main()
