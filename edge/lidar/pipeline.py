"""The pure processing chain of one scanner: scan -> foreground -> site points -> clusters ->
tracks -> zone intrusions and line crossings. No I/O and no clock: time comes with each scan,
so tests replay hours of scans in seconds."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from edge.lidar.background import BackgroundModel, BackgroundParams
from edge.lidar.clustering import Cluster, ClusterParams, cluster_points
from edge.lidar.config import LidarConfig
from edge.lidar.geometry import Mount
from edge.lidar.scan import Scan
from edge.lidar.tracking import Track, Tracker, TrackerParams
from edge.lidar.zones import Crossing, Intrusion, LineRule, ZoneRule
from edge.tracking import TrackIds


@dataclass(frozen=True, slots=True)
class ScanResult:
    t_s: float
    foreground_points: int
    clusters: list[Cluster]
    tracks: list[Track]
    intrusions: list[Intrusion]
    crossings: list[Crossing]


def build_rules(config: LidarConfig) -> tuple[list[ZoneRule], list[LineRule]]:
    zones = [ZoneRule(z.id, [(p.x_m, p.y_m) for p in z.polygon], z.min_dwell_s)
             for z in config.zones]
    lines = [LineRule(ln.id, (ln.a.x_m, ln.a.y_m), (ln.b.x_m, ln.b.y_m), ln.hysteresis_m,
                      ln.in_name, ln.out_name) for ln in config.lines]
    return zones, lines


class PerimeterPipeline:
    def __init__(self, config: LidarConfig, *, track_id_prefix: str | None = None,
                 track_ids: TrackIds | None = None) -> None:
        b, c, t = config.background, config.clustering, config.tracking
        self.mount = Mount(config.mount.x_m, config.mount.y_m, config.mount.yaw_deg,
                           config.mount.clockwise)
        self.background = BackgroundModel(BackgroundParams(
            b.learn_s, b.bin_deg, b.margin_m, b.update_rate, b.absorb_after_s, b.reveal_after_s))
        self.cluster_params = ClusterParams(c.join_m, c.merge_m, c.min_points, c.max_extent_m)
        self.tracker = Tracker(TrackerParams(t.gate_m, t.confirm_hits, t.max_missed_s,
                                             t.max_speed_mps), id_prefix=track_id_prefix,
                               ids=track_ids)
        self.zones, self.lines = build_rules(config)
        self.scans = 0
        self.samples = 0
        self.events: Counter[str] = Counter()

    def process(self, scan: Scan) -> ScanResult:
        self.scans += 1
        self.samples += len(scan)
        mask = self.background.foreground(scan)
        clusters: list[Cluster] = []
        if np.any(mask):
            order = np.argsort(scan.angles_deg[mask], kind="stable")
            xs, ys = self.mount.to_site(scan.angles_deg[mask][order], scan.ranges_m[mask][order])
            clusters = cluster_points(xs, ys, self.cluster_params)
        tracks = self.tracker.update(clusters, scan.t_s)
        intrusions = [e for z in self.zones for e in z.update(tracks, scan.t_s)]
        crossings = [e for ln in self.lines for e in ln.update(tracks, scan.t_s)]
        self.events["intrusions"] += len(intrusions)
        self.events["crossings"] += len(crossings)
        return ScanResult(scan.t_s, int(np.sum(mask)), clusters, tracks, intrusions, crossings)

    def replace_rules(self, zones: list[ZoneRule], lines: list[LineRule]) -> None:
        """Swap in pushed zones and lines between two scans (the caller serialises this with
        :meth:`process`). Background, clusters and tracks are untouched; rule state carries
        over by id (see :meth:`ZoneRule.carry_over`, :meth:`LineRule.carry_over`)."""
        old_zones = {z.id: z for z in self.zones}
        old_lines = {ln.id: ln for ln in self.lines}
        for zone in zones:
            if zone.id in old_zones:
                zone.carry_over(old_zones[zone.id])
        for line in lines:
            if line.id in old_lines:
                line.carry_over(old_lines[line.id])
        self.zones, self.lines = zones, lines

    def line_counts(self) -> dict[str, int]:
        """``<line>.<direction>`` -> crossings since start."""
        return {f"{ln.id}.{name}": ln.counts[name]
                for ln in self.lines for name in (ln.in_name, ln.out_name)}
