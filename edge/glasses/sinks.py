"""Where HUD frames go: PNG files (demo, tests, a phone viewer polling ``latest.png``), a
GStreamer pipeline (a window, or a glasses display on HDMI/USB-C via kmssink/fbdevsink), or a
Linux framebuffer written directly.

Every sink implements :class:`~edge.glasses.view.Sink` (``show`` / ``close``) and raises
:class:`SinkError` with a sentence saying what to fix. ``make_sink`` builds one from the typed
config the glasses agent embeds (:data:`SinkConfig`).
"""

from __future__ import annotations

import io
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from PIL import Image
from pydantic import Field

from edge import gstreamer
from edge.config import StrictModel
from edge.errors import GridwardError
from edge.glasses.view import Frame, Sink

log = logging.getLogger(__name__)

FRAME_NAME = re.compile(r"^frame-(\d{6,})\.png$")
LATEST = "latest.png"
GST_STOP_TIMEOUT_S = 5.0


class SinkError(GridwardError):
    """A display sink cannot start or cannot take a frame; the message says why."""


def _check_frame(frame: Frame) -> tuple[int, int]:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise SinkError(f"a HUD frame is H x W x 3 uint8, not {frame.shape} {frame.dtype}")
    return int(frame.shape[0]), int(frame.shape[1])


# -- PNG --------------------------------------------------------------------------------------


class PngSink:
    """Writes each frame as ``frame-NNNNNN.png`` and ``latest.png`` in ``directory``.

    Writes are atomic (a temporary file in the same directory, then ``os.replace``), so a reader
    polling ``latest.png`` never sees half a file. Only the newest ``keep`` numbered frames stay;
    numbering continues after the highest one already there, so a restart never overwrites."""

    def __init__(self, directory: Path, keep: int = 50) -> None:
        if keep < 1:
            raise SinkError(f"PngSink keep must be at least 1, not {keep}")
        self.directory = Path(directory)
        self.keep = keep
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise SinkError(f"cannot create the HUD frame directory {directory}: {err}") from err
        existing = self._numbered()
        self._next = (existing[-1][0] + 1) if existing else 1
        for path in self.directory.glob(".*.png.tmp"):
            path.unlink(missing_ok=True)  # left by a crash mid-write
        self.written = 0

    def _numbered(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.directory.iterdir():
            match = FRAME_NAME.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found)

    def _atomic_write(self, data: bytes, name: str) -> None:
        tmp = self.directory / f".{name}.{os.getpid()}.png.tmp"
        tmp.write_bytes(data)
        tmp.replace(self.directory / name)

    def _link_latest(self, name: str, data: bytes) -> None:
        tmp = self.directory / f".{LATEST}.{os.getpid()}.png.tmp"
        tmp.unlink(missing_ok=True)
        try:
            tmp.hardlink_to(self.directory / name)
        except OSError:  # a filesystem without hard links (vfat on an SD card)
            tmp.write_bytes(data)
        tmp.replace(self.directory / LATEST)

    def show(self, frame: Frame) -> None:
        _check_frame(frame)
        buf = io.BytesIO()
        # compress_level 1: a HUD frame is mostly flat colour, so the fastest level is
        # nearly as small and several times quicker than the default 6.
        Image.fromarray(frame, "RGB").save(buf, format="PNG", compress_level=1)
        data = buf.getvalue()
        name = f"frame-{self._next:06d}.png"
        try:
            self._atomic_write(data, name)
            # latest.png is a second link to the same file: no second write, and it survives
            # the numbered name being pruned later.
            self._link_latest(name, data)
        except OSError as err:
            raise SinkError(f"cannot write a HUD frame to {self.directory}: {err}") from err
        self._next += 1
        self.written += 1
        for _, path in self._numbered()[:-self.keep]:
            path.unlink(missing_ok=True)

    @property
    def latest(self) -> Path:
        return self.directory / LATEST

    def close(self) -> None:
        """Nothing to release; the files stay for whoever reads them."""


# -- GStreamer --------------------------------------------------------------------------------

def gst() -> Any:
    """The initialised ``Gst`` module, imported lazily (GStreamer is optional on a box)."""
    try:
        return gstreamer.gst()
    except gstreamer.GStreamerMissingError as err:
        raise SinkError(str(err)) from err


