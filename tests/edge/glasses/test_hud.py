"""The HUD renderer, checked on its pixels: boxes carry ink, the arrow points where the place
is, CJK renders with real glyphs, severity is told by label (and pattern), mono_green is green
only, bad evidence and absurd titles cannot break or spill out of the layout."""

from __future__ import annotations

import io
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFont

from edge.glasses import fonts as fonts_module
from edge.glasses.fonts import FontBook, FontError, default_fontbook, draws_glyph, find_cjk_font
from edge.glasses.hud import (
    ANSWERED,
    COLOUR,
    ELLIPSIS,
    MONO,
    SEPARATOR,
    SEVERITY_COLOUR,
    HudRenderer,
    LayoutError,
    Mode,
    format_age,
    format_distance,
)
from edge.glasses.view import Frame, HudItem, HudView, Pose
from edge.i18n import LANGUAGES, catalogue
from edge.protocol import AlertKind, ExpectedAction, OfficerAnswer, Severity

NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
HERE = (116.40, 39.90)
SIZES = [(640, 400), (1280, 720)]
Box = tuple[int, int, int, int]


@pytest.fixture(scope="module")
def fonts() -> FontBook:
    return default_fontbook()


@pytest.fixture(scope="module")
def renderers(fonts: FontBook) -> dict[tuple[int, int, str], HudRenderer]:
    modes: tuple[Mode, ...] = ("colour", "mono_green")
    return {(w, h, mode): HudRenderer(w, h, mode=mode, font=fonts)
            for w, h in SIZES for mode in modes}


def jpeg(colour: tuple[int, int, int] = (200, 40, 40), size: tuple[int, int] = (320, 240)
         ) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG")
    return buf.getvalue()


