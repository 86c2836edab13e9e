"""HUD sinks: PNG files written atomically and bounded, a GStreamer pipeline that hands the
same pixels back through an appsink, framebuffer bytes in RGB565 and BGRA."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from edge.config import StrictModel
from edge.glasses.sinks import (
    LATEST,
    FbGeometry,
    FramebufferSink,
    GstSink,
    PngSink,
    SinkConfig,
    SinkError,
    WindowSink,
    make_sink,
    read_fb_geometry,
    to_fb_bytes,
)

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


def test_png_sink_keeps_the_previous_latest_when_a_write_fails(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    sink = PngSink(tmp_path, keep=5)
    first = frame()
    sink.show(first)
    real_write = Path.write_bytes

    def half_write(self: Path, data: bytes) -> int:
        real_write(self, data[: len(data) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_bytes", half_write)
    with pytest.raises(SinkError, match="disk full"):
        sink.show(frame())
    monkeypatch.setattr(Path, "write_bytes", real_write)
    # a reader of latest.png still gets the whole previous frame, never the half one
    assert np.array_equal(np.asarray(Image.open(sink.latest)), first)


def test_png_sink_without_hard_links_writes_latest_as_a_copy(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    def no_links(self: Path, target: Path) -> None:
        raise OSError("operation not permitted")  # what vfat answers

    monkeypatch.setattr(Path, "hardlink_to", no_links)
    sink = PngSink(tmp_path, keep=1)
    frames = [frame(), frame()]
    for f in frames:
        sink.show(f)
    assert np.array_equal(np.asarray(Image.open(sink.latest)), frames[-1])
    assert sink.latest.stat().st_nlink == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frame-000002.png", LATEST]


# -- GStreamer --------------------------------------------------------------------------------

APPSINK = "video/x-raw,format=RGB ! appsink name=out sync=false max-buffers=8 drop=false"


def _pull(sink: GstSink, width: int, height: int) -> np.ndarray:
    appsink = sink.element("out")
    sample = appsink.try_pull_sample(5 * sink.gst.SECOND)
    assert sample is not None, "no frame reached the appsink"
    caps = sample.get_caps().get_structure(0)
    assert (caps.get_value("width"), caps.get_value("height")) == (width, height)
    buf = sample.get_buffer()
    ok, info = buf.map(sink.gst.MapFlags.READ)
    assert ok
    try:
        data = np.frombuffer(bytes(info.data), dtype=np.uint8)
    finally:
        buf.unmap(info)
    stride = data.size // height  # GStreamer pads RGB rows to 4 bytes
    return data.reshape(height, stride)[:, : width * 3].reshape(height, width, 3)


@pytest.mark.parametrize(("width", "height"), [(64, 40), (62, 41)])
def test_gst_sink_delivers_the_same_pixels_to_an_appsink(width: int, height: int) -> None:
    sink = GstSink(APPSINK)
    try:
        frames = [frame(width, height) for _ in range(3)]
        for f in frames:
            sink.show(f)
        for f in frames:
            assert np.array_equal(_pull(sink, width, height), f)
        with pytest.raises(SinkError, match="size changed"):
            sink.show(frame(width + 2, height))
    finally:
        sink.close()
    with pytest.raises(SinkError, match="closed"):
        sink.show(frame(width, height))


def test_gst_sink_with_fakesink_and_bad_tails() -> None:
    sink = GstSink("fakesink sync=false")
    try:
        for _ in range(3):
            sink.show(frame())
    finally:
        sink.close()
    sink.close()  # twice is harmless
    bad = GstSink("no_such_element_here")
    with pytest.raises(SinkError, match="no_such_element_here"):
        bad.show(frame())
    bad.close()
    with pytest.raises(SinkError, match="pipeline tail"):
        GstSink("  ")


def test_gst_sink_reports_a_pipeline_error_from_the_next_show() -> None:
    # caps the frames can never meet: the streaming thread fails with not-negotiated
    sink = GstSink("video/x-raw,width=10,height=10 ! fakesink")
    pause = threading.Event()
    try:
        with pytest.raises(SinkError, match="failed"):  # noqa: PT012 - the error comes later
            for _ in range(500):  # bounded; each turn gives the streaming thread a moment
                sink.show(frame())
                pause.wait(0.01)
    finally:
        sink.close()


def test_window_sink_without_a_display_is_a_clear_error() -> None:
    with pytest.raises(SinkError, match="DISPLAY"):
        WindowSink(environ={})


# -- framebuffer ------------------------------------------------------------------------------


def _fb_file(tmp_path: Path, geometry: FbGeometry) -> Path:
    path = tmp_path / "fb0"
    path.write_bytes(b"\xaa" * geometry.stride_bytes * geometry.height)
    return path


def test_framebuffer_rgb565_bytes(tmp_path: Path) -> None:
    geometry = FbGeometry(width=4, height=2, bits_per_pixel=16, stride_bytes=10)
    device = _fb_file(tmp_path, geometry)
    pixels = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]],
                       [[8, 4, 8], [7, 3, 7], [0, 0, 0], [128, 128, 128]]], dtype=np.uint8)
    sink = FramebufferSink(device, geometry=geometry)
    try:
        sink.show(pixels)
    finally:
        sink.close()
    row0 = bytes.fromhex("00f8 e007 1f00 ffff") + b"\0\0"
    # (8,4,8) -> 00001 000001 00001; values below one step of 565 become 0; grey 128 -> 0x8410
    row1 = bytes.fromhex("2108 0000 0000 1084") + b"\0\0"
    assert device.read_bytes() == row0 + row1


def test_framebuffer_bgra_crops_and_pads(tmp_path: Path) -> None:
    geometry = FbGeometry(width=3, height=2, bits_per_pixel=32, stride_bytes=12)
    device = _fb_file(tmp_path, geometry)
    big = np.zeros((4, 5, 3), dtype=np.uint8)
    big[0, 0] = (10, 20, 30)
    big[1, 2] = (200, 100, 50)
    big[:, 3:] = 255  # outside the framebuffer: cropped
    sink = FramebufferSink(device, geometry=geometry)
    sink.show(big)
    small = np.full((1, 1, 3), 7, dtype=np.uint8)  # smaller: the rest is black
    data_big = device.read_bytes()
    sink.show(small)
    sink.close()
    assert data_big == bytes([30, 20, 10, 255, 0, 0, 0, 255, 0, 0, 0, 255,
                              0, 0, 0, 255, 0, 0, 0, 255, 50, 100, 200, 255])
    assert device.read_bytes() == bytes([7, 7, 7, 255] + [0, 0, 0, 255] * 5)
    assert to_fb_bytes(small, geometry) == device.read_bytes()


def test_framebuffer_geometry_from_sysfs(tmp_path: Path) -> None:
    node = tmp_path / "sys" / "fb1"
    node.mkdir(parents=True)
    (node / "virtual_size").write_text("640,400\n")
    (node / "bits_per_pixel").write_text("16\n")
    (node / "stride").write_text("1280\n")
    assert read_fb_geometry(Path("/dev/fb1"), tmp_path / "sys") == FbGeometry(640, 400, 16, 1280)
    (node / "bits_per_pixel").write_text("24\n")
    with pytest.raises(SinkError, match="24 bits"):
        read_fb_geometry(Path("/dev/fb1"), tmp_path / "sys")
    with pytest.raises(SinkError, match="cannot read"):
        read_fb_geometry(Path("/dev/fb7"), tmp_path / "sys")
    with pytest.raises(SinkError, match="cannot open"):
        FramebufferSink(tmp_path / "missing", geometry=FbGeometry(4, 4, 16, 8))


# -- config -----------------------------------------------------------------------------------


class _Holder(StrictModel):
    sink: SinkConfig


def test_make_sink_from_config(tmp_path: Path) -> None:
    png = _Holder.model_validate({"sink": {"type": "png", "directory": str(tmp_path), "keep": 2}})
    sink = make_sink(png.sink)
    assert isinstance(sink, PngSink)
    assert sink.keep == 2
    gst = make_sink(_Holder.model_validate({"sink": {"type": "gstreamer",
                                                     "pipeline_tail": "fakesink"}}).sink)
    assert isinstance(gst, GstSink)
    gst.close()
    with pytest.raises(ValidationError):
        _Holder.model_validate({"sink": {"type": "png", "directory": "x", "colour": 1}})
    with pytest.raises(ValidationError):
        _Holder.model_validate({"sink": {"type": "hologram"}})
    with pytest.raises(ValidationError):
        _Holder.model_validate({"sink": {"type": "png", "directory": "x", "keep": 0}})
