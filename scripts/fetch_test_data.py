#!/usr/bin/env python3
"""Fetch the camera agent's real test data into the cache (idempotent).

The pedestrian video ``vtest.avi`` ships inside the opencv-python 4.11.0.86 source distribution
on PyPI. This script downloads that sdist once with ``pip download`` (so it goes through the
ordinary package client and its mirror settings), extracts only ``vtest.avi``, checks its
sha256 and deletes nothing else in the cache. Exit 0 when the file is already there and good.

    python scripts/fetch_test_data.py            # into $GRIDWARD_CACHE or <repo>/.cache
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SDIST = "opencv-python==4.11.0.86"
SDIST_FILE = "opencv-python-4.11.0.86.tar.gz"
MEMBER = "opencv-python-4.11.0.86/opencv/samples/data/vtest.avi"
VTEST_SHA256 = "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf"


def cache_dir() -> Path:
    return Path(os.environ.get("GRIDWARD_CACHE", str(REPO / ".cache")))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_vtest(cache: Path) -> Path:
    target = cache / "camera" / "vtest.avi"
    if target.exists() and sha256_of(target) == VTEST_SHA256:
        print(f"vtest.avi already cached: {target}")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    sdist = downloads / SDIST_FILE
    if not sdist.exists():
        print(f"downloading {SDIST} source distribution (~95 MB) with pip ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
             "opencv-python", SDIST, "-d", str(downloads)],
            check=True,
        )
    print(f"extracting {MEMBER.rsplit('/', 1)[-1]} from {sdist.name} ...", flush=True)
    with tarfile.open(sdist, "r:gz") as tar, tempfile.TemporaryDirectory(dir=cache) as tmp:
        member = tar.getmember(MEMBER)
        source = tar.extractfile(member)
        if source is None:
            raise SystemExit(f"{MEMBER} is not a regular file in {sdist}")
        staged = Path(tmp) / "vtest.avi"
        with staged.open("wb") as out:
            shutil.copyfileobj(source, out)
        got = sha256_of(staged)
        if got != VTEST_SHA256:
            raise SystemExit(f"vtest.avi sha256 {got} != expected {VTEST_SHA256}: refusing it")
        staged.replace(target)
    print(f"vtest.avi ready: {target}")
    return target


def main() -> int:
    fetch_vtest(cache_dir())
    return 0


if __name__ == "__main__":
    sys.exit(main())
