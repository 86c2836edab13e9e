"""The process-wide GStreamer module, imported and initialised once, on first use.

GStreamer is optional on a dev box; the camera's ingest and the glasses' video sink both load
it through here and translate :class:`GStreamerMissingError` into their own error.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from typing import Any

from edge.errors import GridwardError

INSTALL_HINT = (
    "GStreamer Python bindings missing: apt-get install python3-gst-1.0 "
    "gstreamer1.0-plugins-{base,good,bad,ugly} gstreamer1.0-libav, "
    "pip install 'PyGObject<3.51' and run scripts/link_gst_overrides.sh"
)

_gst: Any = None
_gst_lock = threading.Lock()


class GStreamerMissingError(GridwardError):
    """The GStreamer Python bindings cannot be imported here."""


def gst() -> Any:
    """The initialised ``Gst`` module (with ``GstApp`` registered for appsrc / appsink)."""
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
                raise GStreamerMissingError(INSTALL_HINT) from err
            Gst.init(None)
            _gst = Gst
        return _gst
