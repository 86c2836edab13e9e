"""The face stage shared by the agents that match faces (camera, glasses): find faces, tie each
to a track, embed, search the watchlist gallery, and let the per-track matcher decide; and the
face_match alert both agents raise from a decision (:func:`face_match_alert`).

Two ways in, one code path after the detector:

- :meth:`FaceStage.process` (the camera): the frame's person tracks come from the person
  detector; faces are searched in the upper part of each person box (or the whole frame) and
  each face belongs to the person track that contains it;
- :meth:`FaceStage.process_frame` (the glasses, which have no person detector): faces are
  searched in the whole frame and tracked across frames by their own boxes
  (:class:`~edge.vision.tracker.Tracker` with label ``face``), so k-of-n votes still count
  frames of one face.

What stays in memory, and for how long: a face's pixels and embedding exist only inside one
call for the frame that produced them; nothing here keeps a list, a cache or a debug dump of
them. Only a declared match leaves the stage, with a small crop of the matched face
(:func:`encode_face_crop`). The matcher itself holds entry ids and scores.

Without an active watchlist (no bundle, or one whose entries have all expired) the stage does
not even run the face detector: there is nothing a face could be compared with.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.alert_details import FaceMatchDetails, build_alert
from edge.faces.matcher import (
    FaceMatcher,
    MatchDecision,
    ScoredEntry,
    effective_threshold,
)
from edge.faces.stage_config import FaceCropConfig, FaceStageConfig
from edge.faces.types import BgrImage, FaceBackend, FaceBox
from edge.protocol import Alert, Evidence, Location, ProtocolError, Severity
from edge.tracking import track_entity
from edge.validators import utcnow
from edge.vision.boxes import Box, Detection, area, center, iou
from edge.vision.snapshot import (
    Snapshot,
    SnapshotConfig,
    SnapshotError,
    encode_jpeg,
    render_snapshot,
)
from edge.vision.tracker import Tracker

log = logging.getLogger(__name__)


class TrackView(Protocol):
    """What the stage needs of a track (a person track on the camera, a face track on the
    glasses): its id and its box in this frame."""

    @property
    def id(self) -> str: ...

    @property
    def box(self) -> Box: ...


class GalleryView(Protocol):
    """What the stage needs of ``edge.faces.gallery.Gallery``."""

    @property
    def version(self) -> int: ...

    @property
    def size(self) -> int: ...

    def is_expired(self, now: datetime) -> bool: ...

    def search(self, embeddings: NDArray[np.float32], k: int, now: datetime
               ) -> Sequence[Sequence[ScoredEntry]]: ...


@dataclass(frozen=True, slots=True)
class FaceMatchEvent:
    """A declared match, with what the alert needs: the crop, the boxes, the bundle version."""

    decision: MatchDecision
    bundle_version: int
    face: FaceBox
    track_box: Box
    crop: Snapshot | None  # None when the face could not be cropped within its byte limit
    # the other faces found in this frame: the evidence snapshot blurs them
    other_faces: tuple[FaceBox, ...]


def face_rect(face: FaceBox) -> Box:
    return (face.x, face.y, face.x + face.w, face.y + face.h)


def encode_face_crop(image: BgrImage, face: FaceBox, config: FaceCropConfig) -> Snapshot:
    """The padded, square crop of ``face`` as the alert carries it (bounded in bytes)."""
    side = max(face.w, face.h) * (1.0 + 2.0 * config.pad_rel)
    cx, cy = face.x + face.w / 2.0, face.y + face.h / 2.0
    h, w = image.shape[:2]
    x1, y1 = max(0, int(cx - side / 2.0)), max(0, int(cy - side / 2.0))
    x2, y2 = min(w, int(cx + side / 2.0) + 1), min(h, int(cy + side / 2.0) + 1)
    if x2 <= x1 or y2 <= y1:
        raise ValueError("face box lies outside the frame")
    region = image[y1:y2, x1:x2]
    scale = config.size_px / max(region.shape[0], region.shape[1])
    size = (max(1, round(region.shape[1] * scale)), max(1, round(region.shape[0] * scale)))
    resized = np.asarray(cv2.resize(region, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    return encode_jpeg(resized, SnapshotConfig(max_bytes=config.max_bytes,
                                               max_width_px=config.size_px,
                                               quality=config.quality,
                                               min_quality=min(30, config.quality)))


def blur_faces(image: BgrImage, faces: Sequence[FaceBox]) -> BgrImage:
    """A copy of ``image`` with each face box pixelated beyond recognition."""
    out = image.copy()
    h, w = out.shape[:2]
    for face in faces:
        x1, y1 = max(0, int(face.x)), max(0, int(face.y))
        x2, y2 = min(w, int(face.x + face.w) + 1), min(h, int(face.y + face.h) + 1)
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        tiny = cv2.resize(out[y1:y2, x1:x2], (4, 4), interpolation=cv2.INTER_AREA)
        out[y1:y2, x1:x2] = cv2.resize(tiny, (x2 - x1, y2 - y1),
                                       interpolation=cv2.INTER_NEAREST)
    return out


def _offset(face: FaceBox, dx: float, dy: float) -> FaceBox:
    return replace(face, x=face.x + dx, y=face.y + dy,
                   landmarks=tuple((px + dx, py + dy) for px, py in face.landmarks))


def _contains(box: Box, point: tuple[float, float]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


@dataclass(frozen=True, slots=True)
class _FaceTrack:
    id: str
    box: Box


def _on_faces(tracks: Sequence[TrackView], faces: Sequence[FaceBox]) -> list[_FaceTrack]:
    """Each face track with the box of the face it was updated with this frame (the nearest
    face centre, one face per track): the tracker's filtered box lags a fast face and may
    no longer hold its centre."""
    free = [face_rect(f) for f in faces]
    placed: list[_FaceTrack] = []
    for track in tracks:
        if not free:
            break
        cx, cy = center(track.box)
        nearest = min(free, key=lambda b: (center(b)[0] - cx) ** 2 + (center(b)[1] - cy) ** 2)
        free.remove(nearest)
        placed.append(_FaceTrack(track.id, nearest))
    return placed


class FaceStage:
    """One agent's face matching; its frame loop owns it (not thread-safe). ``face_tracker``
    is needed only for :meth:`process_frame`."""

    def __init__(self, config: FaceStageConfig, backend: FaceBackend,
                 galleries: Callable[[], GalleryView], *,
                 face_tracker: Tracker | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 perf: Callable[[], float] = time.perf_counter,
                 wall: Callable[[], datetime] = utcnow) -> None:
        threshold = effective_threshold(config.matcher, default=backend.default_threshold,
                                        floor=backend.floor, backend=backend.name)
        self.config = config
        self.backend = backend
        self.matcher = FaceMatcher(config.matcher, threshold=threshold, clock=clock)
        self._galleries = galleries
        self.face_tracker = face_tracker
        self._perf = perf
        self._wall = wall
        self.active = False
        self.bundle_version = 0
        self.entries = 0
        self.inference_ms_avg = 0.0
        self.counters = {"face_runs": 0, "faces_detected": 0, "faces_embedded": 0,
                         "faces_unassigned": 0, "faces_too_small": 0, "faces_over_limit": 0,
                         "face_crop_failed": 0}
        self._frames_with_tracks = 0

    @property
    def threshold(self) -> float:
        return self.matcher.threshold

    def metrics(self) -> dict[str, float]:
        return {"faces_active": 1.0 if self.active else 0.0,
                "faces_inference_ms": round(self.inference_ms_avg, 2),
                "face_matches": float(self.matcher.matches),
                "face_matches_suppressed": float(self.matcher.suppressed),
                **{k: float(v) for k, v in self.counters.items()}}

    def _watch_gallery(self) -> GalleryView | None:
        gallery = self._galleries()
        active = gallery.size > 0 and not gallery.is_expired(self._wall())
        if gallery.version != self.bundle_version:
            # votes were cast against the old entries; a revoked entry must not complete a match
            self.matcher.reset()
        if active != self.active or gallery.version != self.bundle_version:
            if active:
                log.info("face matching active: watchlist bundle v%d, %d entries, threshold %g",
                         gallery.version, gallery.size, self.threshold)
            else:
                log.info("face matching idle: no watchlist entries in force (bundle v%d); "
                         "the face detector does not run", gallery.version)
        self.active, self.bundle_version, self.entries = active, gallery.version, gallery.size
        return gallery if active else None

    def process(self, image: BgrImage, tracks: Sequence[TrackView],
                live_track_ids: Collection[str]) -> list[FaceMatchEvent]:
        """One frame: ``tracks`` are the person tracks seen in it, ``live_track_ids`` every
        track the tracker still holds (the matcher forgets the others)."""
        self.matcher.retain(live_track_ids)
        gallery = self._watch_gallery()
        if gallery is None or not tracks:
            return []
        t0 = self._turn()
        if t0 is None:
            return []
        faces = self._detect(image, tracks)
        return self._match(image, gallery, tracks, faces, t0)

    def process_frame(self, image: BgrImage, ts: float) -> list[FaceMatchEvent]:
        """One frame of an agent without a person detector: faces in the whole frame, tracked
        by their own boxes (``ts`` in seconds, for the tracker)."""
        if self.face_tracker is None:
            raise RuntimeError("process_frame needs the stage built with a face_tracker")
        gallery = self._watch_gallery()
        if gallery is None:
            self.matcher.retain(())
            return []
        t0 = self._turn()
        if t0 is None:
            return []
        faces = self.backend.detector.detect(image)
        # too small to match is too small to track: such a face is only blurred as a bystander
        tracks = self.face_tracker.update(
            [Detection(face_rect(f), f.score, "face") for f in faces
             if min(f.w, f.h) >= self.config.min_face_px], ts)
        self.matcher.retain({t.id for t in self.face_tracker.tracks})
        return self._match(image, gallery, _on_faces(tracks, faces), faces, t0)

    def _turn(self) -> float | None:
        """Whether the detector runs on this frame (every ``detect_every_n_frames``-th of the
        frames that could have faces): the run's start time, else None."""
        self._frames_with_tracks += 1
        if (self._frames_with_tracks - 1) % self.config.detect_every_n_frames:
            return None
        self.counters["face_runs"] += 1
        return self._perf()

    def _match(self, image: BgrImage, gallery: GalleryView, tracks: Sequence[TrackView],
               faces: list[FaceBox], t0: float) -> list[FaceMatchEvent]:
        assigned, others = self._faces_of_tracks(faces, tracks)
        if not assigned:
            self._timed(t0)
            return []
        embeddings = np.stack([self.backend.embedder.embed(image, face)
                               for _, face in assigned]).astype(np.float32, copy=False)
        self.counters["faces_embedded"] += len(assigned)
        results = gallery.search(embeddings, self.config.candidates_per_face, self._wall())
        del embeddings  # the only copy: nothing of a face outlives its frame
        self._timed(t0)
        events = []
        for (track, face), candidates in zip(assigned, results, strict=True):
            decision = self.matcher.observe(track.id, candidates)
            if decision is None:
                continue
            crop = None
            try:
                crop = encode_face_crop(image, face, self.config.crop)
            except (SnapshotError, ValueError) as err:
                # the match still counts: reviewers get the frame snapshot without the crop
                self.counters["face_crop_failed"] += 1
                log.warning("face match on track %s without a face crop: %s", track.id, err)
            events.append(FaceMatchEvent(
                decision, gallery.version, face, track.box, crop,
                tuple(f for _, f in assigned if f is not face) + others))
        return events

    def _timed(self, t0: float) -> None:
        elapsed_ms = (self._perf() - t0) * 1000.0
        self.inference_ms_avg += (elapsed_ms - self.inference_ms_avg) * 0.1

    def _detect(self, image: BgrImage, tracks: Sequence[TrackView]) -> list[FaceBox]:
        if self.config.search_region == "frame":
            return self.backend.detector.detect(image)
        h, w = image.shape[:2]
        found: list[FaceBox] = []
        # the largest people first: with many in view, the nearest faces are worth the most
        for track in sorted(tracks, key=lambda t: area(t.box), reverse=True
                            )[:self.config.max_faces_per_frame]:
            bx1, by1, bx2, by2 = track.box
            margin = 0.1 * (bx2 - bx1)
            x1, y1 = max(0, int(bx1 - margin)), max(0, int(by1 - margin))
            x2 = min(w, int(bx2 + margin) + 1)
            y2 = min(h, int(by1 + self.config.upper_fraction * (by2 - by1)) + 1)
            if x2 - x1 < self.config.min_face_px or y2 - y1 < self.config.min_face_px:
                continue
            region = np.ascontiguousarray(image[y1:y2, x1:x2])
            for face in self.backend.detector.detect(region):
                moved = _offset(face, x1, y1)
                # overlapping people: the same face is found in both regions once
                if all(iou(face_rect(moved), face_rect(f)) < 0.5 for f in found):
                    found.append(moved)
        return found

    def _faces_of_tracks(self, faces: list[FaceBox], tracks: Sequence[TrackView]
                         ) -> tuple[list[tuple[TrackView, FaceBox]], tuple[FaceBox, ...]]:
        """(track, face) pairs to embed, at most one face per track, and every other face
        found (only for blurring the evidence)."""
        self.counters["faces_detected"] += len(faces)
        best: dict[str, tuple[TrackView, FaceBox]] = {}
        others: list[FaceBox] = []
        for face in faces:
            if min(face.w, face.h) < self.config.min_face_px:
                self.counters["faces_too_small"] += 1
                others.append(face)
                continue
            centre = (face.x + face.w / 2.0, face.y + face.h / 2.0)
            holders = [t for t in tracks if _contains(t.box, centre)]
            if not holders:
                self.counters["faces_unassigned"] += 1
                others.append(face)
                continue
            # the tightest person box holding the face is its owner (a person behind another)
            track = min(holders, key=lambda t: area(t.box))
            held = best.get(track.id)
            if held is None or face.area > held[1].area:
                if held is not None:
                    others.append(held[1])
                best[track.id] = (track, face)
            else:
                others.append(face)
        pairs = sorted(best.values(), key=lambda p: p[1].area, reverse=True)
        limit = self.config.max_faces_per_frame
        if len(pairs) > limit:
            self.counters["faces_over_limit"] += len(pairs) - limit
            others.extend(f for _, f in pairs[limit:])
            pairs = pairs[:limit]
        return pairs, tuple(others)


