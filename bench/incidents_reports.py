"""Field report intake rate: reports accepted per second with one photo, against the same
report without a photo, and the bare photo re-encode (all measured in this run).

Run: .venv/bin/python bench/incidents_reports.py [--reports 40] [--side 1920]

Each report goes through ``FieldReportService.submit`` on a migrated SQLite store: the
idempotency lookup, the category choice, the audited transaction that opens the incident,
stores the report and its attachment. The photo is a ``--side`` x 3/4 JPEG with EXIF (GPS, a
camera model), decoded, oriented, scaled to the stored size, written again without metadata.
Printed: reports/s without a photo (the baseline), reports/s with one photo and the ratio,
re-encodes/s of the bare photo, and resends/s (a replay answered from the stored report).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from PIL import ExifTags, Image, ImageDraw

from hub.audit import AuditTrail
from hub.fieldreports.config import FieldReportsConfig
from hub.fieldreports.media import reencode_photo
from hub.fieldreports.service import FieldReportService, ReportInput
from hub.incidents.config import IncidentsConfig
from hub.incidents.service import IncidentService
from hub.store import Store


def phone_photo(side: int) -> bytes:
    width, height = side, side * 3 // 4
    img = Image.new("RGB", (width, height), (60, 110, 70))
    draw = ImageDraw.Draw(img)
    for i in range(0, width, 37):  # some texture, so the JPEG is not trivially small
        draw.line((i, 0, width - i, height), fill=(i % 255, 90, 200 - i % 200), width=3)
    exif = Image.Exif()
    exif[ExifTags.Base.Model] = "BenchPhone"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (22.0, 32.0, 35.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (114.0, 3.0, 27.0),
    }
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=90, exif=exif)
    return out.getvalue()


def rate(fn: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=40)
    parser.add_argument("--side", type=int, default=1920)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    photo = phone_photo(args.side)
    config = FieldReportsConfig()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'bench.sqlite'}")
        try:
            audit = AuditTrail(store.engine)
            vocabulary = IncidentsConfig()
            incidents = IncidentService(store.engine, audit, vocabulary)
            service = FieldReportService(
                store.engine,
                audit,
                config=config,
                vocabulary=vocabulary,
                incidents=incidents,
                site="bench",
            )
            limits = service.limits

            def report(photos: list[bytes]) -> ReportInput:
                return ReportInput(
                    description="Garbage piled up by the east gate",
                    client_report_id=str(uuid.uuid4()),
                    category="garbage",
                    lon=114.05,
                    lat=22.54,
                    photos=photos,
                )

            resent = report([photo])
            service.submit("bench-worker", resent)
            bare, with_photo, reencode, replay = [], [], [], []
            for _ in range(args.rounds):
                bare.append(rate(lambda: service.submit("bench-worker", report([])), args.reports))
                with_photo.append(
                    rate(lambda: service.submit("bench-worker", report([photo])), args.reports)
                )
                reencode.append(rate(lambda: reencode_photo(photo, limits), args.reports))
                replay.append(rate(lambda: service.submit("bench-worker", resent), args.reports))
        finally:
            store.close()
    b, p = statistics.median(bare), statistics.median(with_photo)
    r, q = statistics.median(reencode), statistics.median(replay)
    side = f"{args.side}x{args.side * 3 // 4}"
    print(
        f"photo: {side} JPEG, {len(photo)} bytes; stored at most {limits.stored_side_px} px a side"
    )
    print(f"reports/s without a photo (baseline): {b:8.1f}")
    print(f"reports/s with one photo:             {p:8.1f}   ratio {p / b:.3f} of baseline")
    print(f"bare photo re-encodes/s:              {r:8.1f}   ratio {r / b:.3f} of baseline")
    print(f"resends answered/s (idempotent):      {q:8.1f}   ratio {q / b:.3f} of baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