class GstSink:
    """``appsrc ! videoconvert ! <pipeline_tail>``; the caps follow the first frame's size.

    The pipeline starts on the first frame (a sink does not know the HUD size before). Errors
    posted on the bus surface as :class:`SinkError` from the next ``show``."""

    def __init__(self, pipeline_tail: str, framerate_hz: int = 0) -> None:
        if not pipeline_tail.strip():
            raise SinkError("the GStreamer sink needs a pipeline tail, e.g. 'autovideosink'")
        self.gst = gst()
        self.tail = pipeline_tail
        self.framerate_hz = framerate_hz
        self.pipeline: Any = None
        self._src: Any = None
        self._size: tuple[int, int] | None = None
        self._pts = 0
        self._closed = False
        self._failed = False

    def description(self, width: int, height: int) -> str:
        caps = (f"video/x-raw,format=RGB,width={width},height={height},"
                f"framerate={self.framerate_hz}/1")
        return (f"appsrc name=hudsrc is-live=true format=time caps={caps} ! "
                f"videoconvert ! {self.tail}")

    def _start(self, width: int, height: int) -> None:
        g = self.gst
        try:
            self.pipeline = g.parse_launch(self.description(width, height))
        except Exception as err:  # GLib.Error: a bad tail or a missing element
            raise SinkError(f"GStreamer pipeline tail {self.tail!r} is invalid: {err}") from err
        self._src = self.pipeline.get_by_name("hudsrc")
        if self.pipeline.set_state(g.State.PLAYING) == g.StateChangeReturn.FAILURE:
            self._check_bus()
            self.pipeline.set_state(g.State.NULL)
            raise SinkError(f"GStreamer pipeline {self.tail!r} refused to start")
        self._size = (height, width)

    def element(self, name: str) -> Any:
        """An element of the running pipeline by name (tests read an appsink this way)."""
        if self.pipeline is None:
            raise SinkError("the GStreamer sink has not started: show a frame first")
        return self.pipeline.get_by_name(name)

    def _check_bus(self) -> None:
        if self.pipeline is None:
            return
        bus = self.pipeline.get_bus()
        while True:
            msg = bus.pop_filtered(self.gst.MessageType.ERROR)
            if msg is None:
                return
            err, debug = msg.parse_error()
            self._failed = True
            log.debug("GStreamer sink error detail: %s", debug)
            raise SinkError(f"GStreamer sink {self.tail!r} failed: {err.message}")

    def show(self, frame: Frame) -> None:
        if self._closed:
            raise SinkError("the GStreamer sink is closed")
        height, width = _check_frame(frame)
        if self._size is None:
            self._start(width, height)
        elif self._size != (height, width):
            raise SinkError(f"frame size changed from {self._size[1]}x{self._size[0]} to "
                            f"{width}x{height}; make a new sink for a new size")
        self._check_bus()
        g = self.gst
        # GStreamer's RGB rows are padded to 4 bytes; HUD widths usually need none.
        stride = (width * 3 + 3) & ~3
        data = frame.tobytes()
        if stride != width * 3:
            padded = np.zeros((height, stride), dtype=np.uint8)
            padded[:, :width * 3] = frame.reshape(height, width * 3)
            data = padded.tobytes()
        buf = g.Buffer.new_wrapped(data)
        buf.pts = self._pts
        duration = g.SECOND // self.framerate_hz if self.framerate_hz else g.SECOND // 30
        buf.duration = duration
        self._pts += duration
        if self._src.emit("push-buffer", buf) != g.FlowReturn.OK:
            self._check_bus()
            raise SinkError(f"GStreamer sink {self.tail!r} refused a frame")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.pipeline is None:
            return
        g = self.gst
        if not self._failed:  # a failed pipeline posts no end-of-stream: do not wait for it
            self._src.emit("end-of-stream")
            bus = self.pipeline.get_bus()
            bus.timed_pop_filtered(int(GST_STOP_TIMEOUT_S * g.SECOND),
                                   g.MessageType.EOS | g.MessageType.ERROR)
        self.pipeline.set_state(g.State.NULL)
        self.pipeline = None
        self._src = None


