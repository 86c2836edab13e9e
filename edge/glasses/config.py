"""Configuration of the AR-glasses agent (``gridward edge glasses --config F``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from edge.config import AgentConfig, StrictModel
from edge.faces.stage_config import FacesConfig
from edge.glasses.hud import MAX_HEIGHT, MAX_WIDTH, MIN_HEIGHT, MIN_WIDTH, Mode
from edge.glasses.sinks import SinkConfig
from edge.glasses.speech import SpeechConfig
from edge.glasses.view import Language
from edge.protocol import OfficerAnswer
from edge.validators import SegmentId
from edge.vision.ingest import (
    FileSource,
    IngestConfig,
    PipelineSource,
    RtspSource,
    TestPatternSource,
    V4l2Source,
)
from edge.vision.tracker import TrackerConfig


class OfficerConfig(StrictModel):
    """Who wears the glasses: the hub user the device is bound to (PUT /officers/{username})."""

    username: SegmentId


class DisplayConfig(StrictModel):
    width_px: Annotated[int, Field(ge=MIN_WIDTH, le=MAX_WIDTH)] = 640
    height_px: Annotated[int, Field(ge=MIN_HEIGHT, le=MAX_HEIGHT)] = 400
    mode: Mode = Field(default="colour", description=(
        "mono_green: a single-colour waveguide (severity also shown by border pattern)"))
    render_interval_s: Annotated[float, Field(gt=0, le=1.0, description=(
        "longest time between two frames (the 'time since' counters tick); a change renders "
        "at once"))] = 1.0
    sink: SinkConfig = Field(description="where frames go: png, window, framebuffer, gstreamer")


class GnssPosition(StrictModel):
    """A GNSS receiver speaking NMEA 0183 on a serial port."""

    source: Literal["gnss"] = "gnss"
    port: Annotated[str, Field(min_length=1, max_length=256)]
    baudrate: Annotated[int, Field(ge=1200, le=921_600)] = 9600
    max_fix_age_s: Annotated[float, Field(gt=0, le=600, description=(
        "a fix older than this is stale: no position is published"))] = 5.0
    min_speed_mps: Annotated[float, Field(ge=0, le=10, description=(
        "below this, course over ground is noise and is not used as the heading"))] = 0.5


class PhonePosition(StrictModel):
    """The paired phone posts fixes to the local API (POST /v1/position)."""

    source: Literal["phone"] = "phone"
    max_fix_age_s: Annotated[float, Field(gt=0, le=600)] = 10.0


class NoPosition(StrictModel):
    source: Literal["none"] = "none"


class KeysInput(StrictModel):
    enabled: bool = False  # a terminal on stdin: only on a bench or a dev box


class HttpInput(StrictModel):
    enabled: bool = True
    bind: Annotated[str, Field(min_length=1, max_length=253, description=(
        "127.0.0.1: only apps on the box itself (the paired phone's tunnel) can reach it"))] = (
        "127.0.0.1")
    port: Annotated[int, Field(ge=0, le=65535)] = 8765
    token_file: Path | None = Field(default=None, description=(
        "bearer token for the local API (a 0600 file); else the variable token_env"))
    token_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] = (
        "GRIDWARD_GLASSES_API_TOKEN")  # noqa: S105 - the name of a variable, not a secret
    max_body_bytes: Annotated[int, Field(ge=64, le=65_536)] = 4096
    max_connections: Annotated[int, Field(ge=1, le=64, description=(
        "connections served at once; more are closed at once"))] = 8


class ButtonInput(StrictModel):
    """A one-button remote on a serial port: tap = acknowledge, double tap = next item."""

    port: Annotated[str, Field(min_length=1, max_length=256)]
    baudrate: Annotated[int, Field(ge=1200, le=921_600)] = 9600
    double_tap_s: Annotated[float, Field(gt=0, le=2)] = 0.4


class InputsConfig(StrictModel):
    keys: KeysInput = Field(default_factory=KeysInput)
    http: HttpInput = Field(default_factory=HttpInput)
    button: ButtonInput | None = None


class AutoAnswerConfig(StrictModel):
    """Demo only: answer every dispatch by itself, one answer every ``after_s``."""

    after_s: Annotated[float, Field(ge=0, le=3600)] = 5.0
    answers: list[OfficerAnswer] = Field(
        default_factory=lambda: [OfficerAnswer.ACKNOWLEDGE, OfficerAnswer.ON_MY_WAY,
                                 OfficerAnswer.ARRIVED], min_length=1, max_length=6)


class GlassesFacesConfig(FacesConfig):
    """The camera's ``faces:`` section, searched in the whole frame: the glasses run no person
    detector, so there is no person box to search the upper part of."""

    search_region: Literal["frame"] = "frame"


def _face_tracker() -> TrackerConfig:
    # a face seen once may already vote (k of n still needs k frames); a few missed frames at
    # the analysed rate end the track. A face is small and the wearer's head turns: between
    # two analysed frames it moves further than its own width more often than a person's
    # whole box does, hence the wider centre distance, and no "standing still" rule (which
    # would let only an overlapping box continue a new track: a face moving its own width
    # per frame would start a new track, and never gather k votes, in every frame).
    return TrackerConfig(min_hits=1, max_missed_frames=5, max_center_distance_rel=1.5,
                         still_speed_rel=0.0)


class GlassesCameraConfig(StrictModel):
    """The glasses' own camera, used only to match faces against the site's watchlist. Off
    unless the site turns it on: a camera on an officer's head is a site decision (its legal
    basis, signage and retention are the site's to settle), not a default."""

    enabled: bool = Field(description=(
        "true only where the site has decided to match faces on the glasses"))
    source: Annotated[FileSource | V4l2Source | PipelineSource | RtspSource | TestPatternSource,
                      Field(discriminator="type")] = Field(
        default_factory=V4l2Source, description=(
            "v4l2 (the glasses' camera device), pipeline (the site's own GStreamer source "
            "elements), file (a recording, for a bench)"))
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    analyse_fps: Annotated[float, Field(gt=0, le=30, description=(
        "frames per second looked at for faces (by the stream's clock); with ingest.policy "
        "latest the face worker always takes the newest frame, and frames it is too slow for "
        "are dropped and counted (dropped.camera_frame_not_taken)"))] = 5.0
    tracker: TrackerConfig = Field(default_factory=_face_tracker)
    faces: GlassesFacesConfig | None = None
    match_range_m: Annotated[float, Field(gt=0, le=100, description=(
        "how far from the officer a face the camera can match may be: a match is placed at "
        "the officer's own fresh fix, its accuracy widened by this much (no fresh fix: no "
        "location)"))] = 10.0

    @model_validator(mode="after")
    def _faces_when_on(self) -> GlassesCameraConfig:
        if self.enabled and self.faces is None:
            raise ValueError("camera.enabled needs camera.faces (backend, matcher, watchlist): "
                             "the glasses camera exists only to match faces")
        if isinstance(self.source, FileSource) and self.source.loop:
            raise ValueError("camera.source.loop: a looping recording would match the same "
                             "faces again and again; use it once")
        return self