def item(**kw: object) -> HudItem:
    base = HudItem(
        notify_id="n1", kind=AlertKind.INTRUSION, severity=Severity.HIGH,
        title="Person at the north gate", issued_at=NOW - timedelta(seconds=95),
        received_at=NOW, action=ExpectedAction.ATTEND, dispatch_id="d1",
        incident_number="INC-0042", target=(HERE[0], HERE[1] + 0.01),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def view(*items: HudItem, **kw: object) -> HudView:
    base = HudView(now=NOW, language="en", items=items or (item(),),
                   pose=Pose(HERE[0], HERE[1], NOW, heading_deg=0.0))
    return replace(base, **kw)  # type: ignore[arg-type]


def crop(frame: Frame, box: Box) -> Frame:
    return frame[box[1]:box[3], box[0]:box[2]]


def ink(frame: Frame, box: Box) -> int:
    """Pixels in ``box`` that differ from its most common colour (its background)."""
    region = crop(frame, box).reshape(-1, 3).astype(np.uint32)
    packed = (region[:, 0] << 16) | (region[:, 1] << 8) | region[:, 2]
    colours, counts = np.unique(packed, return_counts=True)
    return int((packed != colours[counts.argmax()]).sum())


def arrow_direction(frame: Frame, box: Box, colour: tuple[int, int, int]) -> float | None:
    """Degrees clockwise from up of the arrow pixel farthest from the arrow box's centre."""
    region = crop(frame, box)
    ys, xs = np.nonzero((region == np.array(colour)).all(axis=2))
    if len(xs) == 0:
        return None
    cx, cy = (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
    far = int(np.argmax((xs - cx) ** 2 + (ys - cy) ** 2))
    return math.degrees(math.atan2(xs[far] - cx, -(ys[far] - cy))) % 360


def angle_gap(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


@pytest.mark.parametrize(("width", "height"), SIZES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_text_box_has_ink(renderers: dict[tuple[int, int, str], HudRenderer],
                                width: int, height: int, language: str) -> None:
    r = renderers[(width, height, "colour")]
    frame = r.render(view(item(stale=True, answer=OfficerAnswer.ON_MY_WAY), item(notify_id="n2"),
                          language=language, unsent_answers=2))
    assert frame.shape == (height, width, 3)
    assert frame.dtype == np.uint8
    boxes = r.layout()
    for name in ("status", "severity", "kind", "title", "meta", "stale", "action", "answer",
                 "distance", "queue"):
        assert ink(frame, boxes[name]) > 20, name


def test_layout_boxes_lie_inside_the_frame_and_the_card_holds_its_fields(
        renderers: dict[tuple[int, int, str], HudRenderer]) -> None:
    for (w, h, _), r in renderers.items():
        boxes = r.layout()
        card = boxes["card"]
        for name, (x0, y0, x1, y1) in boxes.items():
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h, name
        for name in ("severity", "kind", "title", "meta", "stale", "action", "answer"):
            x0, y0, x1, y1 = boxes[name]
            assert card[0] <= x0 and x1 <= card[2] and card[1] <= y0 and y1 <= card[3], name
        # the card and the arrow column do not overlap
        assert card[2] <= boxes["arrow"][0]


@pytest.mark.parametrize("bearing", [0.0, 90.0, 180.0, 270.0, 35.0])
@pytest.mark.parametrize(("width", "height"), SIZES)
def test_arrow_points_at_the_relative_bearing(
        renderers: dict[tuple[int, int, str], HudRenderer], width: int, height: int,
        bearing: float) -> None:
    # The place is due north; the officer faces (360 - bearing), so it lies at ``bearing``.
    r = renderers[(width, height, "colour")]
    pose = Pose(HERE[0], HERE[1], NOW, heading_deg=(360.0 - bearing) % 360.0)
    frame = r.render(view(pose=pose))
    seen = arrow_direction(frame, r.layout()["arrow"], COLOUR.arrow)
    assert seen is not None
    assert angle_gap(seen, bearing) < 4, (seen, bearing)


def test_arrow_without_heading_is_a_compass_bearing_with_a_north_mark(
        renderers: dict[tuple[int, int, str], HudRenderer]) -> None:
    r = renderers[(640, 400, "mono_green")]
    arrow = r.layout()["arrow"]
    north_strip = (arrow[0], arrow[1], arrow[2], arrow[1] + 24)
    east = item(target=(HERE[0] + 0.01, HERE[1]))
    no_heading = r.render(view(east, pose=Pose(HERE[0], HERE[1], NOW)))
    facing_south = r.render(view(east, pose=Pose(HERE[0], HERE[1], NOW, heading_deg=180.0)))
    seen = arrow_direction(no_heading, arrow, MONO.arrow)
    assert seen is not None
    assert angle_gap(seen, 90.0) < 4
    relative = arrow_direction(facing_south, arrow, MONO.arrow)
    assert relative is not None
    assert angle_gap(relative, 270.0) < 4  # east is on the right hand of someone facing south
    text_px = (crop(no_heading, north_strip) == np.array(MONO.text)).all(axis=2).sum()
    text_px_with_heading = (crop(facing_south, north_strip) == np.array(MONO.text)).all(
        axis=2).sum()
    assert text_px > 10
    assert text_px_with_heading == 0


def test_distance_and_no_position(renderers: dict[tuple[int, int, str], HudRenderer]) -> None:
    r = renderers[(640, 400, "colour")]
    boxes = r.layout()
    near = r.render(view(item(target=(HERE[0], HERE[1] + 0.001))))
    far = r.render(view(item(target=(HERE[0], HERE[1] + 0.1))))
    lost = r.render(view(pose=None))
    assert ink(lost, boxes["distance"]) > 20
    assert arrow_direction(lost, boxes["arrow"], COLOUR.arrow) is None
    distances = [crop(f, boxes["distance"]) for f in (near, far, lost)]
    assert not np.array_equal(distances[0], distances[1])
    assert not np.array_equal(distances[0], distances[2])


@pytest.mark.parametrize("pose", [Pose(math.nan, HERE[1], NOW, heading_deg=0.0),
                                  Pose(HERE[0], HERE[1], NOW, heading_deg=math.inf),
                                  Pose(HERE[0], math.inf, NOW)])
def test_a_broken_fix_shows_no_position_instead_of_crashing(fonts: FontBook, pose: Pose) -> None:
    r = HudRenderer(640, 400, font=fonts)
    boxes = r.layout()
    lost = r.render(view(pose=None))
    broken = r.render(view(pose=pose))
    assert np.array_equal(crop(broken, boxes["distance"]), crop(lost, boxes["distance"]))
    assert arrow_direction(broken, boxes["arrow"], COLOUR.arrow) is None
    assert r.stats.bad_positions == 1
    nan_target = r.render(view(item(target=(math.nan, 0.0))))
    assert arrow_direction(nan_target, boxes["arrow"], COLOUR.arrow) is None


def test_format_distance_and_age() -> None:
    assert format_distance(120.4, "en") == "120 m"
    assert format_distance(1400, "en") == "1.4 km"
    assert format_distance(1400, "zh-CN") == "1.4 公里"
    assert format_distance(250_000, "en") == "250 km"
    assert format_age(NOW, NOW - timedelta(seconds=59), "en") == "59 s ago"
    assert format_age(NOW, NOW - timedelta(minutes=12, seconds=5), "en") == "12 min ago"
    assert format_age(NOW, NOW - timedelta(hours=3), "zh-CN") == "3 小时前"
    # the box clock behind the hub's: no negative age
    assert format_age(NOW, NOW + timedelta(seconds=30), "en") == "0 s ago"


def test_cjk_labels_render_with_real_glyphs(
        renderers: dict[tuple[int, int, str], HudRenderer], fonts: FontBook) -> None:
    r = renderers[(640, 400, "colour")]
    kind = r.layout()["kind"]
    en = r.render(view(language="en"))
    zh = r.render(view(language="zh-CN"))
    assert ink(zh, kind) > 50
    assert not np.array_equal(crop(en, kind), crop(zh, kind))
    # No tofu anywhere in the HUD's Chinese catalogue: every CJK character has its own glyph.
    font = fonts.get(24)
    chars = {ch for key, text in catalogue("zh-CN").items() if key.startswith("hud.")
             for ch in text if ord(ch) > 0x2E80}
    assert chars
    chars |= set((ELLIPSIS + SEPARATOR + ANSWERED).replace(" ", ""))  # its own symbols
    missing = sorted(ch for ch in chars if not draws_glyph(font, ch))
    assert missing == []


def test_tofu_probe_can_fail() -> None:
    """draws_glyph is false for a character the font lacks, so the test above can fail."""
    dejavu = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    font = ImageFont.truetype(dejavu, 24)
    assert draws_glyph(font, "A")
    assert not draws_glyph(font, "中")


def test_a_font_without_cjk_is_a_loud_error() -> None:
    with pytest.raises(FontError, match="fonts-noto-cjk"):
        find_cjk_font(Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"))
    with pytest.raises(FontError, match="does not exist"):
        find_cjk_font(Path("/nonexistent/font.ttc"))
    with pytest.raises(FontError, match="no CJK glyphs"):
        HudRenderer(640, 400, font=Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"))
    noto = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
    assert HudRenderer(640, 400, font=noto).fonts.source.path == noto
    # the agent's config check catches ValueError for every display refusal
    assert issubclass(FontError, ValueError)
    assert issubclass(LayoutError, ValueError)


def test_font_lookup_prefers_fontconfig_and_falls_back_to_the_noto_paths(
        monkeypatch: pytest.MonkeyPatch) -> None:
    found = find_cjk_font()
    assert draws_glyph(FontBook(found).get(24), "中")
    # without fontconfig: the known Debian path, Simplified Chinese face
    monkeypatch.setattr("edge.glasses.fonts.shutil.which", lambda _name: None)
    fallback = find_cjk_font()
    assert fallback.path.name == "NotoSansCJK-Regular.ttc"
    assert fallback.index == 2
    # neither: a loud error naming the package
    monkeypatch.setattr(fonts_module, "KNOWN_FONTS", ())
    with pytest.raises(FontError, match="install the Debian package fonts-noto-cjk"):
        find_cjk_font()


@pytest.mark.parametrize("mode", ["colour", "mono_green"])
def test_each_severity_has_its_own_label_and_card(
        renderers: dict[tuple[int, int, str], HudRenderer], mode: str) -> None:
    r = renderers[(640, 400, mode)]
    boxes = r.layout()
    labels, cards = {}, {}
    for severity in Severity:
        frame = r.render(view(item(severity=severity)))
        assert ink(frame, boxes["severity"]) > 20, severity
        labels[severity] = crop(frame, boxes["severity"]).tobytes()
        card = boxes["card"]
        # the card's border band (where the pattern is), without the text inside
        cards[severity] = crop(frame, (card[0], card[1], card[2], card[1] + 12)).tobytes()
    assert len(set(labels.values())) == len(Severity)
    assert len(set(cards.values())) == len(Severity)


def test_colour_mode_pairs_the_severity_colour_with_its_label(
        renderers: dict[tuple[int, int, str], HudRenderer]) -> None:
    r = renderers[(640, 400, "colour")]
    box = r.layout()["severity"]
    for severity, colour in SEVERITY_COLOUR.items():
        region = crop(r.render(view(item(severity=severity))), box)
        share = (region == np.array(colour)).all(axis=2).mean()
        assert share > 0.3, severity  # the badge is filled with the colour...
        assert ink(region.copy(), (0, 0, region.shape[1], region.shape[0])) > 20  # ...and a label


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_mono_green_has_no_red_or_blue(renderers: dict[tuple[int, int, str], HudRenderer],
                                       width: int, height: int) -> None:
    r = renderers[(width, height, "mono_green")]
    frame = r.render(view(item(severity=Severity.CRITICAL, evidence_jpeg=jpeg((250, 20, 240)),
                               stale=True), item(severity=Severity.LOW), online=False,
                          unsent_answers=3, language="zh-CN"))
    assert frame[..., 0].max() == 0
    assert frame[..., 2].max() == 0
    assert frame[..., 1].max() > 200


def test_colour_mode_is_not_mono(renderers: dict[tuple[int, int, str], HudRenderer]) -> None:
    frame = renderers[(640, 400, "colour")].render(view(item(severity=Severity.CRITICAL)))
    assert frame[..., 0].max() > 200  # so the mono test above can tell the difference


def test_evidence_is_shown_and_broken_evidence_is_refused_safely(
        renderers: dict[tuple[int, int, str], HudRenderer]) -> None:
    r = renderers[(640, 400, "colour")]
    box = r.layout()["evidence"]
    good = crop(r.render(view(item(evidence_jpeg=jpeg((30, 200, 60))))), box)
    assert (np.abs(good.astype(int) - (30, 200, 60)).sum(axis=2) < 30).mean() > 0.3
    real = jpeg()
    broken = [
        b"\xff\xd8\xff\xe0garbage" * 10,  # a JPEG header and nonsense
        real[: len(real) // 3],  # truncated
        b"not an image at all",
        _png_bytes(),  # an image, but not a JPEG
        _huge_header_jpeg(),  # claims 60000 x 60000 pixels
    ]
    before = r.stats.evidence_refused
    for data in broken:
        frame = r.render(view(item(evidence_jpeg=data, notify_id=str(len(data)))))
        assert ink(frame, box) > 20  # the "unreadable" placeholder, not a crash
    assert r.stats.evidence_refused - before == len(broken)


def _png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), (1, 2, 3)).save(buf, "PNG")
    return buf.getvalue()


def _huge_header_jpeg() -> bytes:
    data = bytearray(jpeg(size=(16, 16)))
    sof = data.find(b"\xff\xc0")
    data[sof + 5: sof + 9] = (60000).to_bytes(2, "big") + (60000).to_bytes(2, "big")
    return bytes(data)


@pytest.mark.parametrize("title", ["W" * 5000, "北门有人翻越围栏" * 400,
                                   "line\nbreak\x1b[31m\u202eoverride " * 50,
                                   "Z" + "\u0336\u0321\u031b\u0358\u0364" * 60 + "algo"])
def test_a_very_long_title_is_cut_inside_its_box(
        renderers: dict[tuple[int, int, str], HudRenderer], title: str) -> None:
    r = renderers[(640, 400, "colour")]
    box = r.layout()["title"]
    short = r.render(view(item(title="x")))
    long = r.render(view(item(title=title)))
    changed = (short != long).any(axis=2)
    ys, xs = np.nonzero(changed)
    assert len(xs) > 0
    assert box[0] <= xs.min() and xs.max() < box[2]
    assert box[1] <= ys.min() and ys.max() < box[3]


def test_queue_strip_lists_the_others_most_urgent_first(
        renderers: dict[tuple[int, int, str], HudRenderer]) -> None:
    r = renderers[(640, 400, "colour")]
    queue = r.layout()["queue"]
    selected = item(severity=Severity.LOW)
    others = [item(notify_id=f"o{s.value}", severity=s)
              for s in (Severity.INFO, Severity.MEDIUM, Severity.CRITICAL)]
    frame = r.render(view(selected, *others))
    strip = crop(frame, queue)
    red = (strip == np.array(SEVERITY_COLOUR[Severity.CRITICAL])).all(axis=2)
    blue = (strip == np.array(SEVERITY_COLOUR[Severity.LOW])).all(axis=2)
    assert red.any()
    assert not blue.any()  # the selected item is not repeated in the strip
    xs = np.nonzero(red)[1]
    yellow = (strip == np.array(SEVERITY_COLOUR[Severity.MEDIUM])).all(axis=2)
    assert xs.max() < np.nonzero(yellow)[1].min()  # critical comes before medium
    alone = r.render(view(selected))
    assert ink(alone, queue) == 0
    # a different count changes the strip's count text
    fewer = r.render(view(selected, *others[:2]))
    right = (queue[2] - 110, queue[1], queue[2], queue[3])
    assert not np.array_equal(crop(frame, right), crop(fewer, right))


def test_status_line_shows_offline_and_unsent(
        renderers: dict[tuple[int, int, str], HudRenderer]) -> None:
    r = renderers[(640, 400, "colour")]
    status = r.layout()["status"]
    online = crop(r.render(view()), status)
    offline = crop(r.render(view(online=False)), status)
    unsent = crop(r.render(view(unsent_answers=4)), status)
    assert len({online.tobytes(), offline.tobytes(), unsent.tobytes()}) == 3


def test_stale_marker_only_when_stale(renderers: dict[tuple[int, int, str], HudRenderer]) -> None:
    r = renderers[(640, 400, "colour")]
    stale_box = r.layout()["stale"]
    assert ink(r.render(view(item(stale=True))), stale_box) > 20
    assert ink(r.render(view(item(stale=False))), stale_box) == 0


def test_empty_view_and_bad_selection(renderers: dict[tuple[int, int, str], HudRenderer]
                                      ) -> None:
    r = renderers[(640, 400, "colour")]
    empty = HudView(now=NOW, language="zh-CN")
    assert ink(r.render(empty), r.layout()["title"]) > 20
    first, last = item(notify_id="a", kind=AlertKind.SOS), item(notify_id="b")
    kind = r.layout()["kind"]
    shown_last = crop(r.render(view(first, last, selected=1)), kind)
    assert np.array_equal(crop(r.render(view(first, last, selected=7)), kind), shown_last)
    assert np.array_equal(crop(r.render(view(first, last, selected=-3)), kind),
                          crop(r.render(view(first, last, selected=0)), kind))
    assert not np.array_equal(shown_last, crop(r.render(view(first, last, selected=0)), kind))


def test_unknown_hint_key_is_shown_and_counted_not_fatal(fonts: FontBook) -> None:
    r = HudRenderer(640, 400, font=fonts)
    r.render(view(hints=("hud.stale", "glasses.no_such_hint")))
    r.render(view(hints=("glasses.no_such_hint",)))
    assert r.stats.missing_hints == 1


@pytest.mark.parametrize(("width", "height"), [(100, 100), (320, 240), (4000, 400),
                                               (400, 640), (8000, 4500)])
def test_sizes_it_cannot_lay_out_are_refused(fonts: FontBook, width: int, height: int) -> None:
    with pytest.raises(LayoutError, match=f"{width}x{height}"):
        HudRenderer(width, height, font=fonts)


def test_unknown_mode_is_refused(fonts: FontBook) -> None:
    with pytest.raises(ValueError, match="mono_green"):
        HudRenderer(640, 400, mode="sepia", font=fonts)  # type: ignore[arg-type]


@pytest.mark.bench
def test_bench_script_runs() -> None:
    """bench/hud.py still runs (on request: pytest -m bench)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    res = subprocess.run([sys.executable, str(root / "bench" / "hud.py"), "--frames", "3"],
                         capture_output=True, text=True, timeout=300, check=False, cwd=root)
    assert res.returncode == 0, res.stderr
    assert "1280x720" in res.stdout
    assert "png sink" in res.stdout
