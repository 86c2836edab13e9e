"""Background model: the range of the static scene per angular bin, learned at start and then
updated slowly. A return clearly nearer than the background is foreground.

Per scan each bin keeps its *nearest* return, and the foreground test compares against the
nearest background of the bin and its two neighbours: the scanner's sample angles drift from
turn to turn, and a wall seen at a grazing angle changes range quickly within one bin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.lidar.geometry import FloatArray
from edge.lidar.scan import Scan


@dataclass(frozen=True, slots=True)
class BackgroundParams:
    learn_s: float = 5.0
    bin_deg: float = 0.5
    margin_m: float = 0.3
    update_rate: float = 0.01
    absorb_after_s: float = 600.0
    reveal_after_s: float = 2.0


class BackgroundModel:
    def __init__(self, params: BackgroundParams) -> None:
        self.p = params
        self.n_bins = max(1, round(360.0 / params.bin_deg))
        self._learning: list[FloatArray] = []
        self._sampled = np.zeros(self.n_bins, dtype=np.int64)
        self._learn_until: float | None = None
        self.range_m: FloatArray | None = None  # inf: nothing static in that direction
        self._fg_since = np.full(self.n_bins, np.nan)
        self._far_since = np.full(self.n_bins, np.nan)
        self.absorbed_bins = 0
        self.revealed_bins = 0

    @property
    def ready(self) -> bool:
        return self.range_m is not None

    def bins_of(self, angles_deg: FloatArray) -> npt.NDArray[np.intp]:
        idx: npt.NDArray[np.intp] = (
            np.floor(np.mod(angles_deg, 360.0) / self.p.bin_deg).astype(np.intp) % self.n_bins
        )
        return idx

    def bin_minimum(self, scan: Scan) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        """Nearest valid return per bin in this scan (NaN where none), and which bins were
        sampled at all (a scanner coarser than the bins leaves some bins unsampled)."""
        out = np.full(self.n_bins, np.inf)
        bins = self.bins_of(scan.angles_deg)
        valid = ~np.isnan(scan.ranges_m)
        np.minimum.at(out, bins[valid], scan.ranges_m[valid])
        out[np.isinf(out)] = np.nan
        sampled = np.zeros(self.n_bins, dtype=np.bool_)
        sampled[bins] = True
        return out, sampled

    def foreground(self, scan: Scan) -> npt.NDArray[np.bool_]:
        """Learn or update with ``scan``; return the mask of its foreground samples (all False
        while still learning)."""
        per_bin, sampled = self.bin_minimum(scan)
        if self.range_m is None:
            self._learn(scan.t_s, per_bin, sampled)
            return np.zeros(len(scan), dtype=np.bool_)
        bg = self.range_m
        near = np.minimum(np.minimum(bg, np.roll(bg, 1)), np.roll(bg, -1))
        bins = self.bins_of(scan.angles_deg)
        with np.errstate(invalid="ignore"):
            mask: npt.NDArray[np.bool_] = scan.ranges_m < near[bins] - self.p.margin_m
        self._update(scan.t_s, per_bin)
        return mask

    def _learn(self, t_s: float, per_bin: FloatArray, sampled: npt.NDArray[np.bool_]) -> None:
        if self._learn_until is None:
            self._learn_until = t_s + self.p.learn_s
        self._learning.append(per_bin)
        self._sampled += sampled
        if t_s < self._learn_until:
            return
        stack = np.vstack(self._learning)
        seen = np.sum(~np.isnan(stack), axis=0)
        bg = np.full(self.n_bins, np.inf)
        # A bin that returned in at most half the scans that sampled it is open space.
        steady = (seen > self._sampled / 2) & (seen > 0)
        if np.any(steady):
            bg[steady] = np.nanmedian(stack[:, steady], axis=0)
        self.range_m = bg
        self._learning.clear()

    def _update(self, t_s: float, obs: FloatArray) -> None:
        bg = self.range_m
        assert bg is not None  # noqa: S101  (only called once learned)
        has = ~np.isnan(obs)
        margin = self.p.margin_m
        with np.errstate(invalid="ignore"):
            match = has & (np.abs(obs - bg) <= margin)
            nearer = has & (obs < bg - margin)
            farther = has & (obs > bg + margin)
        bg[match] += self.p.update_rate * (obs[match] - bg[match])
        for since, hit, after, counter in (
            (self._fg_since, nearer, self.p.absorb_after_s, "absorbed_bins"),
            (self._far_since, farther, self.p.reveal_after_s, "revealed_bins"),
        ):
            since[~hit] = np.nan
            start = hit & np.isnan(since)
            since[start] = t_s
            with np.errstate(invalid="ignore"):
                due = hit & (t_s - since >= after)
            if np.any(due):
                bg[due] = obs[due]
                since[due] = np.nan
                setattr(self, counter, getattr(self, counter) + int(np.sum(due)))

    def static_points(self) -> int:
        return 0 if self.range_m is None else int(np.sum(np.isfinite(self.range_m)))

