"""One real camera agent run over the face video, recorded for the video test
(tests/edge/camera/test_face_matching.py) and the canary test (tests/edge/faces/test_canary.py).

The video: obama2, biden, obama3 and the group photo, one after the other. The bundle holds one
entry, ``entry-obama``, from obama.jpg (a different photo from the video's). The agent is real:
GStreamer file ingest, NanoDet-m persons, the tracker, the face stage with YuNet + SFace, the
watchlist receiver, the durable outbox and the real Mosquitto. Everything that could carry a
face out of the process is recorded: every MQTT message the hub account can read, every log
record at DEBUG, and every file under the agent's data dir and the run's temp dir.

The agent's embedder is wrapped (its answers unchanged) so the test keeps, in its own memory,
every face the agent embedded: its box, its embedding and the crop the agent's own encoder makes
of it in that frame. The canary test searches the recording for those traces; the control is
that the Obama faces' traces are found exactly where an alert carries them.

The run happens once per session (both tests read the same record): it costs ~15 s of
CPU (NanoDet-m and YuNet + SFace on 34 frames).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.agent import AgentRuntime
from edge.camera.config import CameraConfig
from edge.camera.detectors.default import nanodet_onnx_config
from edge.camera.models import models_dir
from edge.camera.service import CameraService
from edge.faces.backends import FaceBackendConfig, load_backend
from edge.faces.bundle import BundleEntry, BundlePayload, seal_bundle
from edge.faces.keys import ed25519_public_b64, key_id_of, load_or_create_device_key
from edge.faces.stage import encode_face_crop
from edge.faces.stage_config import FaceCropConfig
from edge.faces.types import BgrImage, Embedding, FaceBackend, FaceBox
from edge.faces.watchlist import EdgeWatchlist
from edge.protocol import Alert, CmdChannel, DeviceKind, cmd_topic, decode_as, encode
from edge.validators import utcnow
from edge.vision.ingest import FileSource, IngestConfig
from edge.vision.tracker import TrackerConfig
from tests.edge.faces.face_video import Segment, build_face_video
from tests.support.broker import BrokerHarness
from tests.support.flood import raw_client
from tests.support.waiting import wait_until

ENROLLED = "entry-obama"
PHOTOS = ("obama2", "biden", "obama3", "group")


@dataclass(frozen=True)
class FaceTrace:
    """One face the agent embedded, as the recorder saw it."""

    frame: int
    photo: str
    box: FaceBox
    crop_jpeg: bytes
    embedding: Embedding


@dataclass
class FaceRun:
    site: str
    device: str
    segments: list[Segment]
    messages: list[tuple[str, bytes]]
    alerts: list[Alert]
    logs: list[str]
    files: dict[Path, bytes]
    outbox_files: dict[Path, bytes]
    traces: list[FaceTrace]
    health_metrics: dict[str, float]
    data_dir: Path
    run_dir: Path
    frames_processed: int = 0
    notes: list[str] = field(default_factory=list)

    def photo_of_frame(self, index: int) -> str | None:
        for s in self.segments:
            if s.first_frame <= index < s.first_frame + s.frames:
                return s.photo
        return None


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        with self._lock:
            self.lines.append(f"{record.name} {text}")


def _read_tree(root: Path, skip: set[Path]) -> dict[Path, bytes]:
    found: dict[Path, bytes] = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if path in skip or not path.is_file():
                continue
            found[path] = path.read_bytes()
    return found


def _new_tmp_files(since: float, skip_dirs: tuple[Path, ...]) -> dict[Path, bytes]:
    """Top-level files of the system temp dir written during the run (another process's temp
    dirs are not ours to read)."""
    found: dict[Path, bytes] = {}
    tmp = Path(tempfile.gettempdir())
    for entry in tmp.iterdir():
        try:
            if entry.is_file() and entry.stat().st_mtime >= since and not any(
                    d in entry.parents for d in skip_dirs):
                found[entry] = entry.read_bytes()
        except OSError:
            continue
    return found


def camera_config(site: str, device: str, broker: BrokerHarness, *, data_dir: Path,
                  video: Path, hub_keys: dict[str, str]) -> CameraConfig:
    return CameraConfig.model_validate({
        "site": site, "device": device,
        "mqtt": broker.add_device(site, DeviceKind.CAMERA, device),
        "data_dir": data_dir, "health_interval_s": 0.5,
        "source": FileSource(path=video),
        "ingest": IngestConfig(width_px=640, height_px=480, policy="all"),
        "detector": nanodet_onnx_config(models_dir() / "nanodet-m.onnx"),
        "motion": {"enabled": False},
        # the gaps between photos are 5 frames: each person's track ends in the gap
        "tracker": TrackerConfig(max_missed_frames=2, min_hits=1),
        "send_positions": False,
        "end_of_file_wait_s": 0,
        "faces": {
            "matcher": {"k_frames": 2, "n_frames": 4, "cooldown_s": 0},
            "watchlist": {"hub_keys": hub_keys,
                          "key_file": data_dir / "watchlist" / "device.key",
                          "store_dir": data_dir / "watchlist"},
        },
    })


def _embedding_of_photo(backend: FaceBackend, image: BgrImage) -> Embedding:
    faces = backend.detector.detect(image)
    return backend.embedder.embed(image, max(faces, key=lambda f: f.area))


def seal_obama(backend: FaceBackend, site: str, device: str, key_file: Path
                ) -> tuple[bytes, dict[str, str]]:
    import cv2

    from edge.faces.testdata import face_photo_path

    signing = Ed25519PrivateKey.generate()
    key_id = key_id_of(signing.public_key())
    device_key = load_or_create_device_key(key_file)
    now = utcnow()
    obama = np.asarray(cv2.imread(str(face_photo_path("obama"))), dtype=np.uint8)
    payload = BundlePayload(
        version=1, issued_at=now, expires_at=now + timedelta(days=1), model=backend.embedder.name,
        dim=backend.embedder.dim,
        entries=(BundleEntry(ENROLLED, now + timedelta(days=1),
                             _embedding_of_photo(backend, obama)),))
    envelope = seal_bundle(payload, site=site, device=device,
                           recipient_key=device_key.public_key(), signing_key=signing,
                           key_id=key_id)
    return encode(envelope), {key_id: ed25519_public_b64(signing.public_key())}


class TraceRecorder:
    """Wraps the agent's embedder: for each face it embeds, keeps (in the test's memory) the
    embedding, the box and the crop the agent's own encoder makes of that face in that frame.
    The agent's behaviour is unchanged (the real embedder answers)."""

    def __init__(self, backend: FaceBackend, crop: FaceCropConfig) -> None:
        self.inner = backend.embedder
        self.name = self.inner.name
        self.dim = self.inner.dim
        self.crop = crop
        self.frame = 0
        self.traces: list[tuple[int, FaceBox, bytes, Embedding]] = []

    def embed(self, image: BgrImage, face: FaceBox) -> Embedding:
        vector = self.inner.embed(image, face)
        self.traces.append((self.frame, face, encode_face_crop(image, face, self.crop).jpeg,
                            vector.copy()))
        return vector


