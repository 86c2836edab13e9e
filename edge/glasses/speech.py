"""The optional spoken cue: a short sentence from the catalogue ("CRITICAL Intrusion. Attend
the scene. 120 m") through espeak-ng, English or Mandarin.

Speaking takes seconds and the HUD must keep drawing, so cues go through a small bounded queue
to one worker thread; :meth:`Speaker.say` never blocks. When the queue is full the oldest cue is
dropped (counted, logged): a newer notification matters more than an older one still waiting.
The text goes to espeak-ng on stdin, never as an argument, so hub data cannot become an option.
"""

from __future__ import annotations

import logging
import queue
import shutil
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field

from edge.config import StrictModel
from edge.errors import GridwardError
from edge.glasses.hud import format_distance
from edge.glasses.view import HudItem, Language, Pose, relative_bearing
from edge.i18n import translate

log = logging.getLogger(__name__)

DEBIAN_PACKAGE = "espeak-ng"
STOP_TIMEOUT_S = 5.0


class SpeechError(GridwardError):
    """Speech is enabled but cannot run; the message says what to install or fix."""


class SpeechConfig(StrictModel):
    enabled: bool = False
    binary: str = Field(default="espeak-ng", min_length=1,
                        description="espeak-ng executable (name on PATH or a path)")
    voice_en: str = Field(default="en", pattern=r"^[A-Za-z0-9_+-]{1,40}$")
    voice_zh: str = Field(default="cmn", pattern=r"^[A-Za-z0-9_+-]{1,40}$",
                          description="Mandarin voice used for zh-CN")
    rate_wpm: Annotated[int, Field(ge=80, le=450, description="words per minute")] = 160
    queue_size: Annotated[int, Field(ge=1, le=64, description=(
        "cues waiting to be spoken; when full the oldest is dropped"))] = 4
    timeout_s: Annotated[float, Field(gt=0, le=120, description=(
        "a cue still speaking after this long is killed"))] = 20.0
    wav_directory: Path | None = Field(default=None, description=(
        "write each cue as a WAV file here instead of playing it (tests, a box without audio)"))


def cue_text(item: HudItem, language: Language, pose: Pose | None) -> str:
    """The spoken sentence for ``item``; every word but the distance is from the catalogue."""
    distance = translate("hud.no_position", language) if pose is None else ""
    if pose is not None and item.target is not None:
        distance = format_distance(relative_bearing(pose, item.target)[0], language)
    return translate(
        "hud.cue", language,
        severity=translate(f"hud.severity.{item.severity.value}", language),
        kind=translate(f"hud.kind.{item.kind.value}", language),
        action=translate(f"hud.action.{item.action.value}", language),
        distance=distance,
    ).strip()


@dataclass(frozen=True, slots=True)
class Cue:
    text: str
    language: Language


class Speaker:
    """One espeak-ng at a time on a worker thread; ``start`` fails loudly when enabled and the
    binary is missing, ``close`` stops the worker (killing a cue in progress)."""

    def __init__(self, config: SpeechConfig) -> None:
        self.config = config
        self.counters: Counter[str] = Counter()
        self._queue: queue.Queue[Cue | None] = queue.Queue(maxsize=config.queue_size)
        self._thread: threading.Thread | None = None
        self._binary: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._closing = False  # set first: say() refuses and no new espeak-ng starts
        self._written = 0

    def start(self) -> None:
        if not self.config.enabled or self._thread is not None:
            return
        self._binary = shutil.which(self.config.binary)
        if self._binary is None:
            raise SpeechError(
                f"spoken cues are enabled but {self.config.binary!r} is not installed; "
                f"apt-get install {DEBIAN_PACKAGE} or set speech.enabled: false")
        if self.config.wav_directory is not None:
            try:
                self.config.wav_directory.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise SpeechError(f"cannot create {self.config.wav_directory}: {err}") from err
        self._thread = threading.Thread(target=self._run, name="hud-speech", daemon=True)
        self._thread.start()

    def say(self, text: str, language: Language) -> bool:
        """Queue a cue; False when speech is off or stopped. Never blocks."""
        if self._thread is None or self._closing or not text.strip():
            return False
        cue = Cue(text.strip(), language)
        while True:
            try:
                self._queue.put_nowait(cue)
            except queue.Full:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    continue
                self.counters["dropped"] += 1
                log.warning("spoken cue dropped: the queue of %s is full",
                            self.config.queue_size)
            else:
                self.counters["queued"] += 1
                return True

    @property
    def speaking_pid(self) -> int | None:
        """The espeak-ng process speaking now, if any (health output, tests)."""
        with self._lock:
            return self._proc.pid if self._proc is not None else None

    def argv(self, language: Language, wav: Path | None) -> list[str]:
        voice = self.config.voice_zh if language == "zh-CN" else self.config.voice_en
        argv = [self._binary or self.config.binary, "-v", voice, "-s", str(self.config.rate_wpm)]
        if wav is not None:
            argv += ["-w", str(wav)]
        return argv

    def _run(self) -> None:
        while True:
            cue = self._queue.get()
            if cue is None:
                return
            try:
                self._speak(cue)
            except (OSError, subprocess.SubprocessError) as err:
                self.counters["failed"] += 1
                log.warning("spoken cue failed: %s", err)

    def _speak(self, cue: Cue) -> None:
        wav = None
        if self.config.wav_directory is not None:
            self._written += 1
            wav = self.config.wav_directory / f"cue-{self._written:06d}.wav"
        with self._lock:
            if self._closing:
                return
            # A fixed argv; the text goes on stdin so it can never be read as an option.
            proc = subprocess.Popen(self.argv(cue.language, wav), stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self._proc = proc
        try:
            _, err = proc.communicate(cue.text.encode("utf-8"), timeout=self.config.timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            self.counters["timed_out"] += 1
            log.warning("spoken cue killed after %s s", self.config.timeout_s)
            return
        finally:
            with self._lock:
                self._proc = None
        if proc.returncode != 0:
            self.counters["failed"] += 1
            log.warning("espeak-ng exited %s: %s", proc.returncode,
                        err.decode("utf-8", "replace").strip()[:200])
            return
        self.counters["spoken"] += 1

    def close(self, *, drain: bool = False, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop the worker. ``drain=True`` speaks what is queued first (tests, a clean
        shutdown); otherwise queued cues are discarded and a cue in progress is killed."""
        thread = self._thread
        if thread is None:
            return
        self._closing = not drain
        if not drain:
            with self._lock:
                if self._proc is not None:
                    self._proc.kill()
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            log.warning("speech worker did not take the stop request in %s s", timeout_s)
        thread.join(timeout_s + self.config.timeout_s)
        self._closing = True
        self._thread = None
