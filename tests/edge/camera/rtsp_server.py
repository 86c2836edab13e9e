"""A GstRtspServer for tests, run as a subprocess: serves H.264 of a test pattern (or a file)
at rtsp://127.0.0.1:PORT/cam and prints "ready PORT" once it listens."""

from __future__ import annotations

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    port = sys.argv[1]
    source = sys.argv[2] if len(sys.argv) > 2 else ""
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    if source:
        head = f'filesrc location="{source}" ! decodebin ! videoconvert'
    else:
        head = ("videotestsrc is-live=true pattern=ball ! "
                "video/x-raw,width=320,height=240,framerate=15/1")
    factory.set_launch(f"( {head} ! x264enc tune=zerolatency speed-preset=ultrafast "
                       "key-int-max=15 ! rtph264pay name=pay0 pt=96 )")
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        print("failed", flush=True)
        return 1
    print(f"ready {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
