"""LiDAR agent throughput: samples per second decoded, and decoded + processed (background,
clustering, tracking, zones, lines), against each scanner's native sample rate.

Run: .venv/bin/python bench/lidar.py [--seconds 20]

The byte streams are rendered first (not timed) by the device simulator from a walled yard
with three people walking, in the real LD06 and RPLIDAR A1 formats. Figures printed:
- decode: driver only (framing, CRC / check bits, angle interpolation)
- full: decode + revolution assembly + the whole perimeter pipeline
- headroom: full rate / native rate (how many such scanners one core could follow)
- baseline: a plain per-byte Python loop over the same bytes in this run; the ratios against it
  make figures comparable on a noisy or different machine.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bridges.lidar.drivers import MODELS, driver_for
from edge.lidar.config import LidarConfig
from edge.lidar.pipeline import PerimeterPipeline
from edge.lidar.scan import ScanAssembler
from edge.lidar.scene import SceneConfig
from edge.lidar.simulator import ScannerStream


def pt(x: float, y: float) -> dict[str, float]:
    return {"x_m": x, "y_m": y}


WALLS = [((-6, -5), (8, -5)), ((8, -5), (8, 5)), ((8, 5), (-6, 5)), ((-6, 5), (-6, -5))]


def scene(model: str, seconds: float) -> SceneConfig:
    walkers: list[dict[str, Any]] = [
        {"name": f"w{i}", "waypoints": [{"t_s": 0, **pt(-4 + i, -3 + i)},
                                        {"t_s": seconds / 2, **pt(6 - i, 3 - i)},
                                        {"t_s": seconds, **pt(-4 + i, -3 + i)}]}
        for i in range(3)
    ]
    return SceneConfig.model_validate({
        "model": model, "walls": [{"a": pt(*a), "b": pt(*b)} for a, b in WALLS],
        "walkers": walkers,
    })


def config(model: str) -> LidarConfig:
    return LidarConfig.model_validate({
        "site": "bench", "device": "lidar", "site_origin": {"lon": 114.057, "lat": 22.543},
        "scanner": {"model": model}, "background": {"learn_s": 2.0},
        "zones": [{"id": "z", "polygon": [pt(3, 1), pt(6, 1), pt(6, 4), pt(3, 4)]}],
        "lines": [{"id": "l", "a": pt(-2, -4), "b": pt(-2, 4)}],
    })


def render(model: str, seconds: float) -> list[tuple[float, bytes]]:
    stream = ScannerStream(scene(model, seconds))
    driver = driver_for(model)
    head = stream.host_bytes(driver.start_bytes())
    chunks = list(stream.chunks(seconds))
    return [(0.0, head), *chunks]


def best_of(runs: int, fn: Any) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench(model: str, seconds: float) -> dict[str, float]:
    chunks = render(model, seconds)
    n_bytes = sum(len(c) for _, c in chunks)
    cfg = config(model)
    samples = 0

    def decode_only() -> None:
        nonlocal samples
        driver = driver_for(model)
        samples = sum(len(driver.decode(c)) for _, c in chunks)

    def full() -> None:
        driver = driver_for(model)
        asm = ScanAssembler(*cfg.range_m)
        pipe = PerimeterPipeline(cfg)
        for t, c in chunks:
            for scan in asm.feed(driver.decode(c), t):
                pipe.process(scan)

    def baseline() -> None:
        acc = 0
        for _, c in chunks:
            for byte in c:
                acc ^= byte
        assert acc >= 0

    t_decode = best_of(3, decode_only)
    t_full = best_of(3, full)
    t_base = best_of(3, baseline)
    native = MODELS[model].sample_rate_hz
    return {
        "samples": samples, "bytes": n_bytes,
        "decode_sps": samples / t_decode, "full_sps": samples / t_full,
        "baseline_bytes_per_s": n_bytes / t_base, "native_sps": native,
        "headroom": samples / t_full / native,
        "cpu_share_at_native": native / (samples / t_full),
        "decode_vs_baseline": (n_bytes / t_decode) / (n_bytes / t_base),
        "full_vs_baseline": (n_bytes / t_full) / (n_bytes / t_base),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="seconds of scanner output to render per model")
    args = parser.parse_args()
    print(f"lidar bench: {args.seconds:.0f} s of scanner output per model, best of 3")
    for model in ("ld06", "rplidar_a1"):
        r = bench(model, args.seconds)
        print(
            f"{model:>10}: {r['samples']:.0f} samples ({r['bytes']:.0f} bytes)\n"
            f"            decode      {r['decode_sps']:>10,.0f} samples/s\n"
            f"            full        {r['full_sps']:>10,.0f} samples/s  "
            f"(native {r['native_sps']:,.0f}/s: headroom x{r['headroom']:.1f}, "
            f"{100 * r['cpu_share_at_native']:.1f}% of one core at native rate)\n"
            f"            baseline    {r['baseline_bytes_per_s']:>10,.0f} bytes/s (per-byte "
            f"Python loop)\n"
            f"            ratio vs baseline (bytes/s): decode {r['decode_vs_baseline']:.2f}, "
            f"full {r['full_vs_baseline']:.2f}"
        )


if __name__ == "__main__":
    main()
