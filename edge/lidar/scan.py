"""Revolutions: samples from the driver grouped into one :class:`Scan` per turn of the head."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bridges.lidar.drivers import SampleBlock
from edge.lidar.geometry import FloatArray


@dataclass(frozen=True, slots=True)
class Scan:
    """One revolution in the scanner's frame: angles (degrees, as the scanner reports them) and
    ranges in metres (NaN: no return or outside the usable range)."""

    t_s: float
    angles_deg: FloatArray
    ranges_m: FloatArray

    def __len__(self) -> int:
        return len(self.angles_deg)


class ScanAssembler:
    """Cuts the sample stream into revolutions where the angle wraps past 360 degrees (or at an
    RPLIDAR start flag). ``max_samples`` bounds a revolution if the angle never wraps."""

    def __init__(self, min_range_m: float, max_range_m: float, max_samples: int = 20_000) -> None:
        self.min_range_m = min_range_m
        self.max_range_m = max_range_m
        self.max_samples = max_samples
        self._angles: list[float] = []
        self._dists: list[float] = []
        self._last_angle = -1.0
        self.scans = 0
        self.samples_discarded = 0

    def reset(self) -> None:
        """Drop the partial revolution (the port was reopened)."""
        self.samples_discarded += len(self._angles)
        self._angles.clear()
        self._dists.clear()
        self._last_angle = -1.0

    def feed(self, block: SampleBlock, t_s: float) -> list[Scan]:
        scans: list[Scan] = []
        angles, dists = block.angles_deg, block.distances_mm
        cuts = [i for i in range(1, len(angles)) if angles[i] < angles[i - 1] - 180.0]
        if angles and self._angles and angles[0] < self._last_angle - 180.0:
            cuts.insert(0, 0)
        cuts.extend(block.starts)
        cuts = sorted(set(cuts))
        prev = 0
        for cut in [*cuts, len(angles)]:
            self._angles.extend(angles[prev:cut])
            self._dists.extend(dists[prev:cut])
            if (cut < len(angles) and self._angles) or len(self._angles) > self.max_samples:
                scans.append(self._finish(t_s))
            prev = cut
        if angles:
            self._last_angle = angles[-1]
        return scans

    def _finish(self, t_s: float) -> Scan:
        a = np.asarray(self._angles, dtype=np.float64)
        r = np.asarray(self._dists, dtype=np.float64) / 1000.0
        r[(r < self.min_range_m) | (r > self.max_range_m) | (r <= 0)] = np.nan
        self._angles.clear()
        self._dists.clear()
        self.scans += 1
        return Scan(t_s, a, r)
