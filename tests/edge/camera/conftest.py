"""Camera fixtures: the cached real video, and a real RTSP server in a subprocess."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.camera.testdata import TestDataMissingError, fetch_vtest, vtest_path

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def vtest() -> Path:
    """vtest.avi from the cache, fetched from PyPI (opencv-python sdist) on first use."""
    try:
        return vtest_path()
    except TestDataMissingError:
        return fetch_vtest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RtspServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "rtsp_server.py"),
                                      str(self.port)], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line.startswith("ready"), f"RTSP server did not start: {line!r}"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None


@pytest.fixture
def rtsp_server() -> Iterator[RtspServer]:
    server = RtspServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_rtsp_server() -> Iterator[Callable[[int], RtspServer]]:
    servers: list[RtspServer] = []

    def make(port: int) -> RtspServer:
        server = RtspServer(port)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
