"""GStreamer ingest for real: test pattern, the real video file, and a real RTSP server."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.vision.ingest import (
    FileSource,
    FrameSource,
    IngestConfig,
    RtspSource,
    TestPatternSource,
    V4l2Source,
    pipeline_description,
)
from tests.edge.camera.conftest import RtspServer, free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.gstreamer


def test_pipeline_descriptions_per_source() -> None:
    ingest = IngestConfig(width_px=320, height_px=240)
    rtsp = pipeline_description(RtspSource(url="rtsp://cam.local:554/s1"), ingest)
    assert rtsp.startswith('rtspsrc location="rtsp://cam.local:554/s1" latency=200 protocols=tcp')
    assert "format=BGR,width=320,height=240" in rtsp and "sync=true" in rtsp
    assert "drop=true" in rtsp
    f = pipeline_description(FileSource(path=Path('/v/a "b".avi')), ingest.model_copy(
        update={"policy": "all", "decoder": "software"}))
    assert 'filesrc location="/v/a \\"b\\".avi" ! decodebin force-sw-decoders=true' in f
    assert "sync=false" in f and "drop=false" in f
    assert pipeline_description(V4l2Source(), ingest).startswith(
        'v4l2src device="/dev/video0" ! decodebin')
    t = pipeline_description(TestPatternSource(fps=5), ingest.model_copy(update={"max_fps": 2}))
    assert "videotestsrc is-live=true" in t and "videorate drop-only=true" in t


def _drain(source: FrameSource, until: Callable[[], bool], timeout_s: float = 20) -> int:
    n = 0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not until():
        if source.read(0.2) is not None:
            n += 1
    return n


def test_file_source_delivers_every_frame_of_the_real_video(vtest: Path) -> None:
    source = FrameSource(FileSource(path=vtest), IngestConfig(width_px=384, height_px=288,
                                                              policy="all"))
    source.start()
    try:
        frames = []
        while True:
            f = source.read(0.5)
            if f is not None:
                frames.append((f.seq, f.image.shape))
            elif source.ended.is_set():
                break
    finally:
        source.stop()
    assert len(frames) == 795
    assert frames[0] == (1, (288, 384, 3))
    assert [s for s, _ in frames] == list(range(1, 796))
    assert source.decoder is not None and source.counters["reconnects"] == 0


def test_latest_policy_counts_frames_a_slow_reader_never_took() -> None:
    source = FrameSource(TestPatternSource(fps=60), IngestConfig(width_px=160, height_px=120))
    source.start()
    try:
        taken = 0
        deadline = time.monotonic() + 20
        while source.dropped["frame_not_taken"] < 10 and time.monotonic() < deadline:
            if source.read(0.5) is not None:
                taken += 1
            time.sleep(0.1)  # a reader slower than the camera: the slot overflows
    finally:
        source.stop()
    assert source.dropped["frame_not_taken"] >= 10
    assert taken + source.dropped["frame_not_taken"] <= source.counters["frames"]


def test_rtsp_stream_from_a_real_server(rtsp_server: RtspServer) -> None:
    source = FrameSource(RtspSource(url=rtsp_server.url), IngestConfig(width_px=320,
                                                                       height_px=240))
    source.start()
    try:
        got = _drain(source, lambda: source.counters["frames"] >= 10)
    finally:
        source.stop()
    assert got >= 1 and source.counters["frames"] >= 10
    assert source.decoder is not None and "264" in source.decoder


def test_rtsp_reconnects_with_backoff_when_the_server_dies(
        make_rtsp_server: Callable[[int], RtspServer]) -> None:
    port = free_port()
    server = make_rtsp_server(port)
    server.start()
    source = FrameSource(RtspSource(url=f"rtsp://127.0.0.1:{port}/cam"),
                         IngestConfig(width_px=160, height_px=120, reconnect_min_s=0.2,
                                      reconnect_max_s=1.0, stall_timeout_s=2.0))
    source.start()
    try:
        wait_until(source.connected.is_set, 20, message="first connection")
        server.stop()
        wait_until(lambda: source.counters["reconnects"] >= 2, 30, message="reconnect attempts")
        before = source.counters["frames"]
        server.start()
        wait_until(lambda: source.counters["frames"] > before + 5, 30,
                   message="frames after the server came back")
        assert not source.ended.is_set()
    finally:
        source.stop()


def test_missing_file_is_an_error_that_ends_the_source_not_a_crash(tmp_path: Path) -> None:
    # A file that is not there will not be there on a retry either (test_stream_errors.py
    # has every cause); the source stops with the reason instead of retrying forever.
    source = FrameSource(FileSource(path=tmp_path / "nope.avi"),
                         IngestConfig(reconnect_min_s=0.05, reconnect_max_s=0.1))
    source.start()
    try:
        wait_until(source.ended.is_set, 30, message="the source ended")
    finally:
        source.stop()
    assert source.counters["stream_errors"] == 1 and source.counters["reconnects"] == 0
    assert source.failure is not None and source.failure.cause == "not found"