class RunRecording:
    """What a recorded run keeps: every MQTT message the hub account can read, every log
    record at DEBUG, and (at :meth:`finish`) every file of the run. Shared by the camera's run
    and the glasses' (tests/edge/glasses/face_run.py)."""

    def __init__(self, broker: BrokerHarness, site: str) -> None:
        self.site = site
        self.log = _Recorder()
        self._root = logging.getLogger()
        self._old_level = self._root.level
        self._root.addHandler(self.log)
        self._root.setLevel(logging.DEBUG)
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.started = time.time()
        messages, lock = self.messages, self._lock

        # not a bound method: the client would hold the recording in a cycle, and the paho
        # clients' socket pairs would outlive the run until the garbage collector ran
        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            with lock:
                messages.append((msg.topic, bytes(msg.payload)))

        self._listener = raw_client(broker, "hub", f"{site}-everything")
        self._listener.on_message = on_message
        self._listener.subscribe([("#", 1), (f"gw/v1/{site}/#", 1)])
        self.hub = raw_client(broker, "hub", f"{site}-bundle-push")

    def push_bundle(self, device: str, envelope: bytes) -> None:
        """The hub's retained bundle for ``device`` (an empty payload clears it)."""
        self.hub.publish(cmd_topic(self.site, device, CmdChannel.WATCHLIST), envelope, qos=1,
                         retain=True).wait_for_publish(5)

    def alerts_recorded(self) -> int:
        with self._lock:
            return len({decode_as(Alert, p).id for t, p in self.messages
                        if t.endswith("/alert") and p})

    def close(self, device: str) -> None:
        self.push_bundle(device, b"")
        for client in (self.hub, self._listener):
            client.disconnect()
            client.loop_stop()
        self._root.removeHandler(self.log)
        self._root.setLevel(self._old_level)

    def finish(self, *, device: str, segments: list[Segment], run_dir: Path, root: Path,
               video: Path, data_dir: Path, traces: TraceRecorder,
               health_metrics: dict[str, float], frames_processed: int) -> FaceRun:
        """The run's record, once the agent has stopped and :meth:`close` was called."""
        with self._lock:
            recorded = list(self.messages)
        alerts: dict[str, Alert] = {}  # one per id: the two subscriptions overlap
        for topic, payload in recorded:
            if topic.endswith("/alert") and payload:
                alert = decode_as(Alert, payload)
                alerts[alert.id] = alert
        files = _read_tree(run_dir, skip={video})
        files.update(_new_tmp_files(self.started, (root,)))
        seen = []
        for frame_no, face, crop, vector in traces.traces:
            photo = next((seg.photo for seg in segments
                          if seg.first_frame <= frame_no < seg.first_frame + seg.frames),
                         "none")
            seen.append(FaceTrace(frame_no, photo, face, crop, vector))
        return FaceRun(site=self.site, device=device, segments=segments, messages=recorded,
                       alerts=list(alerts.values()), logs=list(self.log.lines), files=files,
                       outbox_files={p: b for p, b in files.items() if "outbox" in p.name},
                       traces=seen, health_metrics=health_metrics, data_dir=data_dir,
                       run_dir=run_dir, frames_processed=frames_processed)


