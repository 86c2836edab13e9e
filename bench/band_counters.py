"""Cost of crash-safe anti-replay counters on the wristband gateway's hot path.

    .venv/bin/python bench/band_counters.py [--adverts 20000] [--bands 200]

Adverts (valid tags, rising counters, round-robin over the bands) go through the real
:class:`~edge.wristband.tracker.WristbandTracker` (decode, HMAC check, replay verdict, RSSI
filter). The baseline is the tracker alone, measured in the same run (what the gateway did when
counters were only saved on a clean stop). Then the same adverts with the counters persisted to
the real :class:`~edge.wristband.counters.BandCounterStore` (SQLite WAL, fsync on every commit)
once per batch, for batch sizes 1 (a quiet gateway: one advert per queue batch), 50 and 500
(the service's maximum batch).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "firmware-bridges"))

from bridges.ble.advert import BandAdvert, encode_advert
from bridges.ble.sources import HeardAdvert
from edge.wristband.config import BandConfig, ReceiverConfig, WristbandConfig
from edge.wristband.counters import BandCounterStore
from edge.wristband.tracker import WristbandTracker

KEY = bytes(range(16))
COMPANY = 0xFFFF


def _config(n_bands: int, data_dir: Path) -> WristbandConfig:
    return WristbandConfig(
        site="bench", device="gw", data_dir=data_dir,
        receivers=[ReceiverConfig(id="rx", lon=114.057, lat=22.543, zone="hall")],
        bands=[BandConfig(band_id=0x1000 + i, wearer=f"w{i}") for i in range(n_bands)])


def _adverts(n: int, n_bands: int) -> list[HeardAdvert]:
    out = []
    for i in range(n):
        band = 0x1000 + i % n_bands
        frame = encode_advert(BandAdvert(band, 1 + i // n_bands, 80), KEY)
        out.append(HeardAdvert("rx", "02:00:00:00:10:01", -60, {COMPANY: frame}, i * 0.001))
    return out


def run(adverts: list[HeardAdvert], n_bands: int, batch: int | None, tmp: Path) -> float:
    """Adverts per second; ``batch=None``: no persistence (the baseline)."""
    config = _config(n_bands, tmp)
    tracker = WristbandTracker(config, {0x1000 + i: (KEY,) for i in range(n_bands)})
    store = None if batch is None else BandCounterStore(tmp / f"c-{batch}.sqlite")
    step = batch or len(adverts)
    t0 = time.perf_counter()
    for start in range(0, len(adverts), step):
        for heard in adverts[start:start + step]:
            tracker.on_advert(heard)
        if store is not None:
            store.save(tracker.verifier.counters())
    elapsed = time.perf_counter() - t0
    accepted = tracker.counters["verdict_accepted"]
    if accepted != len(adverts):
        raise SystemExit(f"only {accepted} of {len(adverts)} adverts accepted")
    if store is not None:
        store.close()
    return len(adverts) / elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--adverts", type=int, default=20_000)
    ap.add_argument("--bands", type=int, default=200)
    args = ap.parse_args()
    adverts = _adverts(args.adverts, args.bands)
    with tempfile.TemporaryDirectory() as tmp:
        base = run(adverts, args.bands, None, Path(tmp))
        print(f"tracker alone (baseline)         {base:10,.0f} adverts/s  1.000")
        for batch in (1, 50, 500):
            # batch 1 fsyncs per advert: a fifth of the adverts is plenty to measure it
            sample = adverts[: max(1000, len(adverts) // 5)] if batch == 1 else adverts
            rate = run(sample, args.bands, batch, Path(tmp))
            print(f"persisted every {batch:>3} adverts      {rate:10,.0f} adverts/s  "
                  f"{rate / base:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
