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

import logging
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, field_validator

from edge import gstreamer
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


class PipelineSource(StrictModel):
    """A site's own GStreamer source elements (gst-launch syntax), e.g. a camera only its
    vendor's element reads; the agent appends conversion, scaling and its appsink."""

    type: Literal["pipeline"] = "pipeline"
    pipeline: Annotated[str, Field(min_length=3, max_length=2048, pattern=r"^[^\x00-\x1f]+$")]

    @field_validator("pipeline")
    @classmethod
    def _only_the_source(cls, value: str) -> str:
        text = value.strip()
        if text.endswith("!") or text.startswith("!"):
            raise ValueError("the pipeline must not start or end with '!': give the source "
                             "elements only, the agent adds the rest")
        if "appsink" in text:
            raise ValueError("the pipeline must not contain an appsink: the agent adds its own")
        return text


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


AnySource = RtspSource | FileSource | V4l2Source | TestPatternSource | PipelineSource


def redact_url(url: str) -> str:
    """``url`` without user name, password and query (cameras put tokens there too)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable URL>"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    query = "?<query hidden>" if parts.query else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}"


def source_label(source: AnySource) -> str:
    """How logs and errors name a source: never with credentials."""
    if isinstance(source, RtspSource):
        return redact_url(source.url)
    if isinstance(source, FileSource):
        return f"file {source.path}"
    if isinstance(source, V4l2Source):
        return f"v4l2 {source.device}"
    if isinstance(source, PipelineSource):
        return f"pipeline {source.pipeline.split(maxsplit=1)[0]}"
    return f"test pattern {source.pattern}"


def _secrets(source: AnySource) -> list[str]:
    if not isinstance(source, RtspSource):
        return []
    try:
        parts = urlsplit(source.url)
    except ValueError:
        return [source.url]
    found = [source.url]
    if "@" in parts.netloc:
        found.append(parts.netloc.rsplit("@", 1)[0])
    for value in (parts.password, parts.username, parts.query):
        if value:
            found += [value, unquote(value)]
    # longest first, so a password containing the user name is removed whole
    return sorted({v for v in found if len(v) >= 2}, key=len, reverse=True)


def scrub(text: str, source: AnySource) -> str:
    """``text`` (from GStreamer) with the source's URL and credentials replaced."""
    label = source_label(source)
    for secret in _secrets(source):
        text = text.replace(secret, label if secret == getattr(source, "url", None) else "***")
    return text


@dataclass(frozen=True, slots=True)
class StreamFailure:
    """Why a stream failed: the source (without credentials), the cause in a few words, and
    what GStreamer said."""

    source: str
    cause: str
    detail: str

    def __str__(self) -> str:
        return f"{self.source}: {self.cause} (GStreamer: {self.detail})"


_RESOURCE = "gst-resource-error-quark"
_STREAM = "gst-stream-error-quark"
_CORE = "gst-core-error-quark"


_Rule = tuple[str | None, tuple[int, ...], tuple[str, ...], str]

# First match wins: (domain or any, codes or any, words in message/debug or any, cause).
# Codes are GStreamer's GstResourceError / GstStreamError / GstCoreError values.
_RULES: tuple[_Rule, ...] = (
    (None, (), ("unauthorized", " 401"), "unauthorized: check the camera's user name and password"),
    (_RESOURCE, (3,), (), "not found"),
    (None, (), ("no such file",), "not found"),
    (_RESOURCE, (15,), (), "permission denied"),
    (None, (), ("permission denied",), "permission denied"),
    (None, (), ("is a directory",), "is a directory, not a video file"),
    (None, (), ("connection refused",), "connection refused"),
    (None, (), ("timeout", "timed out"), "connection timed out"),
    (_RESOURCE, (5, 7), ("connect",), "cannot connect"),
    (_RESOURCE, (5, 7), (), "cannot open"),
    (_STREAM, (4,), (), "not a video: GStreamer could not determine the type of the data"),
    (None, (), ("no playable streams", "not-linked"), "no playable video stream"),
    (_STREAM, (5,), (), "no playable video stream"),
    (_STREAM, (6,), (), "no decoder installed for this stream"),
    (_CORE, (12,), (), "no decoder installed for this stream"),
    (_STREAM, (9,), ("eos",), "truncated: the file ends inside its header"),
    (_STREAM, (9,), (), "corrupt: cannot demultiplex"),
    (_STREAM, (7,), (), "corrupt: decoding failed"),
)