_RUN: dict[str, FaceRun] = {}


def face_run(broker: BrokerHarness, site_factory: Callable[[], str], root: Path) -> FaceRun:
    """The recorded run (made on first use, then shared)."""
    if "run" not in _RUN:
        _RUN["run"] = _make_run(broker, site_factory(), root)
    return _RUN["run"]


def _make_run(broker: BrokerHarness, site: str, root: Path) -> FaceRun:
    device = f"{site}-facecam"
    run_dir = root / "face-run"
    data_dir = run_dir / "edge"
    video = run_dir / "faces.avi"
    run_dir.mkdir(parents=True)
    segments = build_face_video(video, PHOTOS, frames_each=5, gap_frames=3)
    backend = load_backend(FaceBackendConfig())
    envelope_bytes, hub_keys = seal_obama(backend, site, device,
                                           data_dir / "watchlist" / "device.key")
    config = camera_config(site, device, broker, data_dir=data_dir, video=video,
                           hub_keys=hub_keys)

    recording = RunRecording(broker, site)
    service: CameraService | None = None
    assert config.faces is not None
    recorder_of_traces = TraceRecorder(backend, config.faces.crop)
    try:
        # the hub pushed the bundle before the camera's video starts (retained, QoS 1): a
        # first short life of the agent's runtime and watchlist receives and stores it; the
        # camera agent then plays the video with it in force
        recording.push_bundle(device, envelope_bytes)
        runtime = AgentRuntime(config, DeviceKind.CAMERA)
        watchlist = EdgeWatchlist(config.faces.watchlist, runtime, backend.embedder.name)
        runtime.start()
        try:
            wait_until(lambda: watchlist.gallery().version == 1, timeout_s=15)
        finally:
            runtime.stop()
        service = CameraService(config)
        assert service.faces is not None and service.watchlist is not None
        assert service.watchlist.gallery().version == 1
        b = service.faces.backend
        service.faces.backend = FaceBackend(b.name, b.detector, recorder_of_traces,
                                            b.default_threshold, b.floor, b.licence)
        processor = service.processor
        process = processor.process

        def numbered(image: BgrImage, ts: float) -> object:
            recorder_of_traces.frame = processor.frames  # this frame's index, from 0
            return process(image, ts)

        setattr(processor, "process", numbered)  # noqa: B010 - an instance hook, test only
        service.start()
        wait_until(service.finished.is_set, timeout_s=120)
        wait_until(lambda: service is not None
                   and recording.alerts_recorded() >= service.alerts_sent, timeout_s=10)
        metrics = dict(service.runtime.health_message().metrics)
        frames_processed = int(service.source.counters["frames"])
    finally:
        if service is not None:
            service.stop()
        recording.close(device)
    return recording.finish(device=device, segments=segments, run_dir=run_dir, root=root,
                            video=video, data_dir=data_dir, traces=recorder_of_traces,
                            health_metrics=metrics, frames_processed=frames_processed)
