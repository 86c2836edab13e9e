"""The HUD renderer: a :class:`~edge.glasses.view.HudView` in, an RGB frame out (Pillow).

Glasses displays are small, bright and seen against the street, so the layout is a few large
boxes computed from the frame size (:meth:`HudRenderer.layout`, which the tests use to look at
regions). Severity is never colour alone: the text label is always drawn next to it and the
card's border pattern repeats it, which is all a ``mono_green`` (single-colour waveguide)
display gets. Every label comes from the edge catalogue; only the alert title is hub data.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import unicodedata
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from edge.errors import GridwardError
from edge.glasses.fonts import FontBook, default_fontbook
from edge.glasses.view import (
    Frame,
    HudItem,
    HudView,
    Language,
    Pose,
    bearing_deg,
    relative_bearing,
)
from edge.i18n import translate
from edge.protocol import Severity

log = logging.getLogger(__name__)

Mode = Literal["colour", "mono_green"]
RGB = tuple[int, int, int]
Box = tuple[int, int, int, int]  # left, top, right, bottom (right/bottom exclusive)

MIN_WIDTH, MIN_HEIGHT = 480, 300
MAX_WIDTH, MAX_HEIGHT = 3840, 2160
MIN_ASPECT, MAX_ASPECT = 1.2, 2.4
BASE_W, BASE_H = 640, 400  # the layout's design size; larger frames scale it
ELLIPSIS = "…"
SEPARATOR = " · "
ANSWERED = "✓ "  # before the officer's latest answer
# A hub title is data of unknown length; beyond this it is cut before layout even measures it.
TITLE_MAX_CHARS = 200
# Evidence crops come off the wire: refuse decompression bombs before decoding them.
EVIDENCE_MAX_BYTES = 2_000_000
EVIDENCE_MAX_PIXELS = 4096 * 4096
EVIDENCE_CACHE = 8
MASK_CACHE = 512  # rasterised labels (a few dozen per view, both languages)
TITLE_CACHE = 32
TITLE_LINES, TITLE_LINE_H = 3, 30  # at the design size

SEVERITY_COLOUR: dict[Severity, RGB] = {
    Severity.CRITICAL: (220, 30, 30),
    Severity.HIGH: (245, 130, 20),
    Severity.MEDIUM: (235, 200, 20),
    Severity.LOW: (40, 110, 230),
    Severity.INFO: (140, 140, 140),
}
# Border pattern per severity (both modes): (style, width at design size).
BorderStyle = Literal["double", "solid", "dashed", "dotted", "thin"]
SEVERITY_BORDER: dict[Severity, tuple[BorderStyle, int]] = {
    Severity.CRITICAL: ("double", 3),
    Severity.HIGH: ("solid", 5),
    Severity.MEDIUM: ("dashed", 3),
    Severity.LOW: ("dotted", 3),
    Severity.INFO: ("thin", 1),
}


class LayoutError(GridwardError, ValueError):
    """The frame size is one the HUD cannot lay out."""


@dataclass(frozen=True, slots=True)
class Palette:
    background: RGB
    text: RGB
    dim: RGB
    card: RGB
    arrow: RGB
    ring: RGB
    alarm: RGB  # offline marker, stale marker

    def severity(self, severity: Severity, mono: bool) -> RGB:
        return self.text if mono else SEVERITY_COLOUR[severity]


COLOUR = Palette(
    background=(0, 0, 0), text=(240, 240, 240), dim=(150, 150, 150), card=(28, 28, 32),
    arrow=(0, 230, 255), ring=(90, 90, 90), alarm=(255, 80, 80),
)
MONO = Palette(
    background=(0, 0, 0), text=(0, 255, 0), dim=(0, 150, 0), card=(0, 24, 0),
    arrow=(0, 240, 0), ring=(0, 90, 0), alarm=(0, 255, 0),
)


@dataclass(frozen=True, slots=True)
class Layout:
    """Named rectangles of one frame, in pixels."""

    status: Box
    card: Box
    severity: Box
    kind: Box
    title: Box
    meta: Box
    stale: Box
    action: Box
    answer: Box
    arrow: Box
    distance: Box
    evidence: Box
    queue: Box

    def boxes(self) -> dict[str, Box]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class RenderStats:
    frames: int = 0
    evidence_refused: int = 0
    missing_hints: int = 0
    bad_positions: int = 0  # a pose or target with NaN / infinite coordinates


def format_distance(metres: float, language: Language) -> str:
    if metres < 1000:
        return translate("hud.distance_m", language, m=round(metres))
    km = metres / 1000
    text = f"{km:.1f}" if km < 100 else f"{km:.0f}"
    return translate("hud.distance_km", language, km=text)


def format_age(now: datetime, issued_at: datetime, language: Language) -> str:
    # Clamped at zero: a box clock behind the hub's must not show "-3 s ago".
    seconds = max(0, int((now - issued_at).total_seconds()))
    if seconds < 60:
        return translate("hud.ago_s", language, count=seconds)
    if seconds < 3600:
        return translate("hud.ago_min", language, count=seconds // 60)
    return translate("hud.ago_h", language, count=seconds // 3600)


def clean_text(text: str) -> str:
    """Hub data made drawable: control characters (newlines, bidi overrides) become spaces."""
    text = text[:TITLE_MAX_CHARS]
    return "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text).strip()


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int, lines: int) -> list[str]:
    """Greedy wrap into at most ``lines`` lines of ``width`` px; breaks at spaces when it can,
    anywhere otherwise (CJK has no spaces); the last line is cut with an ellipsis."""
    out: list[str] = []
    rest = text
    while rest and len(out) < lines:
        if font.getlength(rest) <= width:
            out.append(rest)
            return out
        if len(out) == lines - 1:
            out.append(_cut(rest, font, width))
            return out
        n = _fit_count(rest, font, width)
        space = rest.rfind(" ", 0, n + 1)
        cut = space if space > 0 else max(1, n)
        out.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return out


def _fit_count(text: str, font: ImageFont.FreeTypeFont, width: int) -> int:
    lo, hi = 0, len(text)
    while lo < hi:  # largest n with text[:n] fitting
        mid = (lo + hi + 1) // 2
        if font.getlength(text[:mid]) <= width:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _cut(text: str, font: ImageFont.FreeTypeFont, width: int) -> str:
    if font.getlength(text) <= width:
        return text
    n = _fit_count(text, font, width - int(font.getlength(ELLIPSIS)) - 1)
    return text[:n].rstrip() + ELLIPSIS


def arrow_points(centre: tuple[float, float], radius: float, bearing: float
                 ) -> list[tuple[float, float]]:
    """A dart pointing ``bearing`` degrees clockwise from up; the tip is the point farthest
    from the centre (the tests find the direction that way)."""
    shape = ((0.0, -0.85), (0.45, 0.55), (0.0, 0.25), (-0.45, 0.55))
    rad = math.radians(bearing)
    cos, sin = math.cos(rad), math.sin(rad)
    cx, cy = centre
    return [(cx + radius * (x * cos - y * sin), cy + radius * (x * sin + y * cos))
            for x, y in shape]


class HudRenderer:
    """Implements :class:`~edge.glasses.view.Renderer`. Not thread-safe: one per display."""

    def __init__(self, width: int, height: int, mode: Mode = "colour",
                 font: FontBook | Path | None = None) -> None:
        """``font``: a loaded :class:`FontBook`, a configured font file (checked for CJK), or
        None for the lookup in :func:`~edge.glasses.fonts.find_cjk_font`."""
        if mode not in ("colour", "mono_green"):
            raise ValueError(f"HUD mode must be 'colour' or 'mono_green', not {mode!r}")
        if not (MIN_WIDTH <= width <= MAX_WIDTH and MIN_HEIGHT <= height <= MAX_HEIGHT):
            raise LayoutError(
                f"HUD size {width}x{height} is outside what it can lay out "
                f"({MIN_WIDTH}x{MIN_HEIGHT} to {MAX_WIDTH}x{MAX_HEIGHT})")
        aspect = width / height
        if not MIN_ASPECT <= aspect <= MAX_ASPECT:
            raise LayoutError(
                f"HUD size {width}x{height} has aspect {aspect:.2f}; the layout needs a "
                f"landscape frame between {MIN_ASPECT} and {MAX_ASPECT} (e.g. 640x400, 1280x720)")
        self.width, self.height, self.mode = width, height, mode
        self.mono = mode == "mono_green"
        self.palette = MONO if self.mono else COLOUR
        self.fonts = font if isinstance(font, FontBook) else default_fontbook(font)
        self.scale = min(width / BASE_W, height / BASE_H)
        self.stats = RenderStats()
        self._layout = self._compute_layout()
        self._thumbs: OrderedDict[bytes, Image.Image | None] = OrderedDict()
        self._missing_hints: set[str] = set()
        self._masks: OrderedDict[tuple[str, int, int | None],
                                 tuple[Image.Image, int, int, int]] = OrderedDict()
        self._titles: OrderedDict[tuple[str, int, int], tuple[str, ...]] = OrderedDict()

    # -- layout ---------------------------------------------------------------------------

    def _px(self, value: float) -> int:
        return max(1, round(value * self.scale))

    def _compute_layout(self) -> Layout:
        w, h, px = self.width, self.height, self._px
        m = px(8)
        status_h, queue_h = px(28), px(48)
        top, bottom = status_h, h - queue_h
        right_w = round(w * 0.36)
        rx0 = w - right_w
        side = min(right_w - 2 * m, int((bottom - top) * 0.55))
        ax0 = rx0 + (right_w - side) // 2
        arrow = (ax0, top + m, ax0 + side, top + m + side)
        distance = (rx0 + m, arrow[3] + m // 2, w - m, arrow[3] + m // 2 + px(30))
        evidence = (rx0 + m, distance[3] + m // 2, w - m, bottom - m)
        card = (m, top + m, rx0 - m, bottom - m)
        pad = px(12)
        cx0, cx1 = card[0] + pad, card[2] - pad
        y = card[1] + pad
        severity = (cx0, y, cx0 + px(120), y + px(34))
        stale = (cx1 - px(80), y + px(5), cx1, y + px(29))
        kind = (severity[2] + px(10), y, stale[0] - px(6), y + px(34))
        y = severity[3] + px(8)
        title = (cx0, y, cx1, y + px(TITLE_LINE_H * TITLE_LINES))
        y = title[3] + px(8)
        meta = (cx0, y, cx1, y + px(24))
        y = meta[3] + px(10)
        action = (cx0, y, cx1, y + px(30))
        y = action[3] + px(6)
        answer = (cx0, y, cx1, min(y + px(24), card[3] - pad))
        layout = Layout(
            status=(0, 0, w, status_h), card=card, severity=severity, kind=kind, title=title,
            meta=meta, stale=stale, action=action, answer=answer, arrow=arrow,
            distance=distance, evidence=evidence, queue=(0, bottom, w, h),
        )
        for name, (x0, y0, x1, y1) in layout.boxes().items():
            if x1 - x0 < px(8) or y1 - y0 < px(8) or x1 > w or y1 > h:
                raise LayoutError(f"HUD size {w}x{h} leaves no room for the {name} box")
        return layout

    def layout(self, view: HudView | None = None) -> dict[str, Box]:
        """The named rectangles of a frame (the same for every view of this size)."""
        del view  # the layout is fixed per size so the eye learns where things are
        return self._layout.boxes()

    # -- drawing --------------------------------------------------------------------------

    def render(self, view: HudView) -> Frame:
        pal = self.palette
        image = Image.new("RGB", (self.width, self.height), pal.background)
        draw = ImageDraw.Draw(image)
        lay = self._layout
        # An index out of range (the queue shrank under the agent) shows the nearest item
        # rather than "no alerts" while alerts are pending.
        item = (view.items[min(max(view.selected, 0), len(view.items) - 1)] if view.items
                else None)
        self._status(draw, view)
        draw.rectangle(_inclusive(lay.card), fill=pal.card)
        if item is None:
            self._text(draw, lay.title, translate("hud.no_alerts", view.language), pal.dim,
                       fill=0.4)
        else:
            self._card(image, draw, view, item)
            self._arrow(draw, view.language, view.pose, item)
            self._evidence(image, draw, view.language, item)
        self._queue(draw, view, item)
        self.stats.frames += 1
        return np.array(image, dtype=np.uint8)  # a writable copy the caller may keep

    def _text(self, draw: ImageDraw.ImageDraw, box: Box, text: str, colour: RGB, *,
              fill: float = 0.75, align: Literal["left", "centre", "right"] = "left") -> None:
        size = round((box[3] - box[1]) * fill)
        mask, left, top, width = self._glyphs(text, size, box[2] - box[0])
        x = box[0]
        if align == "centre":
            x = box[0] + (box[2] - box[0] - width) // 2
        elif align == "right":
            x = box[2] - width
        draw.bitmap((x + left, (box[1] + box[3]) // 2 + top), mask, fill=colour)

    def _glyphs(self, text: str, size: int, max_width: int | None
                ) -> tuple[Image.Image, int, int, int]:
        """``text`` (cut to ``max_width`` with an ellipsis) as an antialiased mask, with its
        offset from a left-middle anchor and its advance width. Cached: most of a HUD is the
        same few labels every frame, and rasterising them is most of the drawing time."""
        key = (text, size, max_width)
        hit = self._masks.get(key)
        if hit is not None:
            self._masks.move_to_end(key)
            return hit
        font = self.fonts.get(size)
        if max_width is not None:
            text = _cut(text, font, max_width)
        left, top, right, bottom = (int(v) for v in font.getbbox(text, anchor="lm"))
        mask = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
        ImageDraw.Draw(mask).text((-left, -top), text, font=font, fill=255, anchor="lm")
        entry = (mask, left, top, round(font.getlength(text)))
        self._masks[key] = entry
        while len(self._masks) > MASK_CACHE:
            self._masks.popitem(last=False)
        return entry

    def _status(self, draw: ImageDraw.ImageDraw, view: HudView) -> None:
        pal, box, lang = self.palette, self._layout.status, view.language
        pad = self._px(8)
        inner = (box[0] + pad, box[1], box[2] - pad, box[3])
        parts = [translate("hud.online" if view.online else "hud.offline", lang)]
        if view.unsent_answers > 0:
            parts.append(translate("hud.unsent", lang, count=view.unsent_answers))
        left = SEPARATOR.join(parts)
        half = (inner[0], inner[1], (inner[0] + inner[2]) // 2, inner[3])
        colour = pal.dim if view.online and view.unsent_answers == 0 else pal.alarm
        if not view.online:
            draw.rectangle(_inclusive(box), outline=pal.alarm, width=self._px(2))
        self._text(draw, half, left, colour, fill=0.65)
        hints = " ".join(self._hint(key, lang) for key in view.hints)
        if hints:
            rest = ((inner[0] + inner[2]) // 2 + pad, inner[1], inner[2], inner[3])
            self._text(draw, rest, hints, pal.dim, fill=0.6, align="right")

    def _hint(self, key: str, language: Language) -> str:
        try:
            return translate(key, language)
        except KeyError:
            # A hint key is the agent's; a missing one must not take the display down.
            if key not in self._missing_hints:
                self._missing_hints.add(key)
                self.stats.missing_hints += 1
                log.warning("HUD hint %s is not in the %s catalogue", key, language)
            return key

    def _card(self, image: Image.Image, draw: ImageDraw.ImageDraw, view: HudView,
              item: HudItem) -> None:
        pal, lay, lang = self.palette, self._layout, view.language
        sev_colour = pal.severity(item.severity, self.mono)
        self._border(draw, lay.card, item.severity, sev_colour)
        # The badge: colour fill (colour mode) or outline (mono), always with the label.
        label = translate(f"hud.severity.{item.severity.value}", lang)
        if self.mono:
            draw.rectangle(_inclusive(lay.severity), outline=sev_colour, width=self._px(2))
            self._text(draw, lay.severity, label, pal.text, fill=0.7, align="centre")
        else:
            draw.rectangle(_inclusive(lay.severity), fill=sev_colour)
            ink = (0, 0, 0) if sum(sev_colour) > 380 else (255, 255, 255)
            self._text(draw, lay.severity, label, ink, fill=0.7, align="centre")
        self._text(draw, lay.kind, translate(f"hud.kind.{item.kind.value}", lang), pal.text,
                   fill=0.75)
        # Hub data: drawn on a crop of its own box and pasted back, so no glyph (a stack of
        # combining marks, a tall script) can spill over its neighbours.
        with _clipped(image, lay.title) as (sub, box):
            line_h = (box[3] - box[1]) // TITLE_LINES
            size = round(line_h * 0.8)
            for n, line in enumerate(self._title_lines(item.title, size, box[2] - box[0])):
                mask, left, top, _ = self._glyphs(line, size, None)
                sub.bitmap((left, line_h * n + line_h // 2 + top), mask, fill=pal.text)
        meta = [format_age(view.now, item.issued_at, lang)]
        if item.incident_number:
            meta.insert(0, translate("hud.incident", lang, number=clean_text(item.incident_number)))
        with _clipped(image, lay.meta) as (sub, box):
            self._text(sub, box, SEPARATOR.join(meta), pal.dim, fill=0.7)
        if item.stale:
            draw.rectangle(_inclusive(lay.stale), outline=pal.alarm, width=self._px(2))
            self._text(draw, lay.stale, translate("hud.stale", lang), pal.alarm, fill=0.65,
                       align="centre")
        self._text(draw, lay.action, translate(f"hud.action.{item.action.value}", lang),
                   pal.text, fill=0.75)
        if item.answer is not None:
            self._text(draw, lay.answer, ANSWERED + translate(f"hud.answer.{item.answer.value}",
                                                          lang), pal.dim, fill=0.7)

    def _title_lines(self, title: str, size: int, width: int) -> tuple[str, ...]:
        key = (title, size, width)
        lines = self._titles.get(key)
        if lines is None:
            lines = tuple(_wrap(clean_text(title), self.fonts.get(size), width, TITLE_LINES))
            self._titles[key] = lines
            while len(self._titles) > TITLE_CACHE:
                self._titles.popitem(last=False)
        return lines

    def _border(self, draw: ImageDraw.ImageDraw, box: Box, severity: Severity,
                colour: RGB) -> None:
        style, base = SEVERITY_BORDER[severity]
        width = self._px(base)
        x0, y0, x1, y1 = box[0], box[1], box[2] - 1, box[3] - 1
        if style in ("solid", "thin"):
            draw.rectangle((x0, y0, x1, y1), outline=colour, width=width)
        elif style == "double":
            gap = width * 2
            draw.rectangle((x0, y0, x1, y1), outline=colour, width=width)
            draw.rectangle((x0 + gap, y0 + gap, x1 - gap, y1 - gap), outline=colour, width=width)
        else:
            dash = self._px(14) if style == "dashed" else width
            space = self._px(8) if style == "dashed" else width * 2
            for (ax, ay), (bx, by) in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)),
                                       ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
                length = max(abs(bx - ax), abs(by - ay))
                dx, dy = (bx - ax) / length, (by - ay) / length
                pos = 0
                while pos < length:
                    end = min(length, pos + dash)
                    draw.line((ax + dx * pos, ay + dy * pos, ax + dx * end, ay + dy * end),
                              fill=colour, width=width)
                    pos = end + space

    def _arrow(self, draw: ImageDraw.ImageDraw, language: Language, pose: Pose | None,
               item: HudItem) -> None:
        pal, lay = self.palette, self._layout
        box = lay.arrow
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        radius = (box[2] - box[0]) / 2 - self._px(2)
        draw.ellipse((box[0] + 1, box[1] + 1, box[2] - 2, box[3] - 2), outline=pal.ring,
                     width=self._px(2))
        if pose is not None and not _finite(pose.lon, pose.lat, pose.heading_deg):
            # A receiver glitch must cost the arrow, not the frame (NaN has no direction).
            self.stats.bad_positions += 1
            pose = None
        if pose is None:
            self._text(draw, lay.distance, translate("hud.no_position", language), pal.alarm,
                       fill=0.75, align="centre")
            return
        if item.target is None or not _finite(*item.target):
            self._text(draw, lay.distance, translate("hud.no_target", language), pal.dim,
                       fill=0.75, align="centre")
            return
        dist, relative = relative_bearing(pose, item.target)
        if relative is None:
            # No heading: the arrow is a compass bearing, so the ring carries its north mark.
            north = (box[0], box[1], box[2], box[1] + self._px(26))
            self._text(draw, north, translate("hud.north", language), pal.text, fill=0.8,
                       align="centre")
            lon, lat = item.target
            shown = bearing_deg(pose.lon, pose.lat, lon, lat)
        else:
            shown = relative
        draw.polygon(arrow_points(centre, radius * 0.8, shown), fill=pal.arrow)
        self._text(draw, lay.distance, format_distance(dist, language), pal.text, fill=0.8,
                   align="centre")

    def _thumbnail(self, jpeg: bytes) -> Image.Image | None:
        key = hashlib.blake2b(jpeg, digest_size=16).digest()
        if key in self._thumbs:
            self._thumbs.move_to_end(key)
            return self._thumbs[key]
        box = self._layout.evidence
        size = (box[2] - box[0], box[3] - box[1])
        thumb: Image.Image | None
        try:
            thumb = decode_thumbnail(jpeg, size)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning,
                Image.DecompressionBombError) as err:
            self.stats.evidence_refused += 1
            log.warning("HUD evidence image refused: %s", err)
            thumb = None
        if thumb is not None and self.mono:
            # The photo is the only thing not drawn from the green palette: its brightness
            # goes to the green channel, so every pixel keeps R = B = 0.
            dark = Image.new("L", thumb.size, 0)
            thumb = Image.merge("RGB", (dark, thumb.convert("L"), dark))
        self._thumbs[key] = thumb
        while len(self._thumbs) > EVIDENCE_CACHE:
            self._thumbs.popitem(last=False)
        return thumb

    def _evidence(self, image: Image.Image, draw: ImageDraw.ImageDraw, language: Language,
                  item: HudItem) -> None:
        if not item.evidence_jpeg:
            return
        box = self._layout.evidence
        thumb = self._thumbnail(item.evidence_jpeg)
        if thumb is None:
            draw.rectangle(_inclusive(box), outline=self.palette.dim, width=1)
            self._text(draw, (box[0], box[1], box[2], box[1] + self._px(24)),
                       translate("hud.evidence_unreadable", language), self.palette.dim, fill=0.7,
                       align="centre")
            return
        x = box[0] + (box[2] - box[0] - thumb.width) // 2
        image.paste(thumb, (x, box[1]))

    def _queue(self, draw: ImageDraw.ImageDraw, view: HudView, selected: HudItem | None
               ) -> None:
        pal, box, lang = self.palette, self._layout.queue, view.language
        others = sorted((it for it in view.items if it is not selected), key=HudItem.urgency)
        if not others:
            return
        pad = self._px(8)
        inner = (box[0] + pad, box[1] + pad, box[2] - pad, box[3] - pad)
        count_w = self._px(110)
        self._text(draw, (inner[2] - count_w, inner[1], inner[2], inner[3]),
                   translate("hud.pending", lang, count=len(others)), pal.text, fill=0.5,
                   align="right")
        x = inner[0]
        chip_w = self._px(150)
        limit = inner[2] - count_w - pad
        for it in others:
            if x + chip_w > limit:
                break
            chip = (x, inner[1], x + chip_w, inner[3])
            colour = pal.severity(it.severity, self.mono)
            self._border(draw, chip, it.severity, colour)
            sev = translate(f"hud.severity.{it.severity.value}", lang)
            kind = translate(f"hud.kind.{it.kind.value}", lang)
            inset = self._px(7)
            self._text(draw, (chip[0] + inset, chip[1], chip[2] - inset, chip[3]),
                       f"{sev} {kind}", pal.text, fill=0.45)
            x += chip_w + pad


def decode_thumbnail(jpeg: bytes, size: tuple[int, int]) -> Image.Image:
    """A JPEG from the wire, decoded at most to ``size``; refuses bombs and non-JPEG data
    (Pillow's errors pass through: the caller counts and draws a placeholder)."""
    if len(jpeg) > EVIDENCE_MAX_BYTES:
        raise ValueError(f"evidence of {len(jpeg)} bytes")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(jpeg), formats=["JPEG"]) as im:
            if im.width * im.height > EVIDENCE_MAX_PIXELS:
                raise ValueError(f"evidence of {im.width}x{im.height} pixels")
            im.draft("RGB", size)
            photo = im.convert("RGB")
    # Fit the box both ways: a 112 px face crop is worth enlarging on a 1280 px display.
    factor = min(size[0] / photo.width, size[1] / photo.height)
    fitted = (max(1, round(photo.width * factor)), max(1, round(photo.height * factor)))
    return photo.resize(fitted, Image.Resampling.BILINEAR)


@contextmanager
def _clipped(image: Image.Image, box: Box) -> Iterator[tuple[ImageDraw.ImageDraw, Box]]:
    """A drawing surface limited to ``box`` (coordinates relative to it), pasted back on exit."""
    sub = image.crop(box)
    yield ImageDraw.Draw(sub), (0, 0, box[2] - box[0], box[3] - box[1])
    image.paste(sub, box[:2])


def _finite(*values: float | None) -> bool:
    return all(v is None or math.isfinite(v) for v in values)


def _inclusive(box: Box) -> Box:
    """PIL rectangles include their last pixel; layout boxes exclude it."""
    return (box[0], box[1], box[2] - 1, box[3] - 1)
