"""Spoken cues through the real espeak-ng: English and Mandarin WAVs of real length, a queue
that never blocks the caller and drops the oldest, text that cannot become an option."""

from __future__ import annotations

import os
import stat
import threading
import wave
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.glasses.speech import Speaker, SpeechConfig, SpeechError, cue_text
from edge.glasses.view import HudItem, Pose
from edge.protocol import AlertKind, ExpectedAction, Severity

NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
ITEM = HudItem(notify_id="n1", kind=AlertKind.INTRUSION, severity=Severity.HIGH,
               title="ignored by the cue", issued_at=NOW, received_at=NOW,
               action=ExpectedAction.ATTEND, target=(116.40, 39.91))
POSE = Pose(116.40, 39.90, NOW, heading_deg=0.0)


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def test_cue_text_comes_from_the_catalogue() -> None:
    assert cue_text(ITEM, "en", POSE) == "HIGH Intrusion. Attend the scene. 1.1 km"
    assert cue_text(ITEM, "zh-CN", POSE) == "高入侵。前往现场处置。1.1 公里"
    assert cue_text(ITEM, "en", None).endswith("no position")


def test_english_and_chinese_cues_become_wav_files(tmp_path: Path) -> None:
    speaker = Speaker(SpeechConfig(enabled=True, wav_directory=tmp_path))
    speaker.start()
    assert speaker.say(cue_text(ITEM, "en", POSE), "en")
    assert speaker.say(cue_text(ITEM, "zh-CN", POSE), "zh-CN")
    speaker.close(drain=True)
    en, zh = tmp_path / "cue-000001.wav", tmp_path / "cue-000002.wav"
    assert wav_seconds(en) > 1.0
    assert wav_seconds(zh) > 1.0
    assert en.read_bytes() != zh.read_bytes()
    assert speaker.counters["spoken"] == 2
    assert speaker.argv("zh-CN", None)[1:3] == ["-v", "cmn"]


def test_text_is_spoken_not_parsed_as_options(tmp_path: Path) -> None:
    evil = tmp_path / "evil.wav"
    speaker = Speaker(SpeechConfig(enabled=True, wav_directory=tmp_path / "cues"))
    speaker.start()
    speaker.say(f"-w {evil} --version", "en")
    speaker.close(drain=True)
    assert not evil.exists()
    assert wav_seconds(tmp_path / "cues" / "cue-000001.wav") > 0.5


def test_missing_binary_is_a_clear_error_only_when_enabled() -> None:
    with pytest.raises(SpeechError, match="apt-get install espeak-ng"):
        Speaker(SpeechConfig(enabled=True, binary="no-such-espeak")).start()
    off = Speaker(SpeechConfig(enabled=False, binary="no-such-espeak"))
    off.start()
    assert off.say("hello", "en") is False
    off.close()


def test_a_slow_speaker_never_blocks_and_drops_the_oldest(tmp_path: Path) -> None:
    # A stand-in espeak-ng that never finishes by itself: the worker is stuck on cue 1.
    fake = tmp_path / "slow-espeak"
    fake.write_text("#!/bin/sh\nexec sleep 600\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    speaker = Speaker(SpeechConfig(enabled=True, binary=str(fake), queue_size=2))
    speaker.start()
    assert speaker.say("one", "en")
    busy = threading.Event()
    for _ in range(500):  # until the worker has taken cue 1 (bounded: not a timing assertion)
        if speaker.speaking_pid is not None:
            busy.set()
            break
        busy.wait(0.01)
    assert busy.is_set()
    pid = speaker.speaking_pid
    assert pid is not None
    for text in ("two", "three", "four", "five"):
        assert speaker.say(text, "en")  # returns at once although nothing is being spoken
    assert speaker.counters["dropped"] == 2
    speaker.close()  # kills the stuck cue and discards the rest
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert speaker.say("late", "en") is False


def test_speech_config_refuses_nonsense(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="voice_zh"):
        SpeechConfig(voice_zh="cmn; rm -rf /")
    with pytest.raises(ValueError, match="queue_size"):
        SpeechConfig(queue_size=0)
    with pytest.raises(ValueError, match="extra"):
        SpeechConfig.model_validate({"enabled": True, "volume": 3})
    assert SpeechConfig(wav_directory=tmp_path).wav_directory == tmp_path