class WindowSink(GstSink):
    """A desktop window (autovideosink): for development and a demo on a laptop."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        if not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
            raise SinkError("the window sink needs a display (DISPLAY or WAYLAND_DISPLAY is "
                            "unset); use the png or framebuffer sink on a headless box")
        super().__init__("autovideosink sync=false")


# -- Linux framebuffer ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FbGeometry:
    width: int
    height: int
    bits_per_pixel: Literal[16, 32]
    stride_bytes: int


def read_fb_geometry(device: Path, sysfs: Path = Path("/sys/class/graphics")) -> FbGeometry:
    """Geometry of ``/dev/fbN`` from ``/sys/class/graphics/fbN`` (virtual_size,
    bits_per_pixel, stride)."""
    node = sysfs / device.name
    try:
        width, height = (int(v) for v in (node / "virtual_size").read_text().strip().split(","))
        bpp = int((node / "bits_per_pixel").read_text().strip())
        stride_file = node / "stride"
        stride = (int(stride_file.read_text().strip()) if stride_file.exists()
                  else width * bpp // 8)
    except (OSError, ValueError) as err:
        raise SinkError(f"cannot read the geometry of {device} from {node}: {err}") from err
    if bpp not in (16, 32):
        raise SinkError(f"{device} is {bpp} bits per pixel; the HUD writes 16 (RGB565) or "
                        "32 (BGRA) only")
    if stride < width * bpp // 8:
        raise SinkError(f"{device} stride {stride} is shorter than a row of {width} pixels")
    return FbGeometry(width, height, 16 if bpp == 16 else 32, stride)


def to_fb_bytes(frame: Frame, geometry: FbGeometry) -> bytes:
    """The frame in the framebuffer's layout: cropped or black-padded to its size, RGB565
    little-endian or BGRA, rows padded to the stride."""
    g = geometry
    canvas = np.zeros((g.height, g.width, 3), dtype=np.uint8)
    h, w = min(g.height, frame.shape[0]), min(g.width, frame.shape[1])
    canvas[:h, :w] = frame[:h, :w]
    if g.bits_per_pixel == 16:
        r = canvas[..., 0].astype(np.uint16)
        gr = canvas[..., 1].astype(np.uint16)
        b = canvas[..., 2].astype(np.uint16)
        pixels = ((r >> 3) << 11) | ((gr >> 2) << 5) | (b >> 3)
        rows = pixels.astype("<u2").view(np.uint8).reshape(g.height, g.width * 2)
    else:
        bgra = np.empty((g.height, g.width, 4), dtype=np.uint8)
        bgra[..., 0], bgra[..., 1], bgra[..., 2] = canvas[..., 2], canvas[..., 1], canvas[..., 0]
        bgra[..., 3] = 255
        rows = bgra.reshape(g.height, g.width * 4)
    if rows.shape[1] < g.stride_bytes:
        padded = np.zeros((g.height, g.stride_bytes), dtype=np.uint8)
        padded[:, :rows.shape[1]] = rows
        rows = padded
    return rows.tobytes()


class FramebufferSink:
    """Writes frames straight into ``/dev/fbN`` (no X, no GStreamer: the smallest boxes).

    ``geometry`` is read from sysfs unless given (tests point ``device`` at a plain file)."""

    def __init__(self, device: Path, geometry: FbGeometry | None = None,
                 sysfs: Path = Path("/sys/class/graphics")) -> None:
        self.device = Path(device)
        self.geometry = geometry if geometry is not None else read_fb_geometry(self.device, sysfs)
        try:
            self._fd: int | None = os.open(self.device, os.O_WRONLY)
        except OSError as err:
            raise SinkError(f"cannot open the framebuffer {device}: {err} (is the user in the "
                            "video group?)") from err
        self._warned_size = False

    def show(self, frame: Frame) -> None:
        if self._fd is None:
            raise SinkError("the framebuffer sink is closed")
        height, width = _check_frame(frame)
        if (width, height) != (self.geometry.width, self.geometry.height) and not self._warned_size:
            self._warned_size = True
            log.warning("HUD frame %sx%s differs from framebuffer %sx%s: cropped/padded",
                        width, height, self.geometry.width, self.geometry.height)
        data = to_fb_bytes(frame, self.geometry)
        try:
            os.pwrite(self._fd, data, 0)
        except OSError as err:
            raise SinkError(f"cannot write to the framebuffer {self.device}: {err}") from err

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# -- config -----------------------------------------------------------------------------------


class PngSinkConfig(StrictModel):
    type: Literal["png"] = "png"
    directory: Path = Field(description="where frame-NNNNNN.png and latest.png are written")
    keep: Annotated[int, Field(ge=1, le=100_000, description=(
        "numbered frames kept; older ones are deleted"))] = 50


class GstSinkConfig(StrictModel):
    type: Literal["gstreamer"] = "gstreamer"
    pipeline_tail: str = Field(min_length=1, description=(
        "elements after 'appsrc ! videoconvert !', e.g. 'kmssink' or 'fbdevsink device=/dev/fb1'"))
    framerate_hz: Annotated[int, Field(ge=0, le=120, description=(
        "nominal rate in the caps; 0 = variable (frames pushed when the view changes)"))] = 0


class WindowSinkConfig(StrictModel):
    type: Literal["window"] = "window"


class FramebufferSinkConfig(StrictModel):
    type: Literal["framebuffer"] = "framebuffer"
    device: Path = Field(default=Path("/dev/fb0"), description="the framebuffer device")


SinkConfig = Annotated[PngSinkConfig | GstSinkConfig | WindowSinkConfig | FramebufferSinkConfig,
                       Field(discriminator="type")]


def make_sink(config: PngSinkConfig | GstSinkConfig | WindowSinkConfig | FramebufferSinkConfig
              ) -> Sink:
    if isinstance(config, PngSinkConfig):
        return PngSink(config.directory, keep=config.keep)
    if isinstance(config, GstSinkConfig):
        return GstSink(config.pipeline_tail, framerate_hz=config.framerate_hz)
    if isinstance(config, WindowSinkConfig):
        return WindowSink()
    return FramebufferSink(config.device)