def face_match_alert(match: FaceMatchEvent, image: BgrImage, *, site: str, device: str,
                     backend: str, snapshot: SnapshotConfig,
                     boxes: Sequence[tuple[Box, str]], highlight: int | None,
                     location: Location | None, failures: Counter[str]) -> Alert:
    """The face_match alert of a declared match, as every matching agent raises it: the
    decision's details, a frame snapshot with every other face blurred, the matched face's crop.
    A snapshot or crop that cannot be encoded is left out and counted in ``failures``
    (``snapshot_failed``, ``face_crop_failed``): the match itself is never dropped for it."""
    decision = match.decision
    evidence: Evidence | None = None
    face_crop: Evidence | None = None
    try:
        # bystanders' faces are blurred: only the matched person is shown to reviewers
        evidence = render_snapshot(blur_faces(image, match.other_faces), boxes, snapshot,
                                   highlight).evidence()
    except (SnapshotError, ProtocolError) as err:
        failures["snapshot_failed"] += 1
        log.warning("face match alert without snapshot: %s", err)
    if match.crop is not None:
        try:
            face_crop = match.crop.evidence()
        except ProtocolError as err:
            failures["face_crop_failed"] += 1
            log.warning("face match alert without face crop: %s", err)
    details = FaceMatchDetails(
        entry_id=decision.entry_id, score=round(min(1.0, max(0.0, decision.score)), 4),
        track_id=decision.track_id, bundle_version=match.bundle_version,
        threshold=decision.threshold, frames_matched=decision.frames_matched,
        frames_seen=decision.frames_seen, backend=backend)
    log.info("face match: entry %s, track %s, score %.3f (%d of %d frames)",
             decision.entry_id, decision.track_id, decision.score,
             decision.frames_matched, decision.frames_seen)
    return build_alert(details, site=site, device=device, severity=Severity.HIGH,
                       title="watchlist face match", location=location,
                       entity=track_entity(device, decision.track_id),
                       evidence=evidence, face_crop=face_crop)
