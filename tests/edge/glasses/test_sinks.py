"""HUD sinks: PNG files written atomically and bounded, a GStreamer pipeline that hands the
same pixels back through an appsink, framebuffer bytes in RGB565 and BGRA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge.glasses.sinks import LATEST, PngSink, SinkError

RNG = np.random.default_rng(14)


def frame(width: int = 64, height: int = 40) -> np.ndarray:
    return RNG.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def test_png_sink_writes_latest_and_keeps_only_the_newest(tmp_path: Path) -> None:
    sink = PngSink(tmp_path / "hud", keep=3)
    frames = [frame() for _ in range(5)]
    for f in frames:
        sink.show(f)
    names = sorted(p.name for p in (tmp_path / "hud").iterdir())
    assert names == ["frame-000003.png", "frame-000004.png", "frame-000005.png", LATEST]
    assert np.array_equal(np.asarray(Image.open(sink.latest)), frames[-1])
    assert np.array_equal(np.asarray(Image.open(tmp_path / "hud" / "frame-000003.png")),
                          frames[2])


def test_png_sink_continues_numbering_after_a_restart_and_clears_temp_files(tmp_path: Path
                                                                            ) -> None:
    first = PngSink(tmp_path, keep=10)
    first.show(frame())
    first.show(frame())
    (tmp_path / ".latest.png.999.png.tmp").write_bytes(b"half a file")
    again = PngSink(tmp_path, keep=10)
    again.show(frame())
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["frame-000001.png", "frame-000002.png", "frame-000003.png", LATEST]


def test_png_sink_refuses_a_bad_frame_and_a_bad_directory(tmp_path: Path) -> None:
    sink = PngSink(tmp_path)
    with pytest.raises(SinkError, match="H x W x 3"):
        sink.show(np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(SinkError, match="H x W x 3"):
        sink.show(np.zeros((4, 4, 3), dtype=np.float32))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SinkError, match="cannot create"):
        PngSink(blocker / "sub")
    with pytest.raises(SinkError, match="at least 1"):
        PngSink(tmp_path, keep=0)