class GlassesConfig(AgentConfig):
    officer: OfficerConfig
    language: Language = "en"
    display: DisplayConfig
    speech: SpeechConfig = Field(default_factory=SpeechConfig, description=(
        "spoken cues for new high and critical notifications (espeak-ng)"))
    position: GnssPosition | PhonePosition | NoPosition = Field(
        default_factory=NoPosition, discriminator="source")
    position_interval_s: Annotated[float, Field(gt=0, le=600)] = 2.0
    stale_after_s: Annotated[float, Field(gt=0, le=86_400, description=(
        "a notification older than this (sent by the hub that long ago) is shown marked stale"
    ))] = 120.0
    forget_after_s: Annotated[float, Field(gt=0, le=7 * 86_400, description=(
        "notifications received longer ago leave the box"))] = 12 * 3600.0
    queue_max: Annotated[int, Field(ge=1, le=10_000, description=(
        "most notifications kept on the box; the oldest answered ones go first"))] = 200
    inputs: InputsConfig = Field(default_factory=InputsConfig)
    demo: bool = Field(default=False, description="allows auto_answer; never on a real officer")
    auto_answer: AutoAnswerConfig | None = None
    camera: GlassesCameraConfig | None = Field(default=None, description=(
        "face matching on the glasses' camera; absent or enabled: false, no frame is taken"))

    @model_validator(mode="after")
    def _consistent(self) -> GlassesConfig:
        if self.auto_answer is not None and not self.demo:
            raise ValueError("auto_answer answers for the officer: it needs demo: true")
        if self.position.source == "phone" and not self.inputs.http.enabled:
            raise ValueError("position source phone posts to the local API: enable inputs.http")
        return self
