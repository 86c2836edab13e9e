"""Frame ingest with GStreamer (PyGObject): RTSP, file, V4L2 or a test pattern into BGR numpy
frames of a fixed size.

- ``decodebin`` picks the highest-ranked decoder, which is a hardware one (VA-API, V4L2
  stateless, NVDEC) where the platform installs it; ``decoder: software`` forces software.
- Policy ``latest`` (live cameras): a one-slot buffer; a frame not taken before the next one
  arrives is dropped and counted. Policy ``all`` (files, benchmarks): every frame, with
  back-pressure on the pipeline instead of drops.
- When a stream dies (error or end of a live stream) the pipeline is torn down and rebuilt after
  a jittered exponential backoff; a file either loops or ends.

The pipeline text is built by a pure function (:func:`pipeline_description`) so it can be tested
and printed with ``--validate-config``.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from edge.backoff import Backoff
from edge.config import StrictModel
from edge.queues import BoundedQueue, QueueClosedError

log = logging.getLogger(__name__)


class RtspSource(StrictModel):
    type: Literal["rtsp"] = "rtsp"
    url: Annotated[str, Field(pattern=r"^rtsps?://\S+$", max_length=2048)]
    latency_ms: Annotated[int, Field(ge=0, le=10_000)] = 200
    transport: Literal["tcp", "udp", "auto"] = "tcp"


class FileSource(StrictModel):
    type: Literal["file"] = "file"
    path: Path
    loop: bool = False
    live: bool = Field(default=False, description="pace frames at the file's own frame rate")


class V4l2Source(StrictModel):
    type: Literal["v4l2"] = "v4l2"
    device: Path = Path("/dev/video0")


class TestPatternSource(StrictModel):
    __test__ = False  # not a pytest test class despite the name

    type: Literal["test"] = "test"
    pattern: Literal["ball", "smpte", "snow", "black"] = "ball"
    fps: Annotated[int, Field(ge=1, le=120)] = 10
    num_frames: Annotated[int, Field(ge=-1)] = -1


SourceConfig = Annotated[RtspSource | FileSource | V4l2Source | TestPatternSource,
                         Field(discriminator="type")]


class IngestConfig(StrictModel):
    width_px: Annotated[int, Field(ge=16, le=7680, multiple_of=2)] = 640
    height_px: Annotated[int, Field(ge=16, le=4320, multiple_of=2)] = 480
    max_fps: Annotated[int, Field(ge=0, le=120)] = 0
    policy: Literal["latest", "all"] = "latest"
    decoder: Literal["auto", "software"] = "auto"
    reconnect_min_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    reconnect_max_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    stall_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0


class IngestError(Exception):
    """GStreamer is missing or a pipeline cannot be built."""


@dataclass(frozen=True, slots=True)
class Frame:
    image: NDArray[np.uint8]
    seq: int
    pts_s: float | None
    monotonic_s: float


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def pipeline_description(source: RtspSource | FileSource | V4l2Source | TestPatternSource,
                         ingest: IngestConfig, *, sync: bool | None = None) -> str:
    """gst-launch syntax for ``source`` ending in ``appsink name=sink`` of BGR frames."""
    decode = "decodebin" + (" force-sw-decoders=true" if ingest.decoder == "software" else "")
    if isinstance(source, RtspSource):
        protocols = {"tcp": " protocols=tcp", "udp": " protocols=udp", "auto": ""}[
            source.transport]
        head = (f"rtspsrc location={_quote(source.url)} latency={source.latency_ms}"
                f"{protocols} ! {decode}")
        live = True
    elif isinstance(source, FileSource):
        head = f"filesrc location={_quote(str(source.path))} ! {decode}"
        live = source.live
    elif isinstance(source, V4l2Source):
        head = f"v4l2src device={_quote(str(source.device))} ! {decode}"
        live = True
    else:
        head = (f"videotestsrc is-live=true pattern={source.pattern} "
                f"num-buffers={source.num_frames} ! video/x-raw,framerate={source.fps}/1")
        live = True
    rate = f" ! videorate drop-only=true ! video/x-raw,framerate={ingest.max_fps}/1" if (
        ingest.max_fps) else ""
    caps = f"video/x-raw,format=BGR,width={ingest.width_px},height={ingest.height_px}"
    do_sync = live if sync is None else sync
    drop = "true" if ingest.policy == "latest" else "false"
    return (f"{head} ! queue max-size-buffers=4 ! videoconvert ! videoscale{rate} ! {caps} ! "
            f"appsink name=sink sync={str(do_sync).lower()} max-buffers=2 drop={drop} "
            "emit-signals=false")


_gst: Any = None
_gst_lock = threading.Lock()


def gst() -> Any:
    """The initialised ``Gst`` module (imported lazily: GStreamer is optional on a dev box)."""
    global _gst  # noqa: PLW0603 - one process-wide initialisation
    with _gst_lock:
        if _gst is None:
            # libgstreamer pulls in libunwind, whose unwinder C++ runtimes loaded later
            # (onnxruntime, LiteRT) would pick up: their first exception then aborts the
            # process. Loading libgcc_s globally first keeps the standard unwinder in front.
            with contextlib.suppress(OSError):
                ctypes.CDLL("libgcc_s.so.1", mode=ctypes.RTLD_GLOBAL)
            try:
                import gi

                gi.require_version("Gst", "1.0")
                gi.require_version("GstApp", "1.0")
                from gi.repository import Gst, GstApp  # noqa: F401 - registers appsink API
            except (ImportError, ValueError) as err:
                raise IngestError(
                    "GStreamer Python bindings missing: apt-get install python3-gst-1.0 "
                    "gstreamer1.0-plugins-{base,good,bad,ugly} gstreamer1.0-libav, "
                    "pip install 'PyGObject<3.51' and run scripts/link_gst_overrides.sh"
                ) from err
            Gst.init(None)
            _gst = Gst
        return _gst


class FrameSource:
    """Runs one GStreamer pipeline on its own thread; :meth:`read` hands out frames."""

    def __init__(self, source: RtspSource | FileSource | V4l2Source | TestPatternSource,
                 ingest: IngestConfig | None = None, *, name: str = "camera") -> None:
        self.source = source
        self.ingest = ingest or IngestConfig()
        self.name = name
        self.description = pipeline_description(source, self.ingest)
        self.counters: Counter[str] = Counter()
        self.decoder: str | None = None
        self.ended = threading.Event()
        self.connected = threading.Event()
        self._frames: BoundedQueue[Frame] = BoundedQueue(1 if self.ingest.policy == "latest"
                                                         else 8)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq = 0
        self._backoff = Backoff(self.ingest.reconnect_min_s, self.ingest.reconnect_max_s)

    @property
    def dropped(self) -> Counter[str]:
        return self._frames.dropped

    def start(self) -> None:
        gst()
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-ingest",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._frames.close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def read(self, timeout_s: float = 1.0) -> Frame | None:
        batch = self._frames.get_batch(1, timeout_s)
        return batch[0] if batch else None

    # -- pipeline thread ------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            outcome = self._run_once()
            if outcome == "stopped":
                return
            if outcome == "eos" and isinstance(self.source, FileSource):
                if self.source.loop:
                    self.counters["file_loops"] += 1
                    continue
                self.ended.set()
                return
            self.counters["reconnects"] += 1
            delay = self._backoff.next_delay()
            log.warning("%s: stream lost (%s); reconnecting in %.1f s", self.name, outcome,
                        delay)
            if self._stop.wait(delay):
                return

    def _run_once(self) -> str:
        g = gst()
        try:
            pipeline = g.parse_launch(self.description)
        except Exception as err:  # noqa: BLE001 - GLib.Error: a missing element or bad syntax
            self.counters["pipeline_errors"] += 1
            log.error("%s: cannot build pipeline: %s", self.name, err)  # noqa: TRY400
            return "build_error"
        sink = pipeline.get_by_name("sink")
        bus = pipeline.get_bus()
        pipeline.set_state(g.State.PLAYING)
        outcome = "stopped"
        last_frame = time.monotonic()
        try:
            while not self._stop.is_set():
                msg = bus.pop_filtered(g.MessageType.ERROR | g.MessageType.EOS)
                if msg is not None:
                    if msg.type == g.MessageType.EOS:
                        outcome = "eos"
                    else:
                        gerr, _debug = msg.parse_error()
                        self.counters["stream_errors"] += 1
                        log.warning("%s: GStreamer error: %s", self.name, gerr.message)
                        outcome = "error"
                    break
                sample = sink.try_pull_sample(100 * g.MSECOND)
                if sample is None:
                    if sink.is_eos():
                        outcome = "eos"
                        break
                    if time.monotonic() - last_frame > self.ingest.stall_timeout_s:
                        self.counters["stalls"] += 1
                        outcome = "stall"
                        break
                    continue
                last_frame = time.monotonic()
                if not self.connected.is_set():
                    self.connected.set()
                    self._backoff.reset()
                    self.decoder = _find_decoder(pipeline, g)
                    log.info("%s: streaming (decoder %s)", self.name, self.decoder)
                frame = self._to_frame(sample, g)
                if frame is not None and not self._deliver(frame):
                    break
        finally:
            self.connected.clear()
            pipeline.set_state(g.State.NULL)
        return outcome

    def _deliver(self, frame: Frame) -> bool:
        self.counters["frames"] += 1
        if self.ingest.policy == "latest":
            self._frames.put_drop_oldest(frame, reason="frame_not_taken")
            return True
        while not self._stop.is_set():
            try:
                if self._frames.put_wait(frame, timeout_s=0.2):
                    return True
            except QueueClosedError:
                return False
        return False

    def _to_frame(self, sample: Any, g: Any) -> Frame | None:
        buf = sample.get_buffer()
        caps = sample.get_caps().get_structure(0)
        width, height = caps.get_value("width"), caps.get_value("height")
        ok, info = buf.map(g.MapFlags.READ)
        if not ok:
            self.counters["map_failed"] += 1
            return None
        try:
            stride = len(info.data) // height
            arr = np.frombuffer(info.data, dtype=np.uint8).reshape(height, stride)
            image = arr[:, : width * 3].reshape(height, width, 3).copy()
        finally:
            buf.unmap(info)
        pts = None if buf.pts == g.CLOCK_TIME_NONE else buf.pts / g.SECOND
        self._seq += 1
        return Frame(image, self._seq, pts, time.monotonic())


def _find_decoder(pipeline: Any, g: Any) -> str | None:
    it = pipeline.iterate_recurse()
    while True:
        res, element = it.next()
        if res != g.IteratorResult.OK:
            return None
        factory = element.get_factory()
        if isinstance(element, g.Bin) or factory is None:
            continue
        if "Decoder" in (factory.get_klass() or ""):
            name: str = factory.get_name()
            return name
