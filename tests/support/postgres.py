"""A private PostgreSQL cluster for tests: ``initdb`` + ``pg_ctl`` on a free loopback port in a
temp directory, run as the ``postgres`` user when the tests run as root (initdb refuses root).
Never touches a server that may already be running on the machine."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hub.broker import free_port


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not candidates:
        raise RuntimeError(
            f"{name} not found: install PostgreSQL (the README's test command does: "
            "apt-get install postgresql)"
        )
    return str(candidates[-1])


@dataclass
class PostgresCluster:
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gw-pg-")))
    port: int = field(default_factory=free_port)
    _databases: int = 0

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    def _run(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        if os.geteuid() == 0:
            cmd = ("runuser", "-u", "postgres", "--", *cmd)
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60)

    def start(self) -> None:
        self.directory.chmod(0o755)
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            os.chown(self.directory, pg.pw_uid, pg.pw_gid)
        self._run(
            _pg_bin("initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        opts = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=100"
        )
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.data_dir),
            "-o",
            opts,
            "-w",
            "-l",
            str(self.directory / "postgres.log"),
            "start",
        )

    def stop(self) -> None:
        if self.data_dir.exists():
            with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
                self._run(
                    _pg_bin("pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"
                )
        shutil.rmtree(self.directory, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        import psycopg

        self._databases += 1
        name = f"t{self._databases}_{os.getpid()}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