def classify_error(domain: str, code: int, message: str, debug: str) -> str:
    """The cause of a GStreamer error in the words an operator needs (pure: tested alone)."""
    low = f"{message}\n{debug}".lower()
    for rule_domain, codes, words, cause in _RULES:
        if rule_domain is not None and rule_domain != domain:
            continue
        if codes and code not in codes:
            continue
        if words and not any(w in low for w in words):
            continue
        return cause
    return "stream error"


def check_source(source: AnySource) -> str | None:
    """What is wrong with a file source before GStreamer sees it (``--validate-config``):
    None when the file exists, is a regular file and can be read; other sources pass."""
    if not isinstance(source, FileSource):
        return None
    path = source.path
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_file():
        return f"{path} is not a regular file"
    try:
        with path.open("rb") as fh:
            head = fh.read(1)
    except OSError as err:
        return f"{path} cannot be read: {err.strerror or err}"
    if not head:
        return f"{path} is empty"
    return None


def probe_tcp(host: str, port: int, timeout_s: float = 2.0) -> str | None:
    """What the operating system says about a TCP connection to ``host:port``; None when it
    connects (the failure is then above TCP: RTSP, the stream path, the codec)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except ConnectionRefusedError:
        return "connection refused"
    except TimeoutError:
        return "connection timed out"
    except socket.gaierror:
        return "host name not found"
    except OSError as err:
        return (err.strerror or type(err).__name__).lower()


@dataclass(frozen=True, slots=True)
class Frame:
    image: NDArray[np.uint8]
    seq: int
    pts_s: float | None
    monotonic_s: float


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def pipeline_description(source: AnySource,
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
    elif isinstance(source, PipelineSource):
        head = source.pipeline
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


def gst() -> Any:
    """The initialised ``Gst`` module (imported lazily: GStreamer is optional on a dev box)."""
    try:
        return gstreamer.gst()
    except gstreamer.GStreamerMissingError as err:
        raise IngestError(str(err)) from err


_START_STALL_RETRIES = 2


class FrameSource:
    """Runs one GStreamer pipeline on its own thread; :meth:`read` hands out frames."""

    def __init__(self, source: AnySource,
                 ingest: IngestConfig | None = None, *, name: str = "camera",
                 lifecycle: logging.Logger | None = None) -> None:
        self.source = source
        # the agent's lifecycle log (shown at the default level): stream connected, lost, ended
        self.lifecycle = lifecycle if lifecycle is not None else log
        self.ingest = ingest or IngestConfig()
        self.name = name
        self.description = pipeline_description(source, self.ingest)
        self.label = source_label(source)
        self.counters: Counter[str] = Counter()
        self.decoder: str | None = None
        self.ended = threading.Event()
        # why a file source ended early (set before ``ended``); None after a clean end
        self.failure: StreamFailure | None = None
        self._was_connected = False  # whether the last pipeline run delivered a frame
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
        attempt = 0
        while not self._stop.is_set():
            outcome = self._run_once()
            if outcome == "stopped":
                return
            if isinstance(self.source, FileSource):
                if outcome == "eos" and self.source.loop and self.failure is None:
                    self.counters["file_loops"] += 1
                    continue
                if (outcome == "stall" and not self._was_connected
                        and self.counters["start_stalls"] < _START_STALL_RETRIES):
                    # Seen here under load: decodebin meets an unplayable file, stops in
                    # READY->PLAYING and posts no error at all. A fresh pipeline then posts it.
                    self.counters["start_stalls"] += 1
                    log.debug("%s: no frame and no error at start; trying once more", self.label)
                    self.failure = None
                    continue
                # A file that cannot be played will not play on a retry: say why once, stop.
                if self.failure is not None:
                    self.lifecycle.error("%s; the file source stops here", self.failure)
                else:
                    self.lifecycle.info("%s: end of file after %d frames", self.label,
                                   self.counters["frames"])
                self.ended.set()
                return
            attempt += 1
            self.counters["reconnects"] += 1
            delay = self._backoff.next_delay()
            reason = str(self.failure) if self.failure is not None else (
                f"{self.label}: {outcome}")
            self.lifecycle.warning("%s: %s; reconnecting in %.1f s (attempt %d)",
                              "stream lost" if self._was_connected else "stream failed",
                              reason, delay, attempt)
            self.failure = None
            if self._stop.wait(delay):
                return

    def _fail(self, cause: str, detail: str) -> None:
        self.failure = StreamFailure(self.label, cause, scrub(detail, self.source))

    def _refine(self, cause: str) -> str:
        """A connection failure of an RTSP source, named by the operating system."""
        if not isinstance(self.source, RtspSource) or cause != "cannot connect":
            return cause
        try:
            parts = urlsplit(self.source.url)
            host, port = parts.hostname, parts.port or (322 if parts.scheme == "rtsps" else 554)
        except ValueError:
            return cause
        if host is None:
            return cause
        probed = probe_tcp(host, port)
        return probed if probed is not None else "the server accepts TCP but not the stream"

    def _run_once(self) -> str:
        g = gst()
        try:
            pipeline = g.parse_launch(self.description)
        except Exception as err:  # noqa: BLE001 - GLib.Error: a missing element or bad syntax
            self.counters["pipeline_errors"] += 1
            self._fail("cannot build the GStreamer pipeline", str(err))
            return "build_error"
        sink = pipeline.get_by_name("sink")
        bus = pipeline.get_bus()
        pipeline.set_state(g.State.PLAYING)
        outcome = "stopped"
        last_frame = time.monotonic()
        last_pts: float | None = None
        duration_s: float | None = None
        try:
            while not self._stop.is_set():
                msg = bus.pop_filtered(g.MessageType.ERROR | g.MessageType.EOS)
                if msg is not None:
                    outcome = self._bus_outcome(msg, g)
                    break
                sample = sink.try_pull_sample(100 * g.MSECOND)
                if sample is None:
                    if sink.is_eos():
                        outcome = "eos"
                        break
                    if time.monotonic() - last_frame > self.ingest.stall_timeout_s:
                        self.counters["stalls"] += 1
                        self._fail("stalled",
                                   f"no frame for {self.ingest.stall_timeout_s:g} s")
                        outcome = "stall"
                        break
                    continue
                last_frame = time.monotonic()
                if not self.connected.is_set():
                    duration_s = self._on_connected(pipeline, g)
                frame = self._to_frame(sample, g)
                if frame is not None:
                    last_pts = frame.pts_s if frame.pts_s is not None else last_pts
                    if not self._deliver(frame):
                        break
        finally:
            was_connected = self.connected.is_set()
            self.connected.clear()
            pipeline.set_state(g.State.NULL)
        self._was_connected = was_connected
        if outcome == "eos" and isinstance(self.source, FileSource):
            self._check_complete(last_pts, duration_s)
        return outcome

    def _on_connected(self, pipeline: Any, g: Any) -> float | None:
        """Mark the stream up; returns the file's declared duration where it has one."""
        self.connected.set()
        self._backoff.reset()
        self.decoder = _find_decoder(pipeline, g)
        self.lifecycle.info("stream connected: %s (decoder %s)", self.label, self.decoder)
        return _duration_s(pipeline, g)

    def _bus_outcome(self, msg: Any, g: Any) -> str:
        if msg.type == g.MessageType.EOS:
            return "eos"
        gerr, debug = msg.parse_error()
        self.counters["stream_errors"] += 1
        domain = gerr.domain if isinstance(gerr.domain, str) else g.quark_to_string(gerr.domain)
        cause = classify_error(domain, int(gerr.code), gerr.message or "", debug or "")
        self._fail(self._refine(cause), gerr.message or "")
        return "error"

    def _check_complete(self, last_pts: float | None, duration_s: float | None) -> None:
        """A file whose frames stop well before its own declared duration is truncated:
        demuxers end such a file with a plain end-of-stream, not an error."""
        if duration_s is None or duration_s <= 0:
            return
        reached = last_pts if last_pts is not None else 0.0
        if reached < duration_s - max(0.5, 0.02 * duration_s):
            self._fail("truncated",
                       f"frames end at {reached:.1f} s of the file's {duration_s:.1f} s")

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


def _duration_s(pipeline: Any, g: Any) -> float | None:
    ok, duration = pipeline.query_duration(g.Format.TIME)
    if not ok or duration in (g.CLOCK_TIME_NONE, -1) or duration <= 0:
        return None
    return float(duration) / float(g.SECOND)


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
