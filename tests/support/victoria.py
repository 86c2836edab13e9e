"""A real server that speaks the InfluxDB v2 write API, for tests and benchmarks.

No InfluxDB 2.x/3.x server is installable from this machine's registries; Debian's
``victoria-metrics`` accepts influxdb-client's ``POST /api/v2/write`` (line protocol) and lets us
read the points back through its own ``/api/v1/export``. It is started on a free loopback port
with its own storage directory and stopped by pid, so a test can kill it and start it again on
the same port and data directory (an outage).

``-dedup.minScrapeInterval=1ms`` makes it keep one sample per series and millisecond, which is
InfluxDB's rule (same measurement + tag set + timestamp = one point): a replayed batch must not
show up twice here either.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from hub.broker import free_port


class VictoriaError(RuntimeError):
    """The test server could not be started or queried."""


@dataclass(frozen=True, slots=True)
class Series:
    """One exported series: ``name`` is ``<measurement>_<field>``, ``labels`` the tags."""

    name: str
    labels: dict[str, str]
    samples: dict[int, float]  # timestamp in ms -> value


@dataclass
class VictoriaMetrics:
    directory: Path
    port: int = field(default_factory=free_port)
    binary: str | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_file(self) -> Path:
        return self.directory / "victoria-metrics.log"

    def start(self, timeout_s: float = 15.0) -> None:
        found = self.binary or shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
        if not Path(found).exists():
            raise VictoriaError(
                "victoria-metrics is not installed: apt-get install victoria-metrics"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        logf = self.log_file.open("ab")
        try:
            self.proc = subprocess.Popen(
                [
                    found,
                    f"-httpListenAddr=127.0.0.1:{self.port}",
                    f"-storageDataPath={self.data_dir}",
                    "-retentionPeriod=100y",
                    "-dedup.minScrapeInterval=1ms",
                    "-search.latencyOffset=0s",
                    "-loggerLevel=ERROR",
                ],
                stdout=logf,
                stderr=logf,
                stdin=subprocess.DEVNULL,
            )
        finally:
            logf.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise VictoriaError(f"victoria-metrics exited with {code}: {self.log_tail()}")
            if self._healthy():
                return
            time.sleep(0.05)
        self.stop()
        raise VictoriaError(f"victoria-metrics did not answer in {timeout_s}s: {self.log_tail()}")

    def stop(self) -> None:
        """Graceful stop (SIGTERM): flushes what it accepted to disk, as a restart would."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        self._wait_port_closed()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as resp:  # noqa: S310
                return bool(resp.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def _wait_port_closed(self, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
            except OSError:
                return
            time.sleep(0.02)

    def _get(self, path: str, params: dict[str, str] | None = None) -> bytes:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            url = f"{self.url}{path}{query}"  # always http://127.0.0.1
            with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310
                body: bytes = resp.read()
                return body
        except (OSError, urllib.error.URLError) as err:
            raise VictoriaError(f"GET {path} failed: {err}") from err

    def flush(self) -> None:
        """Make recently written samples searchable now instead of about a second later."""
        self._get("/internal/force_flush")

    def export(self, match: str = '{__name__=~".+"}') -> list[Series]:
        """Every sample of every series matching ``match`` (a PromQL series selector)."""
        self.flush()
        body = self._get("/api/v1/export", {"match[]": match})
        # One series may come back as several lines (one per stored block): merge them.
        merged: dict[tuple[str, tuple[tuple[str, str], ...]], Series] = {}
        for line in body.decode("utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            labels = dict(item["metric"])
            name = labels.pop("__name__")
            key = (name, tuple(sorted(labels.items())))
            series = merged.setdefault(key, Series(name, labels, {}))
            series.samples.update(zip(item["timestamps"], item["values"], strict=True))
        return list(merged.values())

    def sample_count(self, match: str = '{__name__=~".+"}') -> int:
        return sum(len(s.samples) for s in self.export(match))

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
