"""The canary proof: faces that are not on the watchlist (Biden, the six-face group) go through
the same camera pipeline as the enrolled one, and no trace of them leaves the process: not in
any MQTT message, not in the outbox database, not in a log record, not in any file of the
agent's data dir or the temp dirs.

Traces searched, per canary face the agent embedded (recorded as the agent embedded it, see
video_run.py): its embedding (float32 and float16 bytes, base64 of them at every alignment,
substrings, and its components as decimal text), the crop JPEG the agent's own encoder makes
of it (whole, base64, and a slice of its entropy-coded data), and its box coordinates in
alert details.

The control: the same search finds the Obama faces' crops in the MQTT traffic and in the
outbox, where their alerts carry them; and it finds a canary embedding in every form once
one is planted. Without the controls an empty search would prove nothing."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from edge.faces.types import Embedding, FaceBox
from tests.edge.faces.video_run import FaceRun, FaceTrace, face_run
from tests.support.broker import BrokerHarness, unique_site

pytestmark = pytest.mark.gstreamer


@pytest.fixture
def run(broker: BrokerHarness, tmp_path_factory: pytest.TempPathFactory) -> FaceRun:
    return face_run(broker, unique_site, tmp_path_factory.mktemp("faces"))


def _b64_forms(data: bytes) -> list[bytes]:
    """Base64 of ``data`` as it would appear inside any longer base64 text: for each of the
    three alignments, the characters that depend only on ``data``."""
    forms = []
    for shift in range(3):
        chunk = data[(3 - shift) % 3:]
        chunk = chunk[:len(chunk) - len(chunk) % 3]
        if len(chunk) >= 12:
            forms.append(base64.b64encode(chunk))
    return forms


def embedding_needles(vector: Embedding) -> list[bytes]:
    f32 = np.asarray(vector, dtype=np.float32).tobytes()
    f16 = np.asarray(vector, dtype=np.float16).tobytes()
    return [f32, f16, f32[64:96], f16[32:48], *_b64_forms(f32[:96]), *_b64_forms(f16[:96])]


def embedding_text_hits(vector: Embedding, haystack: str) -> int:
    """How many of the first 16 components appear in ``haystack`` as decimal text (7
    significant digits: any JSON or repr dump of the vector contains them)."""
    return sum(f"{float(v):.7g}"[:9] in haystack for v in np.asarray(vector)[:16]
               if abs(float(v)) > 1e-3)


def crop_needles(jpeg: bytes) -> list[bytes]:
    # the first ~600 bytes (headers, tables) are the same in every crop of one quality; the
    # middle of the entropy-coded data is this face's alone
    middle = jpeg[len(jpeg) // 2: len(jpeg) // 2 + 48]
    return [jpeg, middle, *_b64_forms(middle), base64.b64encode(jpeg)]


def _haystacks(run: FaceRun, extra_log: str) -> dict[str, bytes]:
    stacks = {f"mqtt {topic} #{i}": payload for i, (topic, payload) in enumerate(run.messages)}
    stacks.update({f"file {path}": data for path, data in run.files.items()})
    stacks["logs"] = ("\n".join(run.logs) + "\n" + extra_log).encode("utf-8")
    return stacks


def _found(needles: list[bytes], stacks: dict[str, bytes]) -> list[str]:
    return [name for name, data in stacks.items() if any(n in data for n in needles)]


def _box_values(box: FaceBox) -> set[float]:
    return {round(v, 1) for v in (box.x, box.y, box.x + box.w, box.y + box.h, box.w, box.h)}


def _canaries(run: FaceRun) -> list[FaceTrace]:
    canaries = [t for t in run.traces if t.photo in ("biden", "group")]
    assert len(canaries) >= 6, "the canary faces must have gone through the face stage"
    assert {t.photo for t in canaries} == {"biden", "group"}
    return canaries


def test_no_trace_of_a_canary_face_leaves_the_process(run: FaceRun,
                                                      caplog: pytest.LogCaptureFixture
                                                      ) -> None:
    stacks = _haystacks(run, caplog.text)
    # the walk saw the agent's files: its outbox, its stored bundle, its bundle key
    names = {p.name for p in run.files}
    assert any(n.endswith("-outbox.sqlite") for n in names), names
    assert any(n.endswith("-watchlist.json") for n in names), names
    assert "device.key" in names
    assert any("face match: entry" in line for line in run.logs)
    text = stacks["logs"].decode("utf-8") + "".join(
        d.decode("utf-8", "replace") for n, d in stacks.items() if n.startswith("mqtt"))
    for trace in _canaries(run):
        where = _found(embedding_needles(trace.embedding), stacks)
        assert not where, f"{trace.photo} frame {trace.frame}: embedding bytes in {where}"
        assert embedding_text_hits(trace.embedding, text) < 3, (
            f"{trace.photo} frame {trace.frame}: embedding components as text")
        where = _found(crop_needles(trace.crop_jpeg), stacks)
        assert not where, f"{trace.photo} frame {trace.frame}: face crop in {where}"
        values = _box_values(trace.box)
        for alert in run.alerts:
            numbers = {round(float(v), 1) for v in alert.details.values()
                       if isinstance(v, int | float) and not isinstance(v, bool)}
            assert len(values & numbers) < 2, (
                f"{trace.photo} frame {trace.frame}: face box in alert {alert.id} details")


def test_control_the_search_finds_an_enrolled_faces_traces(run: FaceRun) -> None:
    stacks = _haystacks(run, "")
    sent = {a.face_crop.jpeg() for a in run.alerts if a.face_crop is not None}
    assert sent
    enrolled = [t for t in run.traces if t.crop_jpeg in sent]
    # the recorder's crops are the agent's, byte for byte
    assert len({t.crop_jpeg for t in enrolled}) == len(sent)
    for trace in enrolled:
        where = _found(crop_needles(trace.crop_jpeg), stacks)
        assert any(w.startswith("mqtt") and "/alert #" in w for w in where), where
        assert any("outbox" in w for w in where), where  # no hub acked: still on disk
        # the slice's base64 (one of its three alignments) finds it on its own, as does the
        # whole crop's base64
        middle = trace.crop_jpeg[len(trace.crop_jpeg) // 2:][:48]
        assert _found(_b64_forms(middle), stacks)
        assert _found([base64.b64encode(trace.crop_jpeg)], stacks)
    # and the raw forms find a crop dumped as bytes
    jpeg = enrolled[0].crop_jpeg
    assert _found(crop_needles(jpeg)[1:2], {"a dump": b"..." + jpeg[10:] + b"..."})


def test_control_the_embedding_search_finds_a_planted_canary(run: FaceRun) -> None:
    canary = _canaries(run)[0].embedding
    f32 = np.asarray(canary, dtype=np.float32).tobytes()
    f16 = np.asarray(canary, dtype=np.float16).tobytes()
    plants = {
        "raw float32 in a file": b"header" + f32 + b"trailer",
        "float16 in a file": b"x" * 7 + f16,
        "float32 base64 in JSON": json.dumps({"e": base64.b64encode(b"ab" + f32).decode()}
                                             ).encode(),
        "float16 base64 in a log line": b"emb=" + base64.b64encode(b"z" + f16),
        "a float32 slice": b"..." + f32[60:100] + b"...",
    }
    for name, data in plants.items():
        assert _found(embedding_needles(canary), {name: data}), name
    dumped = json.dumps({"embedding": np.asarray(canary).tolist()})
    assert embedding_text_hits(canary, dumped) >= 3
    assert embedding_text_hits(canary, repr(list(np.asarray(canary)))) >= 3
    # and the other way: an enrolled face's embedding is nowhere in plain bytes either (the
    # bundle carries it encrypted)
    obama = next(t for t in run.traces if t.photo == "obama2").embedding
    assert not _found(embedding_needles(obama), _haystacks(run, ""))
