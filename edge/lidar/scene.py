"""A scene for the scanner simulator: static walls and people walking scripted paths, in site
metres, and the ray casting that turns it into the ranges a scanner at its mount would read."""

from __future__ import annotations

import itertools
import math
from typing import Annotated

import numpy as np
from pydantic import Field, model_validator

from edge.config import StrictModel
from edge.lidar.config import MountPose, ScannerKey, SitePoint
from edge.lidar.geometry import FloatArray, Mount


class Wall(StrictModel):
    a: SitePoint
    b: SitePoint


class Waypoint(StrictModel):
    t_s: Annotated[float, Field(ge=0)]
    x_m: float
    y_m: float


class Walker(StrictModel):
    """A person (a circle seen from above) present from the first waypoint's time to the
    last one's, moving in straight lines between waypoints."""

    name: Annotated[str, Field(max_length=64)] = "walker"
    radius_m: Annotated[float, Field(gt=0.05, le=1.0)] = 0.22
    waypoints: list[Waypoint] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> Walker:
        times = [w.t_s for w in self.waypoints]
        if times != sorted(times):
            raise ValueError(f"walker {self.name}: waypoint times must not decrease")
        return self

    def position(self, t_s: float) -> tuple[float, float] | None:
        pts = self.waypoints
        if t_s < pts[0].t_s or t_s > pts[-1].t_s:
            return None
        for p, q in itertools.pairwise(pts):
            if p.t_s <= t_s <= q.t_s:
                f = 0.0 if q.t_s == p.t_s else (t_s - p.t_s) / (q.t_s - p.t_s)
                return p.x_m + (q.x_m - p.x_m) * f, p.y_m + (q.y_m - p.y_m) * f
        return pts[-1].x_m, pts[-1].y_m


class FaultConfig(StrictModel):
    corrupt_rate: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.0, description="fraction of frames (LD06) or nodes (RPLIDAR) with one byte "
                                 "flipped")
    garbage_rate: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.0, description="chance per frame/node of a burst of random bytes before it")
    garbage_max_bytes: Annotated[int, Field(ge=1, le=4096)] = 64


class SceneConfig(StrictModel):
    model: ScannerKey = "ld06"
    mount: MountPose = Field(default_factory=MountPose)
    walls: list[Wall] = Field(default_factory=list)
    walkers: list[Walker] = Field(default_factory=list)
    loop_s: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="repeat the walkers' scripts with this period")
    noise_m: Annotated[float, Field(ge=0, le=1)] = 0.01
    max_range_m: Annotated[float, Field(gt=0, le=100)] | None = None
    seed: int = 1
    faults: FaultConfig = Field(default_factory=FaultConfig)


class SceneRenderer:
    def __init__(self, scene: SceneConfig, max_range_m: float) -> None:
        self.scene = scene
        self.max_range_m = max_range_m
        m = scene.mount
        self.mount = Mount(m.x_m, m.y_m, m.yaw_deg, m.clockwise)
        self._rng = np.random.default_rng(scene.seed)
        walls = scene.walls
        self._wa = np.array([[w.a.x_m, w.a.y_m] for w in walls]).reshape(-1, 2)
        self._we = np.array([[w.b.x_m - w.a.x_m, w.b.y_m - w.a.y_m] for w in walls]).reshape(-1, 2)

    def scene_time(self, t_s: float) -> float:
        loop = self.scene.loop_s
        return math.fmod(t_s, loop) if loop else t_s

    def walkers_at(self, t_s: float) -> list[tuple[float, float, float]]:
        st = self.scene_time(t_s)
        out = []
        for w in self.scene.walkers:
            pos = w.position(st)
            if pos is not None:
                out.append((pos[0], pos[1], w.radius_m))
        return out

    def ranges(self, t_s: float, scanner_deg: FloatArray) -> FloatArray:
        """Range (m) per scanner angle at time ``t_s``; NaN where nothing is within range."""
        ox, oy = self.mount.x_m, self.mount.y_m
        bearing = self.mount.site_bearing_rad(scanner_deg)
        dx, dy = np.cos(bearing)[:, None], np.sin(bearing)[:, None]
        best = np.full(len(scanner_deg), np.inf)
        if len(self._wa):
            ax, ay = self._wa[:, 0][None, :] - ox, self._wa[:, 1][None, :] - oy
            ex, ey = self._we[:, 0][None, :], self._we[:, 1][None, :]
            denom = dx * ey - dy * ex
            with np.errstate(divide="ignore", invalid="ignore"):
                t = (ax * ey - ay * ex) / denom
                u = (ax * dy - ay * dx) / denom
            hit = (np.abs(denom) > 1e-12) & (t > 0) & (u >= 0) & (u <= 1)
            best = np.minimum(best, np.min(np.where(hit, t, np.inf), axis=1))
        for cx, cy, r in self.walkers_at(t_s):
            fx, fy = cx - ox, cy - oy
            tca = fx * dx[:, 0] + fy * dy[:, 0]
            d2 = fx * fx + fy * fy - tca * tca
            inside = d2 <= r * r
            with np.errstate(invalid="ignore"):
                t_hit = tca - np.sqrt(np.where(inside, r * r - d2, 0.0))
            best = np.where(inside & (t_hit > 0), np.minimum(best, t_hit), best)
        if self.scene.noise_m > 0:
            best = best + self._rng.normal(0.0, self.scene.noise_m, len(best))
        best[(best > self.max_range_m) | ~np.isfinite(best)] = np.nan
        return best
